/**
 * SmartProxy's IP list syntax compiled to address intervals (pure).
 *
 * An entry is an address (`198.18.1.2`, `fd00::2`, IPv4-mapped
 * `::ffff:198.18.1.2` counts as IPv4), a CIDR prefix, a range `a-b`, `'*'`
 * (everyone, both families), or a glob: IPv4 dotted components that are
 * numbers or `*`, where a trailing `*` covers the rest of the address
 * (`'192.168.*'` = 192.168.0.0/16, `'10.*.*.*'` = 10.0.0.0/8) and an inner `*`
 * stands for one component (`'10.*.0.1'` = 256 addresses); IPv6 full hextets
 * followed by `:*` (`'fd00:1:*'` = fd00:1::/32, matched on the address value,
 * not its text). Anything else (`'1*'`, `'?'`, `[...]`) is refused naming the
 * entry: a list is never partly applied.
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import { parsePrefix } from '../../validate.js';
import { ipv4Bytes, ipv6Bytes } from '../../xdp/entries.js';

/** An inclusive interval of addresses. */
export interface Interval {
  lo: bigint;
  hi: bigint;
}

/** A list compiled per family; `all` = the list contains `'*'`. */
export interface CompiledIpList {
  all: boolean;
  v4: Interval[];
  v6: Interval[];
}

/** Largest number of intervals one glob may expand to. */
export const MAX_GLOB_EXPANSION = 65536;

const bitsOf = (fam: 4 | 6) => (fam === 4 ? 32 : 128);

function toBig(addr: string, fam: 4 | 6): bigint {
  let n = 0n;
  for (const b of fam === 4 ? ipv4Bytes(addr) : ipv6Bytes(addr)) n = (n << 8n) | BigInt(b);
  return n;
}

/** The text of an address value. */
export function addrText(n: bigint, fam: 4 | 6): string {
  if (fam === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
  const hextets = [];
  for (let i = 7; i >= 0; i--) hextets.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Canonical compression of the longest run of zero hextets (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (hextets[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextets[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return hextets.join(':');
  return `${hextets.slice(0, best).join(':')}::${hextets.slice(best + bestLen).join(':')}`;
}

function prefixInterval(addr: bigint, len: number, fam: 4 | 6): Interval {
  const host = BigInt(bitsOf(fam) - len);
  const lo = (addr >> host) << host;
  return { lo, hi: lo + (1n << host) - 1n };
}

/** IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as its IPv4 address. */
function unmap(s: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  return m && isIPv4(m[1] as string) ? (m[1] as string) : s;
}

/** A parsed list entry: intervals of one family, everyone, or why it is refused. */
export type ParsedIpPattern = { fam: 4 | 6; intervals: Interval[] } | { all: true } | string;

/** One entry to intervals, or a message saying why it is refused. */
export function parseIpPattern(raw: unknown): ParsedIpPattern {
  if (typeof raw !== 'string') return 'must be a string';
  const s = unmap(raw.trim());
  if (s === '*') return { all: true };
  if (s.length === 0 || s.length > 100) return 'must be an address, CIDR, range or glob';
  const dash = s.indexOf('-');
  if (dash > 0) {
    const a = unmap(s.slice(0, dash).trim());
    const b = unmap(s.slice(dash + 1).trim());
    const fam = isIPv4(a) && isIPv4(b) ? 4 : isIPv6(a) && isIPv6(b) && !a.includes('%') && !b.includes('%') ? 6 : 0;
    if (!fam) return 'a range must be two addresses of one family (a-b)';
    const lo = toBig(a, fam);
    const hi = toBig(b, fam);
    if (lo > hi) return 'range start is above its end';
    return { fam, intervals: [{ lo, hi }] };
  }
  if (!s.includes('*')) {
    const p = parsePrefix(s);
    if (!p) return 'is not an IP address, CIDR, range (a-b) or glob (192.168.*)';
    return { fam: p.family, intervals: [prefixInterval(toBig(p.address, p.family), p.len, p.family)] };
  }
  if (s.includes(':')) {
    const m = /^((?:[0-9a-f]{1,4}:){1,7})\*$/i.exec(s);
    if (!m) return "an IPv6 glob is full hextets followed by ':*' (e.g. 'fd00:1:*')";
    const hex = (m[1] as string).slice(0, -1).split(':');
    let n = 0n;
    for (const h of hex) n = (n << 16n) | BigInt(parseInt(h, 16));
    n <<= BigInt(16 * (8 - hex.length));
    return { fam: 6, intervals: [prefixInterval(n, 16 * hex.length, 6)] };
  }
  const parts = s.split('.');
  if (parts.length > 4 || parts.some((p) => !(p === '*' || (/^\d{1,3}$/.test(p) && Number(p) <= 255 && String(Number(p)) === p))))
    return "an IPv4 glob is dotted numbers and '*' components (e.g. '192.168.*', '10.*.0.1')";
  // A trailing '*' covers every remaining component; so do trailing '*' components.
  let fixed = parts.length;
  while (fixed > 0 && parts[fixed - 1] === '*') fixed--;
  if (parts.length < 4 && parts[parts.length - 1] !== '*') return "an IPv4 glob with fewer than 4 components must end in '*'";
  const head = parts.slice(0, fixed);
  const stars = head.filter((p) => p === '*').length;
  if (256 ** stars > MAX_GLOB_EXPANSION) return `expands to more than ${MAX_GLOB_EXPANSION} ranges (use a CIDR prefix)`;
  let combos: bigint[] = [0n];
  for (const p of head) combos = combos.flatMap((c) => (p === '*' ? Array.from({ length: 256 }, (_, i) => (c << 8n) | BigInt(i)) : [(c << 8n) | BigInt(Number(p))]));
  const len = 8 * fixed;
  return { fam: 4, intervals: combos.map((c) => prefixInterval(c << BigInt(32 - len), len, 4)) };
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

/** Compile a list; `issues` receives `[index, message]` for refused entries. */
export function compileIpList(items: readonly unknown[], issue: (index: number, message: string) => void): CompiledIpList {
  const out: CompiledIpList = { all: false, v4: [], v6: [] };
  items.forEach((item, i) => {
    const p = parseIpPattern(item);
    if (typeof p === 'string') issue(i, `${describe(item)} ${p}`);
    else if ('all' in p) out.all = true;
    else (p.fam === 4 ? out.v4 : out.v6).push(...p.intervals);
  });
  out.v4 = mergeIntervals(out.v4);
  out.v6 = mergeIntervals(out.v6);
  return out;
}

function describe(v: unknown): string {
  try {
    return typeof v === 'string' ? JSON.stringify(v.slice(0, 60)) : typeof v;
  } catch {
    return typeof v;
  }
}

/** An interval as an nft JSON set element: an address, a prefix object, or a range. */
export function intervalElement(i: Interval, fam: 4 | 6): unknown {
  if (i.lo === i.hi) return addrText(i.lo, fam);
  const size = i.hi - i.lo + 1n;
  const bits = bitsOf(fam);
  if ((size & (size - 1n)) === 0n && i.lo % size === 0n) {
    let hostBits = 0;
    while (1n << BigInt(hostBits) < size) hostBits++;
    return { prefix: { addr: addrText(i.lo, fam), len: bits - hostBits } };
  }
  return { range: [addrText(i.lo, fam), addrText(i.hi, fam)] };
}

/** Whether an address (text) lies in a compiled list, for tests and status. */
export function listContains(list: CompiledIpList, addr: string): boolean {
  if (list.all) return true;
  const a = unmap(addr);
  const fam = isIPv4(a) ? 4 : isIPv6(a) ? 6 : 0;
  if (!fam) return false;
  const n = toBig(a, fam);
  return (fam === 4 ? list.v4 : list.v6).some((i) => i.lo <= n && n <= i.hi);
}
