/**
 * UDP tracker protocol (BEP 15): connect requests start with the 64-bit magic
 * 0x41727101980 and action 0; announce / scrape / error replies are accepted
 * when their transaction id matches a request seen in the other direction.
 * @module
 */
import type { Direction, Verdict } from '../../types.js';
import { toHex, u32 } from './bytes.js';

/** Per-flow state: pending transaction ids per direction that sent them. */
export interface UdpTrackerState {
  /** Transaction id → action, for requests sent by each direction. */
  pending: [Map<number, number>, Map<number, number>];
}

/** Fresh state. */
export function udpTrackerState(): UdpTrackerState {
  return { pending: [new Map(), new Map()] };
}

/** Match one datagram of a UDP tracker conversation. */
export function matchUdpTracker(b: Uint8Array, dir: Direction, st: UdpTrackerState): Verdict | undefined {
  if (b.length < 8) return undefined;
  // connect request: protocol_id 0x0000041727101980, action 0
  if (b.length >= 16 && u32(b, 0) === 0x417 && u32(b, 4) === 0x27101980 && u32(b, 8) === 0) {
    return { verdict: 'bittorrent', reason: 'UDP tracker connect request (magic 0x41727101980)', detection: 'udp-tracker', peers: true };
  }
  const other = st.pending[dir === 0 ? 1 : 0];
  // Replies: action, transaction id must match a request from the other side.
  const action = u32(b, 0);
  const tx = u32(b, 4);
  const asked = other.get(tx);
  if (asked !== undefined) {
    if (action === 1 && asked === 1 && b.length >= 20 && ((b.length - 20) % 6 === 0 || (b.length - 20) % 18 === 0)) {
      const peers = (b.length - 20) % 6 === 0 ? (b.length - 20) / 6 : (b.length - 20) / 18;
      return { verdict: 'bittorrent', reason: `UDP tracker announce reply (${peers} peers) matching request transaction`, detection: 'udp-tracker', peers: true };
    }
    if (action === 2 && asked === 2 && (b.length - 8) % 12 === 0) {
      return { verdict: 'bittorrent', reason: 'UDP tracker scrape reply matching request transaction', detection: 'udp-tracker', peers: true };
    }
    if (action === 3 && b.length > 8) {
      return { verdict: 'bittorrent', reason: 'UDP tracker error reply matching request transaction', detection: 'udp-tracker', peers: true };
    }
  }
  // Requests (without the connect seen): remember their transaction ids.
  if (b.length >= 16) {
    const reqAction = u32(b, 8);
    const reqTx = u32(b, 12);
    const mine = st.pending[dir];
    if (reqAction === 1 && b.length >= 98 && u32(b, 80) <= 3) {
      if (mine.size < 16) mine.set(reqTx, 1);
    } else if (reqAction === 2 && b.length >= 36 && (b.length - 16) % 20 === 0) {
      if (mine.size < 16) mine.set(reqTx, 2);
    }
  }
  return undefined;
}

/** Info-hash of an announce request (for reporting). */
export function announceInfoHash(b: Uint8Array): string | undefined {
  return b.length >= 98 && u32(b, 8) === 1 ? toHex(b, 16, 36) : undefined;
}
