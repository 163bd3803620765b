/**
 * Magnet links (`magnet:?xt=urn:btih:<40 hex | 32 base32>` or `urn:btmh:`) in payload.
 * @module
 */
import type { Verdict } from '../../types.js';
import { view } from './bytes.js';

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32ToHex(s: string): string | undefined {
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of s.toUpperCase()) {
    const i = B32.indexOf(ch);
    if (i < 0) return undefined;
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out).toString('hex');
}

const MAGNET = Buffer.from('magnet:?', 'latin1');
const MAGNET_UPPER = Buffer.from('MAGNET:?', 'latin1');

/** Find a magnet link with a BitTorrent info-hash in `payload`. */
export function matchMagnet(payload: Uint8Array): Verdict | undefined {
  if (payload.length < 60) return undefined;
  // Cheap pre-check without allocating: a magnet link has ':?' right after 'magnet'.
  // (TypedArray indexOf is native; ':' is rare in binary payloads.)
  let i = payload.indexOf(0x3a, 6);
  while (i >= 0 && payload[i + 1] !== 0x3f) i = payload.indexOf(0x3a, i + 1);
  if (i < 0) return undefined;
  const buf = view(payload);
  let at = buf.indexOf(MAGNET, 0);
  if (at < 0) at = buf.indexOf(MAGNET_UPPER, 0);
  while (at >= 0) {
    const text = buf.toString('latin1', at, Math.min(buf.length, at + 400));
    const m = /[?&](?:amp;)?xt(?:\.\d+)?=urn(?::|%3A)(btih|btmh)(?::|%3A)([0-9A-Za-z]+)/i.exec(text);
    if (m) {
      const kind = m[1]!.toLowerCase();
      const h = m[2]!;
      let infoHash: string | undefined;
      if (kind === 'btih' && /^[0-9a-fA-F]{40}/.test(h)) infoHash = h.slice(0, 40).toLowerCase();
      else if (kind === 'btih' && /^[A-Za-z2-7]{32}/.test(h)) infoHash = base32ToHex(h.slice(0, 32));
      else if (kind === 'btmh' && /^1220[0-9a-fA-F]{64}/.test(h)) infoHash = h.slice(4, 68).toLowerCase();
      if (infoHash) {
        return { verdict: 'bittorrent', reason: `magnet link (urn:${kind}:${infoHash.slice(0, 12)}...)`, detection: 'magnet', infoHash };
      }
    }
    at = buf.indexOf(MAGNET, at + 8);
  }
  return undefined;
}
