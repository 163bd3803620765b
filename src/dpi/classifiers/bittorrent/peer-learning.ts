/**
 * Peer learning: the engine shows every payload packet of a flow that is not
 * judged benign to {@link PeerLearner.observe}, which reads the peer lists of
 * tracker and DHT replies (bittorrent/peer-lists.ts) and puts the listed
 * endpoints in the peer cache's `learnt` tier. The next flow to one of them is
 * then judged BitTorrent at its first packet (detection `peer-learnt`),
 * encrypted or not.
 *
 * Flows already judged BitTorrent are still observed (their replies come after
 * the query that decided them). Cost per packet: a few byte comparisons; a
 * bencode parse only for datagrams shaped like a whole bencoded dictionary,
 * UDP announce replies whose transaction id this flow asked for, and HTTP
 * responses whose body starts like a dictionary (at most 16 KiB of it kept).
 * @module
 */
import { StreamPrefix, type Flow } from '../../flow.js';
import type { DecodedPacket } from '../../packet.js';
import type { Direction } from '../../types.js';
import { endpointText, type PeerCache } from '../peer-cache.js';
import { isDict, parseBencode } from './bencode.js';
import { hasAscii, latin1, u32 } from './bytes.js';
import { indexOfCrlfCrlf } from './http.js';
import { dhtReplyPeers, isUdpAnnounceRequest, trackerResponsePeers, udpAnnounceReplyPeers, type PeerList } from './peer-lists.js';

/** Bytes of an HTTP tracker response kept for parsing. */
const HTTP_BYTES = 16384;
/** Payload packets of a UDP flow looked at for a peer list before giving up on it (for {@link PeerLearner.wants}). */
const UDP_WAIT = 6;

interface LearnState {
  /** UDP announce transaction ids asked, and by which direction. */
  tx: number[];
  txDir: Direction;
  /** TCP: the response stream (starting at `HTTP/`) and its direction. */
  http: StreamPrefix | undefined;
  httpDir: Direction;
  /** TCP: segments of a tracker flow that came before the response head (reordered), replayed when it comes. */
  early: { seq: number; data: Uint8Array }[] | undefined;
  /** Nothing more to learn from this flow. */
  done: boolean;
  /** Peer lists read from this flow. */
  lists: number;
  /** UDP payload packets seen. */
  udpPackets: number;
}

/** Learns listed peers into a {@link PeerCache}. One per engine. */
export class PeerLearner {
  private readonly states = new WeakMap<Flow, LearnState>();
  /** Counters: peer lists read, endpoints learnt. */
  readonly stats = { lists: 0, endpoints: 0 };
  /** TCP states that may still take segments of an undecided flow (while 0, other TCP packets skip the state lookup). */
  private openHttp = 0;

  constructor(private readonly cache: PeerCache) {}

  private state(flow: Flow): LearnState {
    let st = this.states.get(flow);
    if (!st) {
      st = { tx: [], txDir: 0, http: undefined, httpDir: 1, early: undefined, done: false, lists: 0, udpPackets: 0 };
      this.states.set(flow, st);
    }
    return st;
  }

  /** Look at one payload-carrying packet of `flow`; returns how many endpoints it taught. */
  observe(flow: Flow, dir: Direction, p: DecodedPacket, ts: number): number {
    if (flow.decided && flow.verdict.verdict !== 'bittorrent') return 0;
    const b = p.payload;
    if (flow.transport === 'udp') {
      // (a decided flow here is a BitTorrent one: count its packets for wants())
      if (flow.decided) this.state(flow).udpPackets++;
      if (b[0] === 0x64 && b[b.length - 1] === 0x65) return isKrpcReply(b) ? this.learn(flow, dir, dhtReplyPeers(b), ts) : 0;
      if (isUdpAnnounceRequest(b)) {
        const s = this.state(flow);
        if (s.tx.length >= 4) s.tx.shift();
        s.tx.push(u32(b, 12));
        s.txDir = dir;
        return 0;
      }
      if (b.length >= 20 && u32(b, 0) === 1) {
        const st = this.states.get(flow);
        if (!st || st.tx.length === 0 || dir === st.txDir) return 0;
        const tx = u32(b, 4);
        if (!st.tx.includes(tx)) return 0;
        st.tx = st.tx.filter((t) => t !== tx);
        return this.learn(flow, dir, udpAnnounceReplyPeers(b, tx, flow.family), ts);
      }
      return 0;
    }
    if (this.openHttp === 0 && flow.verdict.detection !== 'http-tracker' && b[0] !== 0x48) return 0; // 'H'
    let st = this.states.get(flow);
    if (st?.done) return 0;
    if (!st?.http) {
      if (!hasAscii(b, 0, 'HTTP/1.')) {
        // a tracker response segment ahead of its head: keep a few
        if (flow.verdict.detection === 'http-tracker' && dir === 1) {
          st ??= this.state(flow);
          st.early ??= [];
          if (st.early.length < 8) st.early.push({ seq: p.seq, data: b.slice() });
        }
        return 0;
      }
      st ??= this.state(flow);
      st.http = new StreamPrefix(HTTP_BYTES);
      st.httpDir = dir;
      this.openHttp++;
    } else if (dir !== st.httpDir) return 0;
    const s = st.http!;
    if (!s.push(p.seq, b)) return 0;
    if (st.early) {
      for (const e of st.early) s.push(e.seq, e.data);
      st.early = undefined;
    }
    const n = this.httpResponse(flow, dir, st, s, ts);
    if (st.done) {
      st.http = undefined;
      this.openHttp--;
    }
    return n;
  }

  private httpResponse(flow: Flow, dir: Direction, st: LearnState, s: StreamPrefix, ts: number): number {
    const bytes = s.bytes();
    const head = indexOfCrlfCrlf(bytes);
    if (head < 0) {
      if (s.full() || bytes.length > 4096) st.done = true;
      return 0;
    }
    const headers = latin1(bytes, 0, head).toLowerCase();
    let body = bytes.subarray(head + 4);
    if (/\r\ncontent-encoding:\s*(?!identity)/.test(headers) || !/^http\/1\.[01] 200/.test(headers)) {
      st.done = true;
      return 0;
    }
    if (/\r\ntransfer-encoding:\s*chunked/.test(headers)) {
      // one chunk is all a tracker sends in practice: skip its size line
      let i = 0;
      while (i < body.length && i < 10 && body[i] !== 13) i++;
      if (i + 1 >= body.length) return 0;
      body = body.subarray(i + 2);
    }
    if (body.length === 0) return 0;
    if (body[0] !== 0x64) {
      st.done = true;
      return 0;
    }
    const parsed = parseBencode(body, 0, body.length);
    if (!parsed) {
      if (s.full()) st.done = true;
      return 0;
    }
    st.done = true;
    return isDict(parsed.value) ? this.learn(flow, dir, trackerResponsePeers(parsed.value), ts) : 0;
  }

  private learn(flow: Flow, dir: Direction, list: PeerList | undefined, ts: number): number {
    if (!list) return 0;
    const st = this.state(flow);
    st.lists++;
    this.stats.lists++;
    const from = dir === 0 ? flow.client : flow.server;
    const reason = `a ${list.what} from ${endpointText(from)}`;
    for (const ep of list.endpoints) this.cache.add(ep, reason, ts, 'learnt');
    this.stats.endpoints += list.endpoints.length;
    return list.endpoints.length;
  }

  /**
   * Whether a flow judged BitTorrent may still carry a peer list (a DHT or UDP
   * tracker flow before its first list, an HTTP tracker flow before its
   * response): a monitor-only blocker keeps queueing such a flow instead of
   * letting it bypass inspection.
   */
  wants(flow: Flow): boolean {
    const st = this.states.get(flow);
    if (flow.transport === 'udp') {
      const d = flow.verdict.detection;
      if (d !== 'dht' && d !== 'udp-tracker' && d !== 'cache' && d !== 'peer-learnt') return false;
      return !st || (st.lists === 0 && st.udpPackets < UDP_WAIT);
    }
    return flow.verdict.detection === 'http-tracker' && !st?.done;
  }
}


/** `1:y1:r` in a bencoded datagram: the KRPC message is a reply (keys are sorted, so `y` is usually last). */
function isKrpcReply(b: Uint8Array): boolean {
  const n = b.length;
  if (n >= 7 && b[n - 2] === 0x72 && b[n - 3] === 0x3a && b[n - 4] === 0x31 && b[n - 5] === 0x79 && b[n - 6] === 0x3a && b[n - 7] === 0x31) return true;
  for (let i = 0; i + 6 <= n; i++) {
    if (b[i] === 0x31 && b[i + 1] === 0x3a && b[i + 2] === 0x79 && b[i + 3] === 0x31 && b[i + 4] === 0x3a && b[i + 5] === 0x72) return true;
  }
  return false;
}
