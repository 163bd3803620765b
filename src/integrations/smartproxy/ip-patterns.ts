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
import { addressToBigInt as toBig, bigIntToAddress as addrText, familyBits as bitsOf, ipFamily, mergeIntervals, parsePrefix, prefixInterval, unmapIPv4 as unmap, type Interval } from '../../net/ip.js';
import type { Expression } from '../../nft/schema/index.js';

export { mergeIntervals, type Interval };

/** A list compiled per family; `all` = the list contains `'*'`. */
export interface CompiledIpList {
  all: boolean;
  v4: Interval[];
  v6: Interval[];
}

/** Largest number of intervals one glob may expand to. */
export const MAX_GLOB_EXPANSION = 65536;

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
    const fa = ipFamily(a);
    const fam = fa !== undefined && fa === ipFamily(b) ? fa : 0;
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
export function intervalElement(i: Interval, fam: 4 | 6): Expression {
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
  const fam = ipFamily(a);
  if (!fam) return false;
  const n = toBig(a, fam);
  return (fam === 4 ? list.v4 : list.v6).some((i) => i.lo <= n && n <= i.hi);
}
