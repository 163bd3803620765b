/**
 * Names of BitTorrent client vendors, DHT bootstrap routers and tracker
 * services, matched in DNS questions, TLS SNI and HTTP Host headers. This is
 * what nDPI does for `utorrent.com` and friends (its `DNS.BitTorrent`,
 * `TLS.BitTorrent` labels). A policy choice as much as a protocol detection:
 * turn it off with `hostnames: false` or give your own list.
 * @module
 */
import type { Verdict } from '../../types.js';
import { u16 } from './bytes.js';

/** Default domain list (each matches itself and its subdomains). */
export const DEFAULT_BITTORRENT_DOMAINS: readonly string[] = [
  'utorrent.com',
  'bittorrent.com',
  'bitcomet.com',
  'qbittorrent.org',
  'transmissionbt.com',
  'deluge-torrent.org',
  'vuze.com',
  'biglybt.com',
  'tixati.com',
  'dht.libtorrent.org',
  'dht.aelitis.com',
  'router.bitcomet.com',
  'opentrackr.org',
  'openbittorrent.com',
  'publicbt.com',
];

/** Suffix matcher over a domain list. */
export class DomainMatcher {
  private readonly set: Set<string>;
  constructor(domains: readonly string[]) {
    this.set = new Set(domains.map((d) => d.toLowerCase().replace(/\.$/, '')));
  }
  /** The listed domain that `name` is or is under, if any. */
  match(name: string): string | undefined {
    let n = name.toLowerCase().replace(/\.$/, '');
    for (let i = 0; i < 8; i++) {
      if (this.set.has(n)) return n;
      const dot = n.indexOf('.');
      if (dot < 0) return undefined;
      n = n.slice(dot + 1);
    }
    return undefined;
  }
}

/** First question name of a DNS message at `o` (no compression in questions), or undefined. */
export function dnsQuestionName(b: Uint8Array, o: number): string | undefined {
  if (b.length < o + 17) return undefined;
  const flags = u16(b, o + 2);
  if ((flags >> 11) & 0xf) return undefined; // opcode QUERY only
  const qd = u16(b, o + 4);
  if (qd < 1 || qd > 4) return undefined;
  let p = o + 12;
  const labels: string[] = [];
  for (let i = 0; i < 64; i++) {
    if (p >= b.length) return undefined;
    const l = b[p]!;
    if (l === 0) break;
    if (l > 63 || p + 1 + l > b.length) return undefined;
    let s = '';
    for (let j = 1; j <= l; j++) {
      const c = b[p + j]!;
      if (c <= 0x20 || c >= 0x7f) return undefined;
      s += String.fromCharCode(c);
    }
    labels.push(s);
    p += 1 + l;
  }
  if (labels.length === 0 || p + 5 > b.length) return undefined;
  return labels.join('.');
}

/**
 * SNI of a TLS ClientHello at the start of a stream. Returns a name, `'partial'`
 * while the hello is not complete yet, or undefined when this is not a ClientHello.
 */
export function tlsClientHelloSni(b: Uint8Array): string | 'partial' | undefined {
  if (b.length < 6) return b.length === 0 || b[0] === 0x16 ? 'partial' : undefined;
  if (b[0] !== 0x16 || b[1] !== 0x03 || b[5] !== 0x01) return undefined;
  if (b.length < 9) return 'partial';
  const hsLen = (b[6]! << 16) | (b[7]! << 8) | b[8]!;
  const end = 9 + hsLen;
  if (b.length < Math.min(end, 2048)) return 'partial';
  const lim = Math.min(end, b.length);
  let p = 9 + 2 + 32;
  if (p >= lim) return undefined;
  p += 1 + b[p]!; // session id
  if (p + 2 > lim) return undefined;
  p += 2 + u16(b, p); // cipher suites
  if (p + 1 > lim) return undefined;
  p += 1 + b[p]!; // compression
  if (p + 2 > lim) return undefined;
  const extEnd = Math.min(lim, p + 2 + u16(b, p));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = u16(b, p);
    const len = u16(b, p + 2);
    const q = p + 4;
    if (type === 0 && q + 5 <= extEnd) {
      const nameLen = u16(b, q + 3);
      if (b[q + 2] === 0 && q + 5 + nameLen <= extEnd) return Buffer.from(b.buffer, b.byteOffset + q + 5, nameLen).toString('latin1');
      return undefined;
    }
    p = q + len;
  }
  return undefined;
}

/** Verdict for a matched name. */
export function hostnameVerdict(where: string, name: string, listed: string): Verdict {
  return {
    verdict: 'bittorrent',
    reason: `${where} ${name} (BitTorrent domain ${listed})`,
    detection: 'hostname',
  };
}
