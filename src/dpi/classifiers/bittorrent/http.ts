/**
 * BitTorrent over HTTP: tracker announce/scrape requests (`info_hash=` of 20
 * bytes), webseed requests (BEP 17 / BEP 19 via client User-Agent), client
 * User-Agents, bencoded tracker responses and `.torrent` downloads.
 * @module
 */
import type { Verdict } from '../../types.js';
import { isBytes, isDict, parseBencode } from './bencode.js';
import { latin1, toHex } from './bytes.js';
import type { DomainMatcher } from './hostnames.js';
import { hostnameVerdict } from './hostnames.js';

const METHODS = ['GET ', 'POST ', 'HEAD '];

/** Clients whose User-Agent alone marks BitTorrent (BitTorrent-only software). */
const BT_AGENTS =
  /^(Azureus|BitTorrent|BTWebClient|uTorrent|\u00b5Torrent|\u00c2\u00b5Torrent|Transmission\/|qBittorrent|libtorrent|Deluge|rtorrent|BitComet|Vuze|BiglyBT|Tixati|KTorrent|WebTorrent|BitLord|Halite|PicoTorrent)/;
/** General downloaders that also speak BitTorrent: only with a BitTorrent-specific request. */
const MIXED_AGENTS = /^(aria2|Free Download Manager|FDM|FlashGet|Xunlei|Thunder)/i;

/** Result of looking at an HTTP stream start. */
export type HttpMatch = Verdict | 'partial' | 'not-http' | 'no';

/** True when the stream starts like an HTTP request or response (or could still). */
export function looksHttp(b: Uint8Array): boolean {
  const n = Math.min(b.length, 5);
  outer: for (const m of [...METHODS, 'HTTP/']) {
    for (let i = 0; i < Math.min(n, m.length); i++) if (b[i] !== m.charCodeAt(i)) continue outer;
    return true;
  }
  return false;
}

function decodeInfoHash(v: string): Uint8Array | undefined {
  const out: number[] = [];
  for (let i = 0; i < v.length; ) {
    const c = v[i]!;
    if (c === '%') {
      const h = v.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) return undefined;
      out.push(parseInt(h, 16));
      i += 3;
    } else if (c === '+') {
      out.push(0x20);
      i++;
    } else {
      const code = c.charCodeAt(0);
      if (code < 0x21 || code > 0x7e) return undefined;
      out.push(code);
      i++;
    }
    if (out.length > 20) return undefined;
  }
  return out.length === 20 ? Uint8Array.from(out) : undefined;
}

const TRACKER_KEYS = new Set(['interval', 'min interval', 'complete', 'incomplete', 'peers', 'peers6', 'failure reason', 'warning message', 'tracker id', 'files', 'downloaded']);

/** True when `body` starts with a bencoded dict whose first keys are tracker-response keys. */
function isTrackerBody(body: Uint8Array): boolean {
  if (body.length < 8 || body[0] !== 0x64) return false;
  const full = parseBencode(body, 0, body.length);
  let keys: string[] = [];
  if (full && isDict(full.value)) keys = [...full.value.entries.keys()];
  else {
    // Response cut short: read key/value pairs while they parse.
    let p = 1;
    for (let i = 0; i < 8; i++) {
      const k = parseBencode(body, p);
      if (!k || !isBytes(k.value)) break;
      const key = Buffer.from(k.value).toString('latin1');
      keys.push(key);
      const v = parseBencode(body, k.end);
      if (!v) break;
      p = v.end;
    }
  }
  if (keys.length === 0) return false;
  let hits = 0;
  for (const k of keys) if (TRACKER_KEYS.has(k)) hits++;
  return hits >= 2 || (hits === 1 && (keys[0] === 'failure reason' || keys[0] === 'files'));
}

/**
 * Look at the start of one TCP direction for BitTorrent-over-HTTP.
 * `full` says the stream prefix reached its limit (so no more bytes will come).
 */
export function matchHttp(b: Uint8Array, full: boolean, domains: DomainMatcher | undefined): HttpMatch {
  if (!looksHttp(b)) return 'not-http';
  const headEnd = indexOfCrlfCrlf(b);
  const text = latin1(b, 0, headEnd >= 0 ? headEnd : Math.min(b.length, 4096));
  const lines = text.split('\r\n');
  const first = lines[0] ?? '';
  if (headEnd < 0 && !full && lines.length < 2) return 'partial';
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c > 0) headers.set(l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim());
  }
  if (first.startsWith('HTTP/')) {
    const ct = headers.get('content-type') ?? '';
    if (/application\/x-bittorrent/i.test(ct)) {
      return { verdict: 'bittorrent', reason: 'HTTP response carrying a .torrent file (Content-Type application/x-bittorrent)', detection: 'http-torrent-file' };
    }
    if (headEnd >= 0) {
      let body = b.subarray(headEnd + 4);
      if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
        const nl = indexOfCrlf(body);
        if (nl > 0 && nl < 10) body = body.subarray(nl + 2);
      }
      if (isTrackerBody(body)) return { verdict: 'bittorrent', reason: 'HTTP tracker response (bencoded peers/interval dictionary)', detection: 'http-tracker' };
      if (body.length < 8 && !full) return 'partial';
      return 'no';
    }
    return full ? 'no' : 'partial';
  }
  // Request.
  const m = /^(GET|POST|HEAD) (\S+) HTTP\/\d/.exec(first);
  if (!m) return lines.length >= 2 || full ? 'no' : 'partial';
  const target = m[2]!;
  const q = target.indexOf('?');
  const path = q >= 0 ? target.slice(0, q) : target;
  let infoHash: string | undefined;
  if (q >= 0) {
    for (const kv of target.slice(q + 1).split('&')) {
      const eq = kv.indexOf('=');
      if (eq > 0 && kv.slice(0, eq) === 'info_hash') {
        const h = decodeInfoHash(kv.slice(eq + 1));
        if (h) infoHash = toHex(h);
        break;
      }
    }
  }
  const ua = headers.get('user-agent');
  if (infoHash) {
    const kind = /webseed|\/seed$/i.test(path) ? 'webseed request' : /scrape/i.test(path) ? 'tracker scrape' : 'tracker announce';
    const v: Verdict = { verdict: 'bittorrent', reason: `HTTP ${kind} (${m[1]} ${path}?info_hash=...)`, detection: 'http-tracker', infoHash };
    if (ua) v.client = ua;
    return v;
  }
  if (headEnd < 0 && !full) return 'partial'; // wait for all headers
  if (ua && BT_AGENTS.test(ua)) {
    return { verdict: 'bittorrent', reason: `HTTP request from BitTorrent client (User-Agent: ${ua.slice(0, 60)})`, detection: 'http-user-agent', client: ua };
  }
  if (ua && MIXED_AGENTS.test(ua) && /announce|scrape|\.torrent$/i.test(path)) {
    return { verdict: 'bittorrent', reason: `HTTP ${path} from ${ua.slice(0, 40)}`, detection: 'http-user-agent', client: ua };
  }
  const host = headers.get('host');
  if (host && domains) {
    const name = host.replace(/:\d+$/, '');
    const listed = domains.match(name);
    if (listed) return hostnameVerdict('HTTP Host', name, listed);
  }
  return 'no';
}

/** Paths whose response may be BitTorrent content (a .torrent file, a tracker reply, a webseed piece). */
const BT_PATH = /\.torrent|announce|scrape|webseed|\/seed\b|info_hash|magnet/i;

/**
 * When a stream start that {@link matchHttp} judged `no` is a complete GET or
 * HEAD request that is the connection's only one (HTTP/1.0 without
 * keep-alive, or `Connection: close`) and whose path cannot fetch BitTorrent
 * content: why nothing BitTorrent can follow on this connection (the reply to
 * a plain page is not inspected). Otherwise undefined.
 */
export function lastPlainRequest(b: Uint8Array): string | undefined {
  const headEnd = indexOfCrlfCrlf(b);
  if (headEnd < 0 || headEnd + 4 !== b.length) return undefined; // head incomplete, or more (a body, a pipelined request) follows
  const text = latin1(b, 0, headEnd);
  const m = /^(GET|HEAD) (\S+) HTTP\/1\.([01])(?:\r\n|$)/.exec(text);
  if (!m || BT_PATH.test(m[2]!)) return undefined;
  const conn = /\r\nconnection:[ \t]*([^\r]*)/i.exec(text)?.[1]?.toLowerCase() ?? '';
  const last = conn.includes('close') || (m[3] === '0' && !conn.includes('keep-alive'));
  if (!last || /\r\naccept:[^\r]*bittorrent/i.test(text)) return undefined;
  return `plain HTTP/1.${m[3]} ${m[1]} request, the connection's last (no BitTorrent can follow)`;
}

/** Offset of the first CRLFCRLF (end of an HTTP head) within the first 8 KiB, or -1. */
export function indexOfCrlfCrlf(b: Uint8Array): number {
  const lim = Math.min(b.length, 8192) - 3;
  for (let i = 0; i < lim; i++) if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  return -1;
}

function indexOfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 1 < b.length && i < 64; i++) if (b[i] === 13 && b[i + 1] === 10) return i;
  return -1;
}
