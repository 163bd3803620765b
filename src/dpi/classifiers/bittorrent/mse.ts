/**
 * Message Stream Encryption / Protocol Encryption (MSE/PE) heuristic — opt-in.
 *
 * MSE starts with a Diffie-Hellman exchange of random-looking bytes:
 * initiator → Ya (96 bytes) + PadA (0..512), responder → Yb (96) + PadB (0..512),
 * then initiator → HASH('req1',S) (20) + HASH('req2',SKEY)^HASH('req3',S) (20)
 * + encrypted VC/crypto_provide/PadC/IA (≥ 16). We cannot verify the DH values
 * without the secret, so this only checks the shape: the first flight of each
 * side is 96..608 bytes of high-entropy data that is not TLS, SSH, HTTP or
 * another recognisable start, the responder only speaks after the initiator's
 * first flight, and the initiator's second flight is at least 56 bytes.
 * Other obfuscated protocols can have the same shape, hence opt-in.
 * @module
 */
import type { FlowPacket, Verdict } from '../../types.js';

/** Per-flow MSE tracking. */
export interface MseState {
  /** Bytes of the initiator's first flight (until the responder first spoke). */
  a1: number;
  /** Bytes of the responder's first flight (until the initiator spoke again). */
  b1: number;
  /** Phase: 0 = initiator's first flight, 1 = responder's first flight, 2 = initiator's second flight, 3 = gave up. */
  phase: 0 | 1 | 2 | 3;
  /** Stream length of the initiator at the end of its first flight. */
  aEnd: number;
  /** The initiator's first 96 bytes look random. */
  aRandom: boolean;
  /** The responder's first 96 bytes look random. */
  bRandom: boolean;
}

/** Fresh state. */
export function mseState(): MseState {
  return { a1: 0, b1: 0, phase: 0, aEnd: 0, aRandom: false, bRandom: false };
}

function looksRandom(b: Uint8Array): boolean {
  if (b.length < 96) return false;
  const seen = new Uint8Array(256);
  let distinct = 0;
  let printable = 0;
  for (let i = 0; i < 96; i++) {
    const c = b[i]!;
    if (!seen[c]) {
      seen[c] = 1;
      distinct++;
    }
    if (c >= 0x20 && c < 0x7f) printable++;
  }
  // 96 uniform bytes: ~80 distinct values, ~36 printable. Text and structured headers fall well short.
  if (distinct < 64 || printable > 60) return false;
  // Known protocol starts that are not MSE.
  const c0 = b[0]!;
  if (c0 === 0x16 && b[1] === 0x03) return false; // TLS
  if (c0 === 0x13 && b[1] === 0x42) return false; // plain BitTorrent
  return true;
}

/** Track the flight shape of a TCP flow; a verdict when it matches MSE. */
export function matchMse(p: FlowPacket, stream: Uint8Array, st: MseState): Verdict | undefined {
  if (st.phase === 3) return undefined;
  if (p.dir === 0) {
    if (st.phase === 0) {
      st.a1 = stream.length;
      if (st.a1 > 608) st.phase = 3;
      else if (st.a1 >= 96) st.aRandom = looksRandom(stream);
      return undefined;
    }
    if (st.phase === 1) {
      if (st.b1 < 96 || !st.bRandom) {
        st.phase = 3;
        return undefined;
      }
      st.phase = 2;
      st.aEnd = st.a1;
    }
    if (stream.length - st.aEnd >= 56) {
      st.phase = 3;
      return {
        verdict: 'bittorrent',
        reason: `MSE/PE handshake shape (random first flights of ${st.a1} and ${st.b1} bytes, then ${stream.length - st.aEnd}+ bytes)`,
        detection: 'mse',
        peers: true,
      };
    }
    return undefined;
  }
  // responder
  if (st.phase === 0) {
    if (st.a1 < 96 || !st.aRandom) {
      st.phase = 3;
      return undefined;
    }
    st.phase = 1;
  }
  if (st.phase === 1) {
    st.b1 = stream.length;
    if (st.b1 > 608) st.phase = 3;
    else if (st.b1 >= 96) st.bRandom = looksRandom(stream);
  }
  return undefined;
}
