/**
 * IPv4/IPv6 addresses and prefixes: the one module that parses, formats,
 * converts and compares them (pure functions, no I/O).
 *
 * - family: {@link ipFamily} (`4`, `6`, or undefined; IPv6 zone ids are refused),
 * - prefixes: {@link parsePrefix} (`a.b.c.d[/n]`, `x::y[/n]`),
 * - bytes: {@link addressBytes} / {@link addressText} (RFC 5952 text for IPv6),
 * - numbers: {@link addressToBigInt} / {@link bigIntToAddress},
 * - intervals: {@link prefixInterval}, {@link mergeIntervals}, {@link maskBytes}.
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import { isPlainIPv4, isPlainIPv6 } from './ip-scan.js';

/** An address family: 4 or 6. */
export type IpFamily = 4 | 6;

/** Address width in bits: 32 or 128. */
export const familyBits = (family: IpFamily): 32 | 128 => (family === 4 ? 32 : 128);

/** 4 for an IPv4 address, 6 for an IPv6 address without zone id (`%eth0`), else undefined. */
export function ipFamily(s: string): IpFamily | undefined {
  if (typeof s === 'string' && isPlainIPv4(s)) return 4; // the common forms by a character scan (ip-scan.ts), same answer
  if (typeof s === 'string' && isPlainIPv6(s)) return 6;
  return isIPv4(s) ? 4 : isIPv6(s) && !s.includes('%') ? 6 : undefined;
}

/** Whether `s` is an IPv4 address or an IPv6 address without zone id. */
export function isIpAddress(s: string): boolean {
  return ipFamily(s) !== undefined;
}

/** Parsed form of an address or prefix. */
export interface ParsedPrefix {
  family: IpFamily;
  address: string;
  /** Prefix length; 32 or 128 for a single address. */
  len: number;
  /** Whether the input carried an explicit `/len`. */
  explicit: boolean;
}

/** Parse `a.b.c.d`, `a.b.c.d/n`, `x::y` or `x::y/n`. Returns undefined when invalid. */
export function parsePrefix(input: string): ParsedPrefix | undefined {
  if (typeof input !== 'string' || input.length > 64) return undefined;
  const slash = input.indexOf('/');
  const addr = slash < 0 ? input : input.slice(0, slash);
  const lenText = slash < 0 ? undefined : input.slice(slash + 1);
  const family = ipFamily(addr);
  if (!family) return undefined;
  const max = familyBits(family);
  if (lenText === undefined) return { family, address: addr, len: max, explicit: false };
  if (!/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > max) return undefined;
  return { family, address: addr, len, explicit: true };
}

/** IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as its IPv4 address; anything else unchanged. */
export function unmapIPv4(s: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  return m && isIPv4(m[1] as string) ? (m[1] as string) : s;
}

// ---------------------------------------------------------------------------
// Bytes (network byte order).

/** Parse an IPv4 dotted quad into 4 bytes (the input must be valid). */
export function ipv4Bytes(s: string): Buffer {
  return Buffer.from(s.split('.').map((x) => Number(x)));
}

/** Parse an IPv6 address (any valid textual form, including embedded IPv4) into 16 bytes (the input must be valid). */
export function ipv6Bytes(s: string): Buffer {
  let text = s;
  const out = Buffer.alloc(16);
  // embedded IPv4 tail: rewrite as two hex groups
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const b = ipv4Bytes(tail);
    text = `${text.slice(0, lastColon + 1)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, rest] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const h = head ? head.split(':').map((x) => parseInt(x, 16)) : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':').map((x) => parseInt(x, 16)) : [];
  const groups = rest === undefined ? h : [...h, ...new Array<number>(8 - h.length - r.length).fill(0), ...r];
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** The 4 or 16 bytes of a valid address of `family`. */
export function addressBytes(addr: string, family: IpFamily): Buffer {
  return family === 4 ? ipv4Bytes(addr) : ipv6Bytes(addr);
}

/** Text of 4 bytes. */
export function ipv4Text(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 text of 16 bytes (lower case, the longest run of two or more zero groups compressed, the first on a tie). */
export function ipv6Text(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Text of 4 (IPv4) or 16 (IPv6, RFC 5952) address bytes. */
export function addressText(b: Uint8Array): string {
  return b.length === 4 ? ipv4Text(b) : ipv6Text(b);
}

/** Copy of `bytes` with everything after `len` bits cleared. */
export function maskBytes(bytes: Uint8Array, len: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, len - i * 8));
    out[i]! &= bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Numbers and intervals.

/** Address bytes as one unsigned number. */
export function bytesToBigInt(bytes: Iterable<number>): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

/** A valid address of `family` as one unsigned number. */
export function addressToBigInt(addr: string, family: IpFamily): bigint {
  return bytesToBigInt(addressBytes(addr, family));
}

/** The text of an address value of `family` (IPv6 per RFC 5952). */
export function bigIntToAddress(n: bigint, family: IpFamily): string {
  const size = family === 4 ? 4 : 16;
  const b = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--) {
    b[i] = Number(n & 255n);
    n >>= 8n;
  }
  return addressText(b);
}

/** An inclusive interval of address values. */
export interface Interval {
  lo: bigint;
  hi: bigint;
}

/** The addresses of prefix `addr/len` (host bits of `addr` ignored). */
export function prefixInterval(addr: bigint, len: number, family: IpFamily): Interval {
  const host = BigInt(familyBits(family) - len);
  const lo = (addr >> host) << host;
  return { lo, hi: lo + (1n << host) - 1n };
}

/** The addresses of a parsed prefix (host bits ignored). */
export function parsedPrefixInterval(p: ParsedPrefix): Interval {
  return prefixInterval(addressToBigInt(p.address, p.family), p.len, p.family);
}

/**
 * Intervals sorted, with overlapping ones merged (nft refuses overlapping
 * elements in an interval set); merely adjacent intervals stay apart.
 */
export function mergeIntervals(list: readonly Interval[]): Interval[] {
  const s = [...list].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Interval[] = [];
  for (const i of s) {
    const last = out[out.length - 1];
    if (last && i.lo <= last.hi) {
      if (i.hi > last.hi) last.hi = i.hi;
    } else out.push({ ...i });
  }
  return out;
}

/** Whether address bytes `addr` lie in the prefix `prefix/len` (both of one family; `prefix` without host bits). */
export function prefixContains(prefix: Uint8Array, len: number, addr: Uint8Array): boolean {
  if (prefix.length !== addr.length) return false;
  return maskBytes(addr, len).equals(prefix);
}
