/**
 * The DPI engine: feeds each flow's first payload packets (both directions) to
 * the classifiers in order, stops when one decides or the per-direction budget
 * is spent, and keeps the peer endpoint cache.
 * @module
 */
import { FlowTable, transportOf, StreamPrefix, type Flow, type FlowTableOptions } from '../flow.js';
import { TcpFlag, type DecodedPacket } from '../packet.js';
import type { Classifier, Direction, FlowPacket, Verdict } from '../types.js';
import { cacheVerdict, PeerCache, type PeerCacheOptions } from './peer-cache.js';
import { PeerLearner } from './bittorrent/peer-learning.js';
import { bittorrentClassifier } from './bittorrent.js';

/** Options of a {@link DpiEngine}. */
export interface DpiEngineOptions {
  /** Classifiers, run in order (default: the built-in BitTorrent classifier). */
  classifiers?: Classifier<any>[];
  /** Payload-carrying packets inspected per direction before giving up (default 10). */
  maxPacketsPerDirection?: number;
  /** Bytes of each TCP direction kept in order for stream-start matching (default 4096). */
  streamBytes?: number;
  /** The peer endpoint cache: an instance to share, options for a new one, or `false` to disable. */
  peerCache?: PeerCache | PeerCacheOptions | false;
  /** Learn the peers listed by tracker and DHT replies into the peer cache (default true when the cache is on; see bittorrent/peer-learning.ts). */
  peerLearning?: boolean;
  /** Flow table bounds and idle timeouts. */
  flowTable?: FlowTableOptions;
  /** Called when a flow is decided (`bittorrent` or `benign`). */
  onDecision?: (flow: Flow) => void;
  /** Called when a flow leaves the table (idle, evicted, or its 5-tuple reused). */
  onFlowEnd?: (flow: Flow, why: 'idle' | 'evicted' | 'reused' | 'drained') => void;
}

function ep(e: { addr: string; port: number }): string {
  return e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`;
}

/** What {@link DpiEngine.process} did with one packet. */
export interface EngineStep {
  /** The packet's flow. */
  flow: Flow;
  /** Its direction in the flow. */
  dir: Direction;
  /** True when this packet decided the flow. */
  decidedNow: boolean;
  /** True when the packet opened a new flow. */
  created: boolean;
}

/**
 * Runs classifiers over flows.
 *
 * @example
 * ```ts
 * const engine = new DpiEngine();
 * const step = engine.process(decodeFrame(linkType, frame)!, ts);
 * if (step?.flow.verdict.verdict === 'bittorrent') drop();
 * ```
 */
export class DpiEngine {
  /** Classifiers in run order. */
  readonly classifiers: readonly Classifier<any>[];
  /** The flow table. */
  readonly table: FlowTable;
  /** The peer endpoint cache, if enabled. */
  readonly peerCache: PeerCache | undefined;
  /** Reads tracker and DHT peer lists into the peer cache, if enabled. */
  readonly learner: PeerLearner | undefined;
  private readonly maxPerDir: number;
  private readonly streamBytes: number;
  private readonly opts: DpiEngineOptions;
  private readonly pkt: FlowPacket = { dir: 0, ts: 0, payload: new Uint8Array(0), index: 0, dirIndex: 0 };

  constructor(options: DpiEngineOptions = {}) {
    this.opts = options;
    this.classifiers = options.classifiers ?? [bittorrentClassifier()];
    this.maxPerDir = Math.max(1, options.maxPacketsPerDirection ?? 10);
    this.streamBytes = Math.max(256, options.streamBytes ?? 4096);
    this.peerCache =
      options.peerCache === false ? undefined : options.peerCache instanceof PeerCache ? options.peerCache : new PeerCache(options.peerCache ?? {});
    this.learner = this.peerCache && options.peerLearning !== false ? new PeerLearner(this.peerCache) : undefined;
    this.table = new FlowTable(options.flowTable ?? {}, (flow, why) => {
      this.finalize(flow);
      options.onFlowEnd?.(flow, why);
    });
  }

  /** Feed one decoded packet seen at time `ts` (seconds). Non-TCP/UDP packets are ignored (`undefined`). */
  process(p: DecodedPacket, ts: number): EngineStep | undefined {
    const transport = transportOf(p.protocol);
    if (!transport) return undefined;
    const { flow, dir, created } = this.table.lookup(p, ts);
    flow.lastTs = ts;
    flow.packets[dir]++;
    flow.bytes[dir] += p.ipBytes;
    if (this.learner && p.payload.length > 0) this.learner.observe(flow, dir, p, ts);
    if (created && this.peerCache && this.checkCache(flow, ts)) return { flow, dir, decidedNow: true, created };
    const payload = p.payload;
    let stream: StreamPrefix | undefined;
    let grew = false;
    if (transport === 'tcp') {
      if (p.tcpFlags & (TcpFlag.FIN | TcpFlag.RST)) flow.closed[dir] = true;
      if (flow.decided) {
        if (payload.length > 0) flow.payloadPackets[dir]++;
        return { flow, dir, decidedNow: false, created };
      }
      flow.streams ??= [new StreamPrefix(this.streamBytes), new StreamPrefix(this.streamBytes)];
      stream = flow.streams[dir];
      if (p.tcpFlags & TcpFlag.SYN) stream.syn(p.seq);
      // the peer's stream starts where this packet's ACK says, SYN+ACK seen or not (the DpiBlocker does not queue it)
      else if (p.tcpFlags & TcpFlag.ACK) flow.streams[dir === 0 ? 1 : 0].syn((p.ack - 1) >>> 0);
      if (payload.length === 0) return { flow, dir, decidedNow: false, created };
      flow.payloadPackets[dir]++;
      grew = stream.push(p.seq, payload);
      // A pure retransmission tells nothing new (unless the prefix is full and we look at packets only).
      if (!grew && !stream.full()) return { flow, dir, decidedNow: false, created };
    } else {
      if (payload.length === 0) return { flow, dir, decidedNow: false, created };
      flow.payloadPackets[dir]++;
      if (flow.decided) return { flow, dir, decidedNow: false, created };
    }
    if (flow.inspected[dir] >= this.maxPerDir) return { flow, dir, decidedNow: false, created };
    flow.inspected[dir]++;
    const fp = this.pkt;
    fp.dir = dir;
    fp.ts = ts;
    fp.payload = payload;
    fp.index = flow.inspected[0] + flow.inspected[1];
    fp.dirIndex = flow.inspected[dir];
    if (stream) {
      fp.stream = stream.bytes();
      fp.streamGrew = grew;
      fp.streamFull = stream.full();
    } else {
      fp.stream = undefined;
      fp.streamGrew = undefined;
      fp.streamFull = undefined;
    }
    const cls = this.classifiers;
    let done: Verdict | undefined;
    for (let i = 0; i < cls.length; i++) {
      const c = cls[i]!;
      if (c.transports && !c.transports.includes(transport)) continue;
      if (i < 31 && flow.doneMask & (1 << i)) continue;
      let state = flow.states[i];
      if (state === undefined && c.createState) {
        state = c.createState(flow) ?? null;
        flow.states[i] = state;
      }
      const v = c.inspect(fp, flow, state);
      if (v && v.verdict !== 'undecided') {
        this.decide(flow, { ...v, classifier: v.classifier ?? c.name }, ts);
        return { flow, dir, decidedNow: true, created };
      }
      if (v?.done && i < 31) {
        flow.doneMask |= 1 << i;
        done = v;
      }
    }
    // every classifier that applies to this transport is out: nothing can match any more
    if (done && this.allDone(flow, transport)) {
      this.decide(flow, { verdict: 'benign', reason: done.reason, detection: 'settled', classifier: cls.length === 1 ? cls[0]!.name : undefined }, ts);
      return { flow, dir, decidedNow: true, created };
    }
    if (flow.inspected[0] >= this.maxPerDir && flow.inspected[1] >= this.maxPerDir) {
      this.decide(
        flow,
        { verdict: 'benign', reason: `no classifier matched in ${flow.inspected[0]}+${flow.inspected[1]} payload packets`, detection: 'budget' },
        ts,
      );
      return { flow, dir, decidedNow: true, created };
    }
    return { flow, dir, decidedNow: false, created };
  }

  private allDone(flow: Flow, transport: 'tcp' | 'udp'): boolean {
    const cls = this.classifiers;
    for (let i = 0; i < cls.length; i++) {
      const c = cls[i]!;
      if (c.transports && !c.transports.includes(transport)) continue;
      if (i >= 31 || !(flow.doneMask & (1 << i))) return false;
    }
    return true;
  }

  /** End all flows (end of capture): undecided flows become `benign` with a reason saying so. */
  finish(): Flow[] {
    const flows = this.table.drain();
    for (const f of flows) {
      this.finalize(f);
      this.opts.onFlowEnd?.(f, 'drained');
    }
    return flows;
  }

  private finalize(flow: Flow): void {
    if (flow.decided) return;
    flow.verdict = {
      verdict: 'benign',
      reason:
        flow.inspected[0] + flow.inspected[1] === 0
          ? 'no payload seen'
          : `no classifier matched in ${flow.inspected[0]}+${flow.inspected[1]} payload packets (flow ended)`,
      detection: 'ended',
    };
    flow.decided = true;
  }

  private decide(flow: Flow, v: Verdict, ts: number): void {
    flow.verdict = v;
    flow.decided = true;
    flow.decidedAtPacket = flow.totalPackets();
    flow.decidedAtTs = ts;
    flow.streams = undefined; // free the reassembly buffers
    flow.states.length = 0;
    if (v.verdict === 'bittorrent' && v.peers && this.peerCache) {
      const why = `${v.detection ?? v.classifier ?? 'detection'} on ${flow.transport} ${ep(flow.client)} -> ${ep(flow.server)}`;
      this.peerCache.add(flow.server, why, ts);
      if (flow.transport === 'udp') this.peerCache.add(flow.client, why, ts);
    }
    this.opts.onDecision?.(flow);
  }

  private checkCache(flow: Flow, ts: number): boolean {
    const cache = this.peerCache!;
    let hit = cache.get(flow.server, ts);
    let which = flow.server;
    if (!hit && flow.transport === 'udp') {
      hit = cache.get(flow.client, ts);
      which = flow.client;
    }
    if (!hit) return false;
    this.decide(flow, cacheVerdict(which, hit, ts), ts);
    return true;
  }
}
