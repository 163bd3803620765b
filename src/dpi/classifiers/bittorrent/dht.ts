/**
 * Mainline DHT KRPC messages (BEP 5): one bencoded dictionary per datagram with
 * `t` (transaction id), `y` = `q` | `r` | `e`, and for queries `q` plus an `a`
 * dictionary holding a 20-byte `id`; for replies an `r` dictionary with a
 * 20-byte `id`; for errors an `e` list [code, message]. The whole datagram must
 * be one valid dictionary: a stray "d1:" in random bytes does not pass.
 * @module
 */
import type { Verdict } from '../../types.js';
import { bytesText, hex, isBytes, isDict, parseBencode } from './bencode.js';

const QUERIES = new Set(['ping', 'find_node', 'get_peers', 'announce_peer', 'get', 'put', 'sample_infohashes', 'vote']);

/** Match a KRPC message filling the whole UDP payload. */
export function matchDht(b: Uint8Array): Verdict | undefined {
  if (b.length < 20 || b[0] !== 0x64 || b[b.length - 1] !== 0x65) return undefined;
  const parsed = parseBencode(b, 0, b.length);
  if (!parsed || parsed.end !== b.length || !isDict(parsed.value)) return undefined;
  const d = parsed.value.entries;
  const y = bytesText(d.get('y'));
  const t = d.get('t');
  if (!isBytes(t) || t.length === 0 || t.length > 32) return undefined;
  const client = clientFromV(d.get('v'));
  if (y === 'q') {
    const q = bytesText(d.get('q'));
    const a = d.get('a');
    if (!q || !isDict(a)) return undefined;
    const id = a.entries.get('id');
    if (!isBytes(id) || id.length !== 20) return undefined;
    if (!QUERIES.has(q) && !/^[a-z_]{2,32}$/.test(q)) return undefined;
    const v: Verdict = { verdict: 'bittorrent', reason: `DHT KRPC ${q} query`, detection: 'dht', peers: true };
    const ih = a.entries.get('info_hash');
    if (isBytes(ih) && ih.length === 20) v.infoHash = hex(ih);
    if (client) v.client = client;
    return v;
  }
  if (y === 'r') {
    const r = d.get('r');
    if (!isDict(r)) return undefined;
    const id = r.entries.get('id');
    if (!isBytes(id) || id.length !== 20) return undefined;
    const has = ['nodes', 'nodes6', 'values', 'token', 'samples'].filter((k) => r.entries.has(k));
    const v: Verdict = { verdict: 'bittorrent', reason: `DHT KRPC reply${has.length ? ` (${has.join(', ')})` : ''}`, detection: 'dht', peers: true };
    if (client) v.client = client;
    return v;
  }
  if (y === 'e') {
    const e = d.get('e');
    if (!Array.isArray(e) || e.length < 2 || typeof e[0] !== 'number' || !isBytes(e[1])) return undefined;
    return { verdict: 'bittorrent', reason: `DHT KRPC error ${e[0]}`, detection: 'dht', peers: true };
  }
  return undefined;
}

function clientFromV(v: unknown): string | undefined {
  if (!(v instanceof Uint8Array) || v.length !== 4) return undefined;
  const code = String.fromCharCode(v[0]!, v[1]!);
  if (!/^[A-Za-z0-9]{2}$/.test(code)) return undefined;
  return `${code} ${v[2]}.${v[3]}`;
}
