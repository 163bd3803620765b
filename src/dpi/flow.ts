/**
 * Flows: the direction-independent flow key, per-flow state (counters, verdict,
 * per-classifier state, TCP stream prefixes) and a bounded flow table with idle
 * expiry.
 * @module
 */
import { formatAddress, TcpFlag, type DecodedPacket } from './packet.js';
import type { Direction, Endpoint, FlowInfo, Transport, Verdict } from './types.js';

/** Transport protocol name for an IP protocol number the engine tracks. */
export function transportOf(protocol: number): Transport | undefined {
  return protocol === 6 ? 'tcp' : protocol === 17 ? 'udp' : undefined;
}

/** Key of a flow plus which side of it the packet came from. */
export interface FlowKeyOf {
  /**
   * Canonical, direction-independent key of the 5-tuple: the protocol, then the lower
   * endpoint (address bytes, then port) and the higher one, packed as 16-bit code units.
   * Opaque: compare it, do not parse it.
   */
  key: string;
  /** 0 when the packet's source is the key's low endpoint, 1 otherwise. */
  side: 0 | 1;
}

const w16 = (a: Uint8Array, i: number): number => (a[i]! << 8) | a[i + 1]!;

function key4(proto: number, a: Uint8Array, ap: number, b: Uint8Array, bp: number): string {
  return String.fromCharCode(proto, w16(a, 0), w16(a, 2), ap, w16(b, 0), w16(b, 2), bp);
}

function key6(proto: number, a: Uint8Array, ap: number, b: Uint8Array, bp: number): string {
  return String.fromCharCode(
    proto | 0x100,
    w16(a, 0), w16(a, 2), w16(a, 4), w16(a, 6), w16(a, 8), w16(a, 10), w16(a, 12), w16(a, 14), ap,
    w16(b, 0), w16(b, 2), w16(b, 4), w16(b, 6), w16(b, 8), w16(b, 10), w16(b, 12), w16(b, 14), bp,
  );
}

/** Compute the canonical flow key of a decoded packet. */
export function flowKeyOf(p: DecodedPacket): FlowKeyOf {
  const s = p.src;
  const d = p.dst;
  let cmp = 0;
  for (let i = 0; i < s.length; i++) {
    cmp = s[i]! - d[i]!;
    if (cmp !== 0) break;
  }
  if (cmp === 0) cmp = p.sport - p.dport;
  const mk = s.length === 4 ? key4 : key6;
  return cmp <= 0 ? { key: mk(p.protocol, s, p.sport, d, p.dport), side: 0 } : { key: mk(p.protocol, d, p.dport, s, p.sport), side: 1 };
}

/** Text key of an endpoint for caches: `addr|port`. */
export function endpointKey(ep: Endpoint): string {
  return `${ep.addr}|${ep.port}`;
}

const EMPTY = new Uint8Array(0);

/**
 * In-order prefix of one TCP direction, rebuilt from segments (split, reordered,
 * retransmitted), up to a byte limit.
 */
export class StreamPrefix {
  private base: number | undefined;
  /** Allocated on the first payload, then grown by doubling (most flows never carry payload in one direction). */
  private buf: Uint8Array = EMPTY;
  private len = 0;
  private pending: { rel: number; data: Uint8Array }[] = [];

  constructor(private readonly limit: number) {}

  /** Note a SYN: the stream starts at seq + 1. */
  syn(seq: number): void {
    if (this.base === undefined) this.base = (seq + 1) >>> 0;
  }

  /** Bytes so far (a view). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /** True when the prefix reached its limit. */
  full(): boolean {
    return this.len >= this.limit;
  }

  /** Add a segment; returns true when the in-order prefix grew. */
  push(seq: number, data: Uint8Array): boolean {
    if (data.length === 0 || this.len >= this.limit) return false;
    if (this.base === undefined) this.base = seq >>> 0;
    const rel = (seq - this.base) | 0; // signed distance, wraps correctly
    const grew = this.place(rel, data);
    if (grew && this.pending.length > 0) {
      let again = true;
      while (again && this.len < this.limit) {
        again = false;
        for (let i = 0; i < this.pending.length; i++) {
          const seg = this.pending[i]!;
          if (seg.rel <= this.len) {
            this.pending.splice(i, 1);
            if (this.place(seg.rel, seg.data)) again = true;
            break;
          }
        }
      }
    }
    return grew;
  }

  private place(rel: number, data: Uint8Array): boolean {
    const endRel = rel + data.length;
    if (endRel <= this.len) return false; // retransmission of bytes we have
    if (rel > this.len) {
      // gap: keep for later (bounded)
      if (rel < this.limit && this.pending.length < 16) this.pending.push({ rel, data: data.slice() });
      return false;
    }
    const from = this.len - rel; // skip bytes we already have
    const take = Math.min(data.length - from, this.limit - this.len);
    if (take <= 0) return false;
    this.ensure(this.len + take);
    this.buf.set(data.subarray(from, from + take), this.len);
    this.len += take;
    return true;
  }

  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    const next = new Uint8Array(Math.min(this.limit, Math.max(n, 512, this.buf.length * 2)));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
}

/** One flow: counters, orientation, verdict and per-classifier state. */
export class Flow implements FlowInfo {
  readonly key: string;
  readonly transport: Transport;
  readonly family: 4 | 6;
  readonly client: Endpoint;
  readonly server: Endpoint;
  readonly firstTs: number;
  /** Time of the latest packet. */
  lastTs: number;
  /** Which canonical key side is the client (initiator). */
  readonly clientSide: 0 | 1;
  /** Packets per direction (all, with or without payload). */
  readonly packets: [number, number] = [0, 0];
  /** IP bytes per direction. */
  readonly bytes: [number, number] = [0, 0];
  /** Payload-carrying packets per direction. */
  readonly payloadPackets: [number, number] = [0, 0];
  /** Payload-carrying packets that classifiers inspected, per direction. */
  readonly inspected: [number, number] = [0, 0];
  /** Current verdict (`undecided` until a classifier or the budget decides). */
  verdict: Verdict = { verdict: 'undecided', reason: 'not enough packets yet' };
  /** True once the verdict is final. */
  decided = false;
  /** 1-based packet number (within the flow) at which the verdict was reached. */
  decidedAtPacket: number | undefined;
  /** Capture time at which the verdict was reached. */
  decidedAtTs: number | undefined;
  /** Per-classifier state, indexed like the engine's classifier list. */
  readonly states: unknown[] = [];
  /** Classifiers (by index, bit i) that said they can no longer match this flow (`Verdict.done`). */
  doneMask = 0;
  /** TCP stream prefixes per direction (created on demand). */
  streams: [StreamPrefix, StreamPrefix] | undefined;
  /** TCP: FIN or RST seen per direction. */
  readonly closed: [boolean, boolean] = [false, false];
  /** Free slot for the embedding application (e.g. DpiBlocker's own bookkeeping). */
  user: unknown;
  /** The kernel's conntrack id of the connection, when the first packet carried it. */
  readonly ctId: number | undefined;

  constructor(p: DecodedPacket, key: FlowKeyOf, ts: number) {
    this.key = key.key;
    this.transport = p.protocol === 6 ? 'tcp' : 'udp';
    this.family = p.family;
    this.firstTs = ts;
    this.lastTs = ts;
    // The kernel's conntrack knows the direction; without it, a SYN+ACK as the first packet means
    // we missed the SYN: its destination is the client.
    const reversed = p.conntrack
      ? p.conntrack.reply
      : p.protocol === 6 && (p.tcpFlags & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK);
    this.ctId = p.conntrack?.id;
    const src = { addr: formatAddress(p.src), port: p.sport };
    const dst = { addr: formatAddress(p.dst), port: p.dport };
    this.client = reversed ? dst : src;
    this.server = reversed ? src : dst;
    this.clientSide = reversed ? ((1 - key.side) as 0 | 1) : key.side;
  }

  /** Direction of a packet given which key side it came from. */
  directionOf(side: 0 | 1): Direction {
    return side === this.clientSide ? 0 : 1;
  }

  /** Total packets. */
  totalPackets(): number {
    return this.packets[0] + this.packets[1];
  }

  /** Total IP bytes. */
  totalBytes(): number {
    return this.bytes[0] + this.bytes[1];
  }
}

/** Options of a {@link FlowTable}. */
export interface FlowTableOptions {
  /** Seconds without packets after which a flow ends (default 300 for TCP, 120 for UDP). */
  idleTimeout?: { tcp?: number; udp?: number };
  /** Most flows kept at once; the oldest are evicted first (default 262144). */
  maxFlows?: number;
}

/**
 * Flows by key, with idle expiry and a size bound. Ended flows are handed to
 * `onEnd` (evicted, idle, or replaced by a new connection on the same 5-tuple).
 */
export class FlowTable {
  private readonly map = new Map<string, Flow>();
  private readonly idleTcp: number;
  private readonly idleUdp: number;
  private readonly maxFlows: number;
  private sinceSweep = 0;
  private lastSweepTs = 0;

  constructor(
    options: FlowTableOptions = {},
    private readonly onEnd: (flow: Flow, why: 'idle' | 'evicted' | 'reused') => void = () => {},
  ) {
    this.idleTcp = options.idleTimeout?.tcp ?? 300;
    this.idleUdp = options.idleTimeout?.udp ?? 120;
    this.maxFlows = options.maxFlows ?? 262144;
  }

  /** Number of live flows. */
  get size(): number {
    return this.map.size;
  }

  /** Live flows, oldest first. */
  values(): IterableIterator<Flow> {
    return this.map.values();
  }

  /** Find or create the flow of a TCP/UDP packet; returns the flow and the packet's direction. */
  lookup(p: DecodedPacket, ts: number): { flow: Flow; dir: Direction; created: boolean } {
    const k = flowKeyOf(p);
    let flow = this.map.get(k.key);
    let created = false;
    if (flow) {
      const idle = flow.transport === 'tcp' ? this.idleTcp : this.idleUdp;
      const newSyn = p.protocol === 6 && (p.tcpFlags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN;
      if (ts - flow.lastTs > idle) {
        this.map.delete(k.key);
        this.onEnd(flow, 'idle');
        flow = undefined;
      } else if (
        (newSyn && flow.payloadPackets[0] + flow.payloadPackets[1] > 0) ||
        (p.conntrack?.id !== undefined && flow.ctId !== undefined && p.conntrack.id !== flow.ctId)
      ) {
        // A fresh SYN after payload (a SYN is never retransmitted after data), or another conntrack
        // entry: a new connection on the same 5-tuple, whether or not its FIN/RST was seen (the
        // DpiBlocker does not queue payload-less FINs, nor SYNs where the kernel gives conntrack ids).
        this.map.delete(k.key);
        this.onEnd(flow, 'reused');
        flow = undefined;
      }
    }
    if (!flow) {
      flow = new Flow(p, k, ts);
      this.map.set(k.key, flow);
      created = true;
      if (this.map.size > this.maxFlows) this.evictOldest();
    }
    if (++this.sinceSweep >= 8192 || ts - this.lastSweepTs > 60) this.sweep(ts);
    return { flow, dir: flow.directionOf(k.side), created };
  }

  /** Remove flows idle at time `ts`. */
  sweep(ts: number): void {
    this.sinceSweep = 0;
    this.lastSweepTs = ts;
    for (const [key, flow] of this.map) {
      const idle = flow.transport === 'tcp' ? this.idleTcp : this.idleUdp;
      if (ts - flow.lastTs > idle) {
        this.map.delete(key);
        this.onEnd(flow, 'idle');
      }
    }
  }

  /** End every flow (e.g. at the end of a capture). */
  drain(): Flow[] {
    const all = [...this.map.values()];
    this.map.clear();
    return all;
  }

  private evictOldest(): void {
    const first = this.map.entries().next();
    if (!first.done) {
      this.map.delete(first.value[0]);
      this.onEnd(first.value[1], 'evicted');
    }
  }
}
