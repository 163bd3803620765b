/**
 * Pure compilation of the Firewall's named sets and maps (their `add`
 * commands with elements) and chains to libnftables JSON, with the element
 * checks (types, intervals, overlaps) naming the set and the element. Part of
 * the firewall compiler, see compile.ts.
 * @module
 */
import type { ValidationIssue } from '../errors.js';
import { addressToBigInt, familyBits, parsePrefix } from '../net/ip.js';
import { IfName } from '../validate.js';
import * as x from '../nft/build.js';
import type { Command, Expression, VerdictExpr } from '../nft/schema/index.js';
import type { ChainInput, MapInput, SetInput } from './spec.js';
import type { CompileContext } from './compile.js';
import { plainElementOf } from './compile-elements.js';

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** One element value of `type` as JSON, or an error message. */
export function elementValue(type: string, v: string | number, interval: boolean): { ok: true; value: Expression } | { ok: false; message: string } {
  const bad = (m: string) => ({ ok: false as const, message: m });
  switch (type) {
    case 'ipv4_addr':
    case 'ipv6_addr': {
      if (typeof v !== 'string') return bad(`must be an ${type === 'ipv4_addr' ? 'IPv4' : 'IPv6'} address`);
      const fam = type === 'ipv4_addr' ? 4 : 6;
      const dash = v.indexOf('-');
      const parts = dash > 0 ? [v.slice(0, dash), v.slice(dash + 1)] : [v];
      for (const part of parts) {
        const p = parsePrefix(part);
        if (!p || p.family !== fam || (dash > 0 && p.explicit)) return bad(`${JSON.stringify(v)} is not an ${fam === 4 ? 'IPv4' : 'IPv6'} address, prefix or range`);
      }
      const val = x.addr(v);
      if (typeof val !== 'string' && !interval) return bad(`${JSON.stringify(v)} is a prefix or range: the set needs interval: true`);
      return { ok: true, value: val };
    }
    case 'inet_service':
    case 'mark':
    case 'inet_proto': {
      if (typeof v === 'number') {
        const max = type === 'inet_service' ? 65535 : type === 'inet_proto' ? 255 : 0xffffffff;
        return v <= max ? { ok: true, value: v } : bad(`must be <= ${max}`);
      }
      if (type === 'inet_proto' && /^[a-z0-9][a-z0-9-]{0,15}$/.test(v)) return { ok: true, value: v };
      const m = /^(\d{1,5})-(\d{1,5})$/.exec(v);
      if (type === 'inet_service' && m) {
        const a = Number(m[1]);
        const b = Number(m[2]);
        if (a > b || b > 65535) return bad(`${v}: start must be <= end <= 65535`);
        if (!interval) return bad(`${v} is a range: the set needs interval: true`);
        return { ok: true, value: x.range(a, b) };
      }
      return bad(`must be a number${type === 'inet_service' ? ' or a range "a-b"' : ''}`);
    }
    case 'ether_addr':
      return typeof v === 'string' && MAC.test(v) ? { ok: true, value: v.toLowerCase() } : bad('must be an Ethernet address');
    case 'ifname':
      return typeof v === 'string' && IfName.safeParse(v).success ? { ok: true, value: v } : bad('must be an interface name');
  }
  return bad(`unknown type ${type}`);
}

/** Element JSON for a set of `type`, or an error message. */
export function elementExpr(type: string | string[], e: unknown, interval: boolean): { ok: true; value: Expression } | { ok: false; message: string } {
  let timeout: number | undefined;
  let v = e as string | number | (string | number)[];
  if (e && typeof e === 'object' && !Array.isArray(e)) {
    timeout = (e as { timeout?: number }).timeout;
    v = (e as { value: string | number | (string | number)[] }).value;
  }
  let value: Expression;
  if (Array.isArray(type)) {
    if (!Array.isArray(v) || v.length !== type.length) return { ok: false, message: `must be an array of ${type.length} values (${type.join(' . ')})` };
    const parts: Expression[] = [];
    for (let i = 0; i < type.length; i++) {
      const r = elementValue(type[i] as string, v[i] as string | number, interval);
      if (!r.ok) return { ok: false, message: `part ${i}: ${r.message}` };
      parts.push(r.value);
    }
    value = x.concat(...parts);
  } else {
    if (Array.isArray(v)) return { ok: false, message: `must be a single ${type} value` };
    const r = elementValue(type, v, interval);
    if (!r.ok) return r;
    value = r.value;
  }
  return { ok: true, value: timeout ? x.elem(value, { timeout }) : value };
}

/** Verdict JSON for a verdict-map value. */
export function verdictExpr(v: unknown): Expression {
  if (typeof v === 'string') return { [v]: null } as VerdictExpr;
  if (v && typeof v === 'object' && 'jump' in v) return x.jump((v as { jump: string }).jump);
  return x.goto((v as { goto: string }).goto);
}

/** The `add set` command for a named set (elements included). */
/** The closed interval `[lo, hi]` an element of an interval set covers (addresses, prefixes, a-b ranges, ports). */
function intervalOf(type: string, v: unknown): [bigint, bigint] | undefined {
  if (type === 'inet_service') {
    if (typeof v === 'number') return [BigInt(v), BigInt(v)];
    const m = typeof v === 'string' ? /^(\d{1,5})-(\d{1,5})$/.exec(v) : null;
    return m ? [BigInt(m[1] as string), BigInt(m[2] as string)] : undefined;
  }
  if ((type !== 'ipv4_addr' && type !== 'ipv6_addr') || typeof v !== 'string') return undefined;
  const num = (a: string): { n: bigint; bits: number } | undefined => {
    const p = parsePrefix(a);
    if (!p) return undefined;
    const bits = familyBits(p.family);
    const n = addressToBigInt(p.address, p.family);
    const host = BigInt(bits - p.len);
    return { n: (n >> host) << host, bits: bits - p.len };
  };
  const dash = v.indexOf('-');
  if (dash > 0) {
    const a = num(v.slice(0, dash));
    const b = num(v.slice(dash + 1));
    return a && b ? [a.n, b.n] : undefined;
  }
  const a = num(v);
  return a ? [a.n, a.n + (1n << BigInt(a.bits)) - 1n] : undefined;
}

/** nft refuses an interval set whose elements overlap ("conflicting intervals"): report each overlapping pair. */
function overlapIssues(type: string, elements: readonly unknown[], path: string, issues: ValidationIssue[]): void {
  const iv: { lo: bigint; hi: bigint; i: number }[] = [];
  elements.forEach((e, i) => {
    const v = e && typeof e === 'object' && !Array.isArray(e) ? (e as { value: unknown }).value : e;
    const r = intervalOf(type, v);
    if (r) iv.push({ lo: r[0], hi: r[1], i });
  });
  iv.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  let reported = 0;
  let widest = iv[0];
  for (let k = 1; k < iv.length && reported < 10; k++) {
    const cur = iv[k]!;
    if (widest && cur.lo <= widest.hi) {
      issues.push({ path: `${path}.${cur.i}`, message: `overlaps element ${widest.i} (nft refuses overlapping intervals: merge them or drop one)` });
      reported++;
    }
    if (!widest || cur.hi > widest.hi) widest = cur;
  }
}

export function setCommand(ctx: CompileContext, name: string, s: SetInput, issues: ValidationIssue[]): Command {
  const flags: string[] = [];
  if (s.interval) flags.push('interval');
  if (s.timeout) flags.push('timeout');
  const els = s.elements ?? [];
  const elem: Expression[] = new Array<Expression>(els.length);
  const plain = plainElementOf(s.type); // plain addresses, ports and concatenations of them: no parse objects
  let n = 0;
  let timeouts = false;
  for (let i = 0; i < els.length; i++) {
    const e = els[i];
    const fast = plain(e);
    if (fast !== undefined) {
      elem[n++] = fast;
      continue;
    }
    if (typeof e === 'object' && !Array.isArray(e) && (e as { timeout?: number }).timeout) timeouts = true;
    const r = elementExpr(s.type, e, s.interval === true);
    if (r.ok) elem[n++] = r.value;
    else issues.push({ path: `set ${name}.elements.${i}`, message: r.message });
  }
  elem.length = n;
  if (s.interval && typeof s.type === 'string') overlapIssues(s.type, s.elements ?? [], `set ${name}.elements`, issues);
  if (timeouts && !s.timeout) {
    issues.push({ path: `set ${name}.elements`, message: 'elements with a timeout need the set to have a timeout' });
  }
  return x.cmd.add({ set: {
    family: ctx.family,
    table: ctx.table,
    name,
    type: s.type,
    ...(flags.length ? { flags } : {}),
    ...(s.timeout ? { timeout: s.timeout } : {}),
    ...(s.size ? { size: s.size } : {}),
    ...(s.counter ? { stmt: [x.counter()] } : {}),
    ...(elem.length ? { elem } : {}),
  } });
}

/** The `add map` command for a named map (elements included). */
export function mapCommand(ctx: CompileContext, name: string, m: MapInput, issues: ValidationIssue[]): Command {
  const flags: string[] = [];
  if (m.interval) flags.push('interval');
  if (m.timeout) flags.push('timeout');
  const elem: Expression[] = [];
  (m.elements ?? []).forEach(([k, v], i) => {
    const r = elementExpr(m.type, k, m.interval === true);
    if (!r.ok) {
      issues.push({ path: `map ${name}.elements.${i}.0`, message: r.message });
      return;
    }
    let data: Expression;
    if (m.map === 'verdict') {
      const target = typeof v === 'object' && v !== null ? ((v as { jump?: string; goto?: string }).jump ?? (v as { goto?: string }).goto) : undefined;
      if (target !== undefined && !ctx.chains.has(target)) issues.push({ path: `map ${name}.elements.${i}.1`, message: `chain ${target} is not declared in this firewall` });
      if ((typeof v === 'string' && !['accept', 'drop', 'return', 'continue'].includes(v)) || typeof v === 'number' || v === null || target === undefined && typeof v === 'object')
        issues.push({ path: `map ${name}.elements.${i}.1`, message: 'must be a verdict' });
      data = verdictExpr(v);
    } else {
      const d = elementValue(m.map, v as string | number, false);
      if (!d.ok) {
        issues.push({ path: `map ${name}.elements.${i}.1`, message: d.message });
        return;
      }
      data = d.value;
    }
    elem.push([r.value, data]);
  });
  return x.cmd.add({ map: {
    family: ctx.family,
    table: ctx.table,
    name,
    type: m.type,
    map: m.map,
    ...(flags.length ? { flags } : {}),
    ...(m.timeout ? { timeout: m.timeout } : {}),
    ...(elem.length ? { elem } : {}),
  } });
}

/** The `add chain` command. */
export function chainCommand(ctx: CompileContext, name: string, c: ChainInput): Command {
  if (!c.hook) return x.cmd.add({ chain: { family: ctx.family, table: ctx.table, name } });
  return x.cmd.add({ chain: {
    family: ctx.family,
    table: ctx.table,
    name,
    type: c.type ?? 'filter',
    hook: c.hook,
    prio: c.priority ?? 0,
    policy: c.policy ?? 'accept',
    ...(c.device ? { dev: c.device } : {}),
  } });
}
