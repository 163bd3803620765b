/**
 * The BitTorrent peer wire handshake: `0x13 "BitTorrent protocol"`, 8 reserved
 * bytes, 20-byte info-hash, 20-byte peer id (BEP 3). Also the first peer wire
 * messages of a stream whose handshake we did not see (extension protocol,
 * BEP 10, with ut_metadata / ut_pex keys; PEX, BEP 11).
 * @module
 */
import type { Verdict } from '../../types.js';
import { isBytes, isDict, parseBencode, type BDict } from './bencode.js';
import { prefixMatch, printable, toHex, u32 } from './bytes.js';
import { clientFromPeerId } from './peer-id.js';

const PROTOCOL = '\x13BitTorrent protocol';

/**
 * Match the handshake at offset `o` of `b`. Returns a verdict when the 20-byte
 * protocol header is there, `'partial'` while the bytes so far agree but are
 * too few, or `undefined` when it is not a handshake.
 */
export function matchHandshake(b: Uint8Array, o: number, carrier: string): Verdict | 'partial' | undefined {
  const m = prefixMatch(b, o, PROTOCOL);
  if (m === 'no') return undefined;
  if (m === 'partial') return 'partial';
  const v: Verdict = {
    verdict: 'bittorrent',
    reason: `${carrier} peer handshake (0x13 "BitTorrent protocol")`,
    detection: 'handshake',
    peers: true,
  };
  if (b.length >= o + 48) {
    v.infoHash = toHex(b, o + 28, o + 48);
    const reserved = b.subarray(o + 20, o + 28);
    const ext: string[] = [];
    if (reserved[5]! & 0x10) ext.push('extension protocol');
    if (reserved[7]! & 0x01) ext.push('DHT');
    if (reserved[7]! & 0x04) ext.push('fast');
    if (ext.length) v.reason += `, reserved bits: ${ext.join(', ')}`;
  }
  if (b.length >= o + 68) {
    const id = b.subarray(o + 48, o + 68);
    v.peerId = printable(id);
    const client = clientFromPeerId(id);
    if (client) v.client = client;
  }
  return v;
}

const EXT_NAMES = /^(ut_|lt_|upload_only$|ut_holepunch$|LT_metadata$|share_mode$|i2p_pex$)/;
const PEX_KEYS = new Set(['added', 'added.f', 'added6', 'added6.f', 'dropped', 'dropped6']);

/** True when a bencoded dict is a BEP 10 extended handshake (an `m` dict of extension names → ids). */
function isExtendedHandshake(d: BDict): boolean {
  const m = d.entries.get('m');
  if (!isDict(m)) return false;
  let known = 0;
  for (const [k, v] of m.entries) {
    if (typeof v !== 'number') return false;
    if (EXT_NAMES.test(k)) known++;
  }
  return known > 0;
}

/** True when a bencoded dict looks like a PEX (BEP 11) or ut_metadata (BEP 9) message. */
function isPexOrMetadata(d: BDict): string | undefined {
  let pex = 0;
  for (const [k, v] of d.entries) {
    if (PEX_KEYS.has(k) && isBytes(v)) pex++;
    else if (pex > 0) return undefined;
  }
  if (pex > 0 && pex === d.entries.size) {
    const added = d.entries.get('added');
    if (isBytes(added) && added.length % 6 !== 0) return undefined;
    return 'PEX (ut_pex) message';
  }
  const t = d.entries.get('msg_type');
  const piece = d.entries.get('piece');
  if (typeof t === 'number' && t >= 0 && t <= 2 && typeof piece === 'number' && piece >= 0) return 'ut_metadata message';
  return undefined;
}

/**
 * Match a BEP 10 extension-protocol message (length prefix, id 20) at offset `o`.
 * The bencoded dictionary must parse (up to the bytes available) and carry
 * extension names (handshake) or PEX / ut_metadata keys.
 */
export function matchExtensionMessage(b: Uint8Array, o: number, carrier: string): Verdict | undefined {
  if (b.length < o + 8) return undefined;
  const len = u32(b, o);
  if (b[o + 4] !== 20 || len < 3 || len > 1 << 20) return undefined;
  const extId = b[o + 5]!;
  if (b[o + 6] !== 0x64) return undefined; // 'd'
  const end = Math.min(b.length, o + 4 + len);
  const parsed = parseBencode(b, o + 6, end);
  if (!parsed || !isDict(parsed.value)) return undefined;
  if (extId === 0) {
    if (!isExtendedHandshake(parsed.value)) return undefined;
    return { verdict: 'bittorrent', reason: `${carrier} BitTorrent extension handshake (BEP 10 "m" dictionary)`, detection: 'extension', peers: true };
  }
  const what = isPexOrMetadata(parsed.value);
  if (!what) return undefined;
  return { verdict: 'bittorrent', reason: `${carrier} BitTorrent ${what}`, detection: 'extension', peers: true };
}
