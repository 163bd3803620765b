/**
 * Peer lists in the swarm's own directories: the endpoints a client will
 * connect to next.
 *
 * - HTTP tracker responses (BEP 3 / BEP 23 / BEP 7): `peers` as a compact
 *   string of 6-byte IPv4 entries or a list of `{ ip, port }` dictionaries,
 *   `peers6` as 18-byte IPv6 entries;
 * - UDP tracker announce replies (BEP 15, action 1): 20-byte header, then
 *   6-byte (IPv4 tracker) or 18-byte (IPv6 tracker) entries;
 * - DHT replies (BEP 5 / BEP 32): `values` (list of 6- or 18-byte compact
 *   peers), `nodes` (26 bytes: 20-byte id + IPv4 + port), `nodes6` (38 bytes).
 *
 * Listed endpoints are hearsay, so they are filtered: port 0 and ports below
 * 1024 (well-known services — a forged reply must not get DNS or HTTPS servers
 * judged BitTorrent), unspecified, loopback, multicast and broadcast
 * addresses are dropped, and at most {@link MAX_LISTED} entries are taken per
 * reply.
 * @module
 */
import { addressBytes, addressText, ipFamily } from '../../../net/ip.js';
import type { Endpoint } from '../../types.js';
import { bytesText, isBytes, isDict, parseBencode, type BDict, type BValue } from './bencode.js';
import { u16, u32 } from './bytes.js';

/** Most endpoints taken from one reply. */
export const MAX_LISTED = 256;

/** Lowest port a listed endpoint may have. */
export const MIN_LISTED_PORT = 1024;

/** Endpoints one reply listed, with what kind of list it was. */
export interface PeerList {
  /** e.g. `DHT get_peers reply (values)`, `HTTP tracker response (peers, peers6)`. */
  what: string;
  endpoints: Endpoint[];
}

function usable(a: Uint8Array, port: number): boolean {
  if (port < MIN_LISTED_PORT) return false;
  if (a.length === 4) {
    const b0 = a[0]!;
    if (b0 === 0 || b0 === 127 || b0 >= 224) return false; // this network, loopback, multicast/reserved/broadcast
    return true;
  }
  if (a[0] === 0xff) return false; // multicast
  let zero = true;
  for (let i = 0; i < 15; i++) if (a[i] !== 0) zero = false;
  return !(zero && (a[15] === 0 || a[15] === 1)); // :: and ::1
}

/** Read `n`-byte entries (address of `alen` bytes at `skip`, then a big-endian port) into `out`. */
function compact(b: Uint8Array, entry: number, skip: number, alen: 4 | 16, out: Endpoint[]): void {
  for (let o = 0; o + entry <= b.length && out.length < MAX_LISTED; o += entry) {
    const a = b.subarray(o + skip, o + skip + alen);
    const port = u16(b, o + skip + alen);
    if (usable(a, port)) out.push({ addr: addressText(a), port });
  }
}

/** Compact IPv4 peers (6 bytes each). */
export function compactPeers4(b: Uint8Array, out: Endpoint[] = []): Endpoint[] {
  compact(b, 6, 0, 4, out);
  return out;
}

/** Compact IPv6 peers (18 bytes each). */
export function compactPeers6(b: Uint8Array, out: Endpoint[] = []): Endpoint[] {
  compact(b, 18, 0, 16, out);
  return out;
}

/** DHT `nodes` (26 bytes: id, IPv4, port). */
export function compactNodes4(b: Uint8Array, out: Endpoint[] = []): Endpoint[] {
  compact(b, 26, 20, 4, out);
  return out;
}

/** DHT `nodes6` (38 bytes: id, IPv6, port). */
export function compactNodes6(b: Uint8Array, out: Endpoint[] = []): Endpoint[] {
  compact(b, 38, 20, 16, out);
  return out;
}

/** Dictionary-form peers: `[{ ip: "198.18.0.1", port: 6881, "peer id": ... }, ...]`. */
function dictPeers(list: BValue[], out: Endpoint[]): void {
  for (const item of list) {
    if (out.length >= MAX_LISTED) return;
    if (!isDict(item)) continue;
    const ip = bytesText(item.entries.get('ip'));
    const port = item.entries.get('port');
    if (!ip || typeof port !== 'number' || port < 1 || port > 65535) continue;
    const bytes = ipBytes(ip);
    if (bytes && usable(bytes, port)) out.push({ addr: addressText(bytes), port });
  }
}

/** Address bytes of an IPv4 or IPv6 literal (host names are not resolved: undefined). */
function ipBytes(s: string): Uint8Array | undefined {
  const family = s.length <= 45 ? ipFamily(s) : undefined;
  return family ? addressBytes(s, family) : undefined;
}

/**
 * Peers of a tracker response dictionary (HTTP tracker body, already parsed):
 * `peers` compact or dictionary form, `peers6`. Undefined when it lists none.
 */
export function trackerResponsePeers(d: BDict): PeerList | undefined {
  const out: Endpoint[] = [];
  const keys: string[] = [];
  const peers = d.entries.get('peers');
  if (isBytes(peers) && peers.length % 6 === 0) {
    compactPeers4(peers, out);
    keys.push('peers');
  } else if (Array.isArray(peers)) {
    dictPeers(peers, out);
    keys.push('peers');
  }
  const peers6 = d.entries.get('peers6');
  if (isBytes(peers6) && peers6.length % 18 === 0) {
    compactPeers6(peers6, out);
    keys.push('peers6');
  }
  return out.length ? { what: `HTTP tracker response (${keys.join(', ')})`, endpoints: out } : undefined;
}

/** Peers and nodes of a DHT reply datagram (`y` = `r`). Undefined when it is not one or lists none. */
export function dhtReplyPeers(b: Uint8Array): PeerList | undefined {
  if (b.length < 20 || b[0] !== 0x64 || b[b.length - 1] !== 0x65) return undefined;
  const parsed = parseBencode(b, 0, b.length);
  if (!parsed || parsed.end !== b.length || !isDict(parsed.value)) return undefined;
  const d = parsed.value.entries;
  if (bytesText(d.get('y')) !== 'r') return undefined;
  const r = d.get('r');
  if (!isDict(r)) return undefined;
  const id = r.entries.get('id');
  if (!isBytes(id) || id.length !== 20) return undefined;
  const out: Endpoint[] = [];
  const keys: string[] = [];
  const values = r.entries.get('values');
  if (Array.isArray(values)) {
    for (const v of values) {
      if (!isBytes(v)) continue;
      if (v.length === 6) compactPeers4(v, out);
      else if (v.length === 18) compactPeers6(v, out);
    }
    keys.push('values');
  }
  const nodes = r.entries.get('nodes');
  if (isBytes(nodes) && nodes.length % 26 === 0) {
    compactNodes4(nodes, out);
    keys.push('nodes');
  }
  const nodes6 = r.entries.get('nodes6');
  if (isBytes(nodes6) && nodes6.length % 38 === 0) {
    compactNodes6(nodes6, out);
    keys.push('nodes6');
  }
  return out.length ? { what: `DHT reply (${keys.join(', ')})`, endpoints: out } : undefined;
}

/** True when `b` is a UDP tracker announce request (action 1, length ≥ 98); its transaction id is `u32(b, 12)`. */
export function isUdpAnnounceRequest(b: Uint8Array): boolean {
  return b.length >= 98 && u32(b, 8) === 1;
}

/**
 * Peers of a UDP tracker announce reply (action 1) whose transaction id is
 * `tx`: 18-byte entries when the tracker is reached over IPv6 (`family` 6),
 * 6-byte entries otherwise (BEP 15).
 */
export function udpAnnounceReplyPeers(b: Uint8Array, tx: number, family: 4 | 6): PeerList | undefined {
  if (b.length < 20 || u32(b, 0) !== 1 || u32(b, 4) !== tx) return undefined;
  const entry = family === 6 ? 18 : 6;
  if ((b.length - 20) % entry !== 0) return undefined;
  const out = family === 6 ? compactPeers6(b.subarray(20)) : compactPeers4(b.subarray(20));
  return out.length ? { what: 'UDP tracker announce reply', endpoints: out } : undefined;
}
