/**
 * uTP, the micro transport protocol (BEP 29), versions 1 and 0.
 *
 * One uTP header alone is too weak to decide (20 bytes, few fixed bits), so a
 * flow is judged BitTorrent when:
 * - a DATA packet carries a BitTorrent handshake or extension message, or
 * - a SYN is answered by a STATE whose connection id equals the SYN's and whose
 *   ack_nr equals the SYN's seq_nr, or
 * - the two directions use connection ids N and N±1 with ack numbers that
 *   acknowledge the other side's sequence numbers, or
 * - three consecutive packets of one direction agree: same connection id,
 *   sequence numbers that move forward by small steps, and a microsecond
 *   timestamp field that advances like the capture clock (within 50 ms + 10%).
 *   The timestamp test is what makes this robust: random or other-protocol
 *   datagrams do not carry the sender's microsecond clock at bytes 4..8.
 * @module
 */
import type { Direction, Verdict } from '../../types.js';
import { matchExtensionMessage, matchHandshake } from './handshake.js';
import { u16, u32 } from './bytes.js';

const ST_DATA = 0;
const ST_STATE = 2;
const ST_SYN = 4;

/** A parsed uTP v1 header. */
export interface UtpV1Header {
  type: number;
  connId: number;
  tsUs: number;
  tsDiff: number;
  wnd: number;
  seq: number;
  ack: number;
  /** Header length including extensions (payload starts here). */
  headerLen: number;
}

/** Parse a uTP v1 header and check its static rules; undefined when it is not one. */
export function parseUtpV1(b: Uint8Array): UtpV1Header | undefined {
  if (b.length < 20) return undefined;
  const b0 = b[0]!;
  if ((b0 & 0x0f) !== 1) return undefined;
  const type = b0 >> 4;
  if (type > 4) return undefined;
  let next = b[1]!;
  let off = 20;
  let n = 0;
  while (next !== 0) {
    if (next > 4 || ++n > 4 || off + 2 > b.length) return undefined;
    const len = b[off + 1]!;
    if (next === 1 && (len < 4 || len % 4 !== 0)) return undefined; // selective ack bitmask
    if (next === 2 && len !== 8) return undefined; // extension bits
    next = b[off]!;
    off += 2 + len;
    if (off > b.length) return undefined;
  }
  const h: UtpV1Header = {
    type,
    connId: u16(b, 2),
    tsUs: u32(b, 4),
    tsDiff: u32(b, 8),
    wnd: u32(b, 12),
    seq: u16(b, 16),
    ack: u16(b, 18),
    headerLen: off,
  };
  if (h.tsUs === 0) return undefined;
  const hasData = b.length > off;
  if (type === ST_DATA && !hasData) return undefined;
  if ((type === ST_SYN || type === ST_STATE || type === 3) && hasData) return undefined;
  if (type === ST_SYN && h.tsDiff !== 0) return undefined;
  return h;
}

/** What the uTP matcher tracks for one direction of a flow (part of {@link UtpState}). */
export interface DirTrack {
  connId: number;
  /** Sender clock in seconds (v1: µs field / 1e6, v0: sec + usec/1e6), modulo wrap handled by caller. */
  clock: number;
  cap: number;
  seq: number;
  ack: number;
  good: number;
  /** Capture time covered by the consistent run. */
  span: number;
}

/** Per-flow uTP state. */
export interface UtpState {
  v1: [DirTrack | undefined, DirTrack | undefined];
  v0: [DirTrack | undefined, DirTrack | undefined];
  syn: { dir: Direction; connId: number; seq: number } | undefined;
}

/** Fresh state. */
export function utpState(): UtpState {
  return { v1: [undefined, undefined], v0: [undefined, undefined], syn: undefined };
}

/**
 * The sender's clock must move forward, and by about as much as the capture
 * clock did: within 20 ms + 5 %. A constant field (a magic cookie, zeros) or a
 * counter fails; so does a timestamp in other units.
 */
function clockAgrees(dClock: number, dCap: number): boolean {
  if (dCap < 0 || dCap > 3600 || dClock <= 0) return false;
  return Math.abs(dClock - dCap) <= 0.02 + 0.05 * dCap;
}

/** Capture time the consistent run must span before it counts (so bursts alone never decide). */
const MIN_SPAN = 0.05;

function seqStep(a: number, b: number, max: number): boolean {
  return ((b - a) & 0xffff) <= max;
}

/** Match one UDP payload against uTP v1 and v0 rules, with the flow's uTP state. */
export function matchUtp(b: Uint8Array, dir: Direction, ts: number, st: UtpState): Verdict | undefined {
  const h = parseUtpV1(b);
  if (h) {
    if (h.type === ST_DATA) {
      const hs = matchHandshake(b, h.headerLen, 'uTP');
      if (hs && hs !== 'partial') return hs;
      const ext = matchExtensionMessage(b, h.headerLen, 'uTP');
      if (ext) return ext;
    }
    if (h.type === ST_SYN) st.syn = { dir, connId: h.connId, seq: h.seq };
    // SYN / STATE relation
    const syn = st.syn;
    if (syn && syn.dir !== dir && h.type === ST_STATE && h.connId === syn.connId && h.ack === syn.seq) {
      return { verdict: 'bittorrent', reason: `uTP v1 SYN answered by STATE (connection id ${syn.connId}, ack_nr = SYN seq_nr)`, detection: 'utp', peers: true };
    }
    // cross-direction relation: the initiator sends with connection id R+1, the responder with R,
    // and each side's ack_nr acknowledges (is just behind) the other side's seq_nr.
    const o = st.v1[dir === 0 ? 1 : 0];
    if (o && (h.type === ST_STATE || h.type === ST_DATA)) {
      const diff = (h.connId - o.connId) & 0xffff;
      if ((diff === 1 || diff === 0xffff) && seqStep(h.ack, o.seq, 64) && seqStep(o.ack, h.seq, 64)) {
        return { verdict: 'bittorrent', reason: `uTP v1 connection ids ${o.connId}/${h.connId} and ack numbers agree across directions`, detection: 'utp', peers: true };
      }
    }
    const prev = st.v1[dir];
    const clock = h.tsUs / 1e6;
    if (prev && prev.connId === h.connId) {
      let dClock = clock - prev.clock;
      if (dClock < 0) dClock += 4294.967296; // 32-bit µs wrap
      if (clockAgrees(dClock, ts - prev.cap) && seqStep(prev.seq, h.seq, 256) && seqStep(prev.ack, h.ack, 4096)) {
        prev.good++;
        prev.span += ts - prev.cap;
        prev.clock = clock;
        prev.cap = ts;
        prev.seq = h.seq;
        prev.ack = h.ack;
        if (prev.good >= 2 && prev.span >= MIN_SPAN) {
          return {
            verdict: 'bittorrent',
            reason: `uTP v1: ${prev.good + 1} packets with connection id ${h.connId}, advancing seq_nr and a microsecond clock that tracks capture time`,
            detection: 'utp',
            peers: true,
          };
        }
        return undefined;
      }
    }
    st.v1[dir] = { connId: h.connId, clock, cap: ts, seq: h.seq, ack: h.ack, good: 0, span: 0 };
    return undefined;
  }
  return matchUtpV0(b, dir, ts, st);
}

function matchUtpV0(b: Uint8Array, dir: Direction, ts: number, st: UtpState): Verdict | undefined {
  // v0 header: conn_id u32, tv_sec u32, tv_usec u32, reply_micro u32, windowsize u8, ext u8, flags u8, seq u16, ack u16
  if (b.length < 23) return undefined;
  const usec = u32(b, 8);
  const ext = b[17]!;
  const flags = b[18]!;
  if (usec >= 1_000_000 || ext > 2 || flags > 4) return undefined;
  if (flags === 0 && b.length === 23) return undefined; // DATA without data
  const connId = u32(b, 0);
  const clock = u32(b, 4) + usec / 1e6;
  const seq = u16(b, 19);
  const ack = u16(b, 21);
  const prev = st.v0[dir];
  if (prev && prev.connId === connId && clockAgrees(clock - prev.clock, ts - prev.cap) && seqStep(prev.seq, seq, 256) && seqStep(prev.ack, ack, 4096)) {
    prev.good++;
    prev.span += ts - prev.cap;
    prev.clock = clock;
    prev.cap = ts;
    prev.seq = seq;
    prev.ack = ack;
    if (prev.good >= 2 && prev.span >= MIN_SPAN) {
      return {
        verdict: 'bittorrent',
        reason: `uTP v0: ${prev.good + 1} packets with connection id ${connId}, advancing seq_nr and a timeval that tracks capture time`,
        detection: 'utp',
        peers: true,
      };
    }
    return undefined;
  }
  st.v0[dir] = { connId, clock, cap: ts, seq, ack, good: 0, span: 0 };
  return undefined;
}
