/**
 * tc u32 filter keys for a match (the classifier this kernel family always has).
 * Port keys assume an IPv4 header without options and an IPv6 header without
 * extension headers, as tc's `match ip sport/dport` does.
 * @module
 */
import { parsePrefix } from '../validate.js';
import type { Match } from './types.js';

/** One tc filter: its protocol, classifier (`u32`, or `bpf` for the fwmark) and the classifier's arguments. */
export interface U32Filter {
  protocol: 'ip' | 'ipv6' | 'all';
  kind: 'u32' | 'bpf';
  keys: string[];
}

/**
 * Classic-BPF program (for `tc filter … bpf bytecode`) matching `(skb->mark & mask) == value`:
 * `ld #mark; and #mask; jeq #value, 0, 1; ret #-1 (the filter's flowid); ret #0 (no match)`.
 * Used instead of u32's `match mark`, which kernels without CONFIG_CLS_U32_MARK accept
 * and silently ignore (the filter then matches every packet).
 */
export function markBytecode(value: number, mask: number): string {
  const SKF_AD_MARK = (0xfffff000 + 20) >>> 0;
  const ins = [
    [0x20, 0, 0, SKF_AD_MARK],
    [0x54, 0, 0, mask >>> 0],
    [0x15, 0, 1, value >>> 0],
    [0x06, 0, 0, 0xffffffff],
    [0x06, 0, 0, 0],
  ];
  return `${ins.length},${ins.map((i) => i.join(' ')).join(',')}`;
}

const PROTO: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 };

/** The address family a match is restricted to, if any. */
export function matchFamily(m: Match | undefined): 4 | 6 | undefined {
  for (const a of [m?.src, m?.dst]) if (a !== undefined) return parsePrefix(a)?.family;
  if (m?.protocol === 'icmp') return 4;
  if (m?.protocol === 'icmpv6') return 6;
  return undefined;
}

function cidr(a: string): string {
  const p = parsePrefix(a)!;
  return `${p.address}/${p.len}`;
}

/**
 * Filters that together select the traffic of `m`, or, when `mark` is given,
 * the single (cls_bpf) filter selecting packets whose fwmark carries it
 * (per-process limits: nftables did the matching and set the mark).
 */
export function u32Filters(m: Match | undefined, mark?: { value: number; mask: number }): U32Filter[] {
  if (mark) return [{ protocol: 'all', kind: 'bpf', keys: ['bytecode', markBytecode(mark.value, mark.mask)] }];
  const hasL3L4 = m && (m.src !== undefined || m.dst !== undefined || m.protocol !== undefined || m.sport !== undefined || m.dport !== undefined);
  if (!hasL3L4) return [{ protocol: 'all', kind: 'u32', keys: ['match', 'u32', '0', '0'] }];
  const fam = matchFamily(m);
  const fams: (4 | 6)[] = fam ? [fam] : [4, 6];
  const ports = m.sport !== undefined || m.dport !== undefined;
  const protos: (string | undefined)[] = m.protocol ? [m.protocol] : ports ? ['tcp', 'udp'] : [undefined];
  const out: U32Filter[] = [];
  for (const f of fams) {
    const ipk = f === 4 ? 'ip' : 'ip6';
    for (const p of protos) {
      const keys: string[] = [];
      if (m.src !== undefined) keys.push('match', ipk, 'src', cidr(m.src));
      if (m.dst !== undefined) keys.push('match', ipk, 'dst', cidr(m.dst));
      if (p !== undefined) keys.push('match', ipk, 'protocol', String(PROTO[p]), '0xff');
      if (m.sport !== undefined) keys.push('match', ipk, 'sport', String(m.sport), '0xffff');
      if (m.dport !== undefined) keys.push('match', ipk, 'dport', String(m.dport), '0xffff');
      out.push({ protocol: f === 4 ? 'ip' : 'ipv6', kind: 'u32', keys });
    }
  }
  return out;
}

/** `0x…` form of a number for tc. */
export function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}
