/**
 * Pure compilation of the Firewall's typed rules, chains, sets and maps to
 * libnftables JSON commands. No I/O. Errors name the rule id and the field.
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { ValidationIssue } from '../errors.js';
import { parsePrefix } from '../net/ip.js';

import * as x from '../nft/build.js';
import type { Expression, Family, LimitStmt, MeterStmt, Statement } from '../nft/schema/index.js';
import type { Rule, RuleAction } from './spec.js';

/** What the compiler knows about the firewall a rule belongs to. */
export interface CompileContext {
  family: Family;
  table: string;
  /** Declared sets and maps by name, for typing `@set` references. */
  sets: ReadonlyMap<string, { type: string | string[]; map?: string | undefined }>;
  /** Declared chains by name (jump/goto targets must exist). */
  chains: ReadonlySet<string>;
}

// Rule comments `nf:<id>[ text]`: the one codec is util/rule-comment.ts.
export { RULE_COMMENT_PREFIX as ID_PREFIX, ruleComment, ruleIdOf as idFromComment } from '../util/rule-comment.js';

type IpFam = 4 | 6;
const PORT_PROTOS = new Set(['tcp', 'udp', 'sctp', 'udplite']);

class Issues {
  readonly list: ValidationIssue[] = [];
  constructor(private readonly base: string) {}
  add(field: string, message: string): void {
    this.list.push({ path: `${this.base}.${field}`, message });
  }
}

function addrFamily(item: string, ctx: CompileContext, issues: Issues, field: string): IpFam | undefined {
  if (item.startsWith('@')) {
    const s = ctx.sets.get(item.slice(1));
    if (!s) {
      issues.add(field, `set ${item} is not declared in this firewall`);
      return undefined;
    }
    if (s.type === 'ipv4_addr') return 4;
    if (s.type === 'ipv6_addr') return 6;
    issues.add(field, `set ${item} has type ${JSON.stringify(s.type)}, not ipv4_addr or ipv6_addr`);
    return undefined;
  }
  const dash = item.indexOf('-');
  const p = parsePrefix(dash > 0 ? item.slice(0, dash) : item);
  return p?.family;
}

function addrRight(v: string | string[]): Expression {
  if (Array.isArray(v)) return v.length === 1 ? x.addr(v[0] as string) : x.anonSet(v.map((i) => x.addr(i)));
  return v.startsWith('@') ? v : x.addr(v);
}

function portValue(p: number | { from: number; to: number }): Expression {
  return typeof p === 'number' ? p : p.from === p.to ? p.from : x.range(p.from, p.to);
}

function portRight(v: NonNullable<Rule['dport']>): Expression {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.length === 1 ? portValue(v[0] as number) : x.anonSet(v.map(portValue));
  return portValue(v);
}

function markMatch(left: Expression, m: NonNullable<Rule['mark']>): Statement {
  if (typeof m === 'number') return x.eq(left, m);
  return x.eq(x.and(left, m.mask), m.value);
}

function ipProto(f: IpFam): 'ip' | 'ip6' {
  return f === 4 ? 'ip' : 'ip6';
}

function meterKey(key: string, fam: IpFam | undefined, issues: Issues, field: string): Expression | undefined {
  switch (key) {
    case 'ip saddr':
    case 'ip daddr':
    case 'ip6 saddr':
    case 'ip6 daddr': {
      const [p, f] = key.split(' ') as [string, string];
      return x.payload(p, f);
    }
    case 'ether saddr':
      return x.payload('ether', 'saddr');
    case 'iifname':
      return x.meta('iifname');
    default:
      if (fam === undefined) {
        issues.add(field, `key "${key}" needs the rule's address family: give nfproto, an address match, or use "ip ${key}"/"ip6 ${key}"`);
        return undefined;
      }
      return x.payload(ipProto(fam), key);
  }
}

function limitStmt(r: NonNullable<Rule['limit']>): Statement {
  const o: Extract<LimitStmt['limit'], { rate: number }> = { rate: r.rate, per: r.per };
  if (r.unit) o.rate_unit = r.unit;
  if (r.burst !== undefined) {
    o.burst = r.burst;
    if (r.unit) o.burst_unit = r.unit;
  }
  if (r.over) o.inv = true;
  return { limit: o };
}

/** Expressions of one rule; issues are named `<base>.<field>`. */
export function compileRuleExprs(rule: Rule, ctx: CompileContext, issuesOut: ValidationIssue[], base = `rule ${rule.id}`): Statement[] | undefined {
  const issues = new Issues(base);
  const out: Statement[] = [];
  const fam = ctx.family;

  // ---- address family of the rule
  let ipf: IpFam | undefined = fam === 'ip' ? 4 : fam === 'ip6' ? 6 : undefined;
  if (rule.nfproto) {
    const f: IpFam = rule.nfproto === 'ipv4' ? 4 : 6;
    if (ipf !== undefined && ipf !== f) issues.add('nfproto', `${rule.nfproto} does not match the ${fam} table`);
    ipf = f;
  }
  for (const field of ['saddr', 'daddr'] as const) {
    const v = rule[field];
    if (v === undefined) continue;
    if (fam === 'arp') {
      issues.add(field, 'address matches are not supported in arp tables');
      continue;
    }
    for (const item of Array.isArray(v) ? v : [v]) {
      const f = addrFamily(item, ctx, issues, field);
      if (f === undefined) continue;
      if (ipf !== undefined && ipf !== f) {
        issues.add(field, `${item} is IPv${f} but the rule is IPv${ipf}${fam === 'ip' || fam === 'ip6' ? ` (${fam} table)` : ''}: one rule matches one address family`);
      } else ipf = f;
    }
  }

  // ---- protocol
  const protos = rule.protocol === undefined ? [] : Array.isArray(rule.protocol) ? rule.protocol : [rule.protocol];
  if (protos.includes('icmp') && ipf === 6) issues.add('protocol', 'icmp with IPv6 addresses would never match: use icmpv6');
  if (protos.includes('icmpv6') && ipf === 4) issues.add('protocol', 'icmpv6 with IPv4 addresses would never match: use icmp');
  if (protos.includes('icmp') && fam === 'ip6') issues.add('protocol', 'icmp in an ip6 table: use icmpv6');
  if (protos.includes('icmpv6') && fam === 'ip') issues.add('protocol', 'icmpv6 in an ip table: use icmp');
  for (const field of ['sport', 'dport'] as const) {
    if (rule[field] === undefined) continue;
    if (protos.length === 0) issues.add(field, 'ports need protocol tcp, udp, sctp or udplite');
    else if (!protos.every((p) => PORT_PROTOS.has(p))) issues.add(field, `ports cannot be used with protocol ${protos.filter((p) => !PORT_PROTOS.has(p)).join(', ')}`);
    const v = rule[field];
    if (typeof v === 'string') {
      const s = ctx.sets.get(v.slice(1));
      if (!s) issues.add(field, `set ${v} is not declared in this firewall`);
      else if (s.type !== 'inet_service') issues.add(field, `set ${v} has type ${JSON.stringify(s.type)}, not inet_service`);
    }
  }
  if (rule.icmpType && !(protos.length === 0 || (protos.length === 1 && protos[0] === 'icmp'))) issues.add('icmpType', 'needs protocol icmp');
  if (rule.icmpv6Type && !(protos.length === 0 || (protos.length === 1 && protos[0] === 'icmpv6'))) issues.add('icmpv6Type', 'needs protocol icmpv6');
  if (rule.icmpType && ipf === 6) issues.add('icmpType', 'ICMP types with an IPv6 rule: use icmpv6Type');
  if (rule.icmpv6Type && ipf === 4) issues.add('icmpv6Type', 'ICMPv6 types with an IPv4 rule: use icmpType');

  // ---- emit matches
  for (const k of ['iif', 'oif'] as const) if (rule[k] !== undefined) out.push(x.eq(x.meta(k), rule[k]));
  for (const k of ['iifname', 'oifname'] as const) {
    const v = rule[k];
    if (v === undefined) continue;
    out.push(x.eq(x.meta(k), Array.isArray(v) ? (v.length === 1 ? (v[0] as string) : x.anonSet(v)) : v));
  }
  for (const [k, f] of [['etherSaddr', 'saddr'], ['etherDaddr', 'daddr']] as const) {
    const v = rule[k];
    if (v === undefined) continue;
    if (fam !== 'bridge' && fam !== 'netdev' && fam !== 'inet' && fam !== 'ip' && fam !== 'ip6') issues.add(k, `not supported in ${fam} tables`);
    if (typeof v === 'string' && v.startsWith('@')) {
      const s = ctx.sets.get(v.slice(1));
      if (!s) issues.add(k, `set ${v} is not declared in this firewall`);
      else if (s.type !== 'ether_addr') issues.add(k, `set ${v} has type ${JSON.stringify(s.type)}, not ether_addr`);
    }
    out.push(x.eq(x.payload('ether', f), Array.isArray(v) ? (v.length === 1 ? (v[0] as string) : x.anonSet(v.map((m) => m.toLowerCase()))) : v.startsWith('@') ? v : v.toLowerCase()));
  }
  if (ipf !== undefined && (fam === 'inet' || fam === 'bridge' || fam === 'netdev')) {
    // Explicit family match: a rule with only ports or a protocol then still matches one family.
    if (fam === 'inet') out.push(x.eq(x.meta('nfproto'), ipf === 4 ? 'ipv4' : 'ipv6'));
    else out.push(x.eq(x.payload('ether', 'type'), ipf === 4 ? 'ip' : 'ip6'));
  }
  for (const field of ['saddr', 'daddr'] as const) {
    const v = rule[field];
    if (v === undefined || ipf === undefined) continue;
    out.push(x.eq(x.payload(ipProto(ipf), field), addrRight(v)));
  }
  if (protos.length === 1) out.push(x.eq(x.meta('l4proto'), protos[0] === 'icmpv6' ? 'ipv6-icmp' : (protos[0] as string)));
  else if (protos.length > 1) out.push(x.eq(x.meta('l4proto'), x.anonSet(protos.map((p) => (p === 'icmpv6' ? 'ipv6-icmp' : p)))));
  for (const field of ['sport', 'dport'] as const) {
    const v = rule[field];
    if (v === undefined || protos.length === 0) continue;
    out.push(x.eq(x.payload(protos.length === 1 ? (protos[0] as string) : 'th', field), portRight(v)));
  }
  if (rule.icmpType) {
    if (protos.length === 0) out.push(x.eq(x.meta('l4proto'), 'icmp'));
    out.push(x.eq(x.payload('icmp', 'type'), rule.icmpType.length === 1 ? (rule.icmpType[0] as string) : x.anonSet(rule.icmpType)));
  }
  if (rule.icmpv6Type) {
    if (protos.length === 0) out.push(x.eq(x.meta('l4proto'), 'ipv6-icmp'));
    out.push(x.eq(x.payload('icmpv6', 'type'), rule.icmpv6Type.length === 1 ? (rule.icmpv6Type[0] as string) : x.anonSet(rule.icmpv6Type)));
  }
  if (rule.ctState) {
    if (fam === 'bridge' || fam === 'netdev') issues.add('ctState', `conntrack matches are not available in ${fam} tables on most kernels; use an inet table`);
    out.push(x.match(x.ct('state'), 'in', rule.ctState.length === 1 ? (rule.ctState[0] as string) : [...rule.ctState]));
  }
  if (rule.mark !== undefined) out.push(markMatch(x.meta('mark'), rule.mark));
  if (rule.ctMark !== undefined) out.push(markMatch(x.ct('mark'), rule.ctMark));
  for (const m of rule.meta ?? []) out.push(x.match(x.meta(m.key), m.op ?? '==', m.value));

  // ---- stateful statements that act as matches
  if (rule.ctCountOver !== undefined) out.push({ 'ct count': { val: rule.ctCountOver, inv: true } });
  if (rule.meter) {
    const key = meterKey(rule.meter.key, ipf, issues, 'meter.key');
    if (key !== undefined) {
      const m: MeterStmt['meter'] = { name: rule.meter.name, key: rule.meter.timeout ? x.elem(key, { timeout: rule.meter.timeout }) : key, stmt: limitStmt(rule.meter.limit) };
      if (rule.meter.size) m.size = rule.meter.size;
      out.push({ meter: m });
    }
  }
  if (rule.setUpdate) {
    const key = meterKey(rule.setUpdate.key, ipf, issues, 'setUpdate.key');
    if (!ctx.sets.has(rule.setUpdate.set.slice(1))) issues.add('setUpdate.set', `set ${rule.setUpdate.set} is not declared in this firewall`);
    if (key !== undefined) out.push({ set: { op: rule.setUpdate.op ?? 'update', elem: key, set: rule.setUpdate.set } });
  }
  if (rule.limit) out.push(limitStmt(rule.limit));
  if (rule.quota) out.push({ quota: { val: rule.quota.bytes, val_unit: 'bytes', ...(rule.quota.over ? { inv: true } : {}) } });
  if (rule.counter !== false) out.push(x.counter());
  if (rule.log) out.push({ log: { ...(rule.log.prefix ? { prefix: rule.log.prefix } : {}), ...(rule.log.level ? { level: rule.log.level } : {}) } });
  if (rule.setMark !== undefined) out.push(x.mangle(x.meta('mark'), rule.setMark));
  if (rule.setCtMark !== undefined) out.push(x.mangle(x.ct('mark'), rule.setCtMark));

  // ---- verdict / NAT
  if (rule.action !== undefined) {
    const a = actionStmt(rule.action, { ctx, ipf, protos, issues });
    if (a) out.push(a);
  }
  issuesOut.push(...issues.list);
  return issues.list.length ? undefined : out;
}

function natPort(p: number | { from: number; to: number } | undefined): { port?: Expression } {
  if (p === undefined) return {};
  return { port: portValue(p) };
}

function actionStmt(a: RuleAction, env: { ctx: CompileContext; ipf: IpFam | undefined; protos: string[]; issues: Issues }): Statement | undefined {
  const { ctx, issues } = env;
  const fam = ctx.family;
  const t = typeof a === 'string' ? a : a.type;
  const natFamilies: Family[] = ['ip', 'ip6', 'inet'];
  switch (t) {
    case 'accept':
      return x.accept();
    case 'drop':
      return x.drop();
    case 'return':
      return x.ret();
    case 'continue':
      return x.cont();
    case 'reject': {
      const r = a as Extract<RuleAction, { type: 'reject' }>;
      if (r.with === 'tcp-reset') {
        if (!(env.protos.length === 1 && env.protos[0] === 'tcp')) issues.add('action.with', 'tcp-reset needs protocol tcp');
        return { reject: { type: 'tcp reset' } };
      }
      if (r.with === 'icmp' && env.ipf === 6) issues.add('action.with', 'icmp reject on an IPv6 rule: use icmpv6 or icmpx');
      if (r.with === 'icmpv6' && env.ipf === 4) issues.add('action.with', 'icmpv6 reject on an IPv4 rule: use icmp or icmpx');
      if (r.with === 'icmpx' && (fam === 'ip' || fam === 'ip6')) issues.add('action.with', `icmpx is only for inet, bridge and netdev tables; use ${fam === 'ip' ? 'icmp' : 'icmpv6'}`);
      const type = r.with ?? (r.code ? (fam === 'ip' ? 'icmp' : fam === 'ip6' ? 'icmpv6' : 'icmpx') : undefined);
      if (!type) return { reject: null };
      return { reject: { type, expr: r.code ?? 'port-unreachable' } };
    }
    case 'jump':
    case 'goto': {
      const c = (a as { chain: string }).chain;
      if (!ctx.chains.has(c)) issues.add('action.chain', `chain ${c} is not declared in this firewall`);
      return t === 'jump' ? x.jump(c) : x.goto(c);
    }
    case 'dnat':
    case 'snat': {
      const n = a as Extract<RuleAction, { type: 'dnat' }>;
      if (!natFamilies.includes(fam)) {
        issues.add('action', `${t} is only available in ip, ip6 and inet tables`);
        return undefined;
      }
      const targets = Array.isArray(n.to) ? n.to : [n.to];
      const tf: IpFam = isIPv4(targets[0] as string) ? 4 : 6;
      if (targets.some((tg) => (tf === 4 ? !isIPv4(tg) : !isIPv6(tg)))) issues.add('action.to', 'all targets must be of one address family');
      if (env.ipf !== undefined && env.ipf !== tf) issues.add('action.to', `IPv${tf} target on an IPv${env.ipf} rule`);
      if (n.port !== undefined && !env.protos.every((p) => PORT_PROTOS.has(p))) issues.add('action.port', 'a NAT port needs protocol tcp, udp, sctp or udplite');
      if (n.port !== undefined && env.protos.length === 0) issues.add('action.port', 'a NAT port needs protocol tcp, udp, sctp or udplite');
      const addr: Expression =
        targets.length === 1
          ? (targets[0] as string)
          : { map: { key: { numgen: { mode: 'inc', mod: targets.length, offset: 0 } }, data: x.anonSet(targets.map((tg, i) => [i, tg])) } };
      return x.nat(t, { ...(fam === 'inet' ? { family: ipProto(tf) } : {}), addr, ...natPort(n.port) });
    }
    case 'masquerade': {
      if (!natFamilies.includes(fam)) {
        issues.add('action', 'masquerade is only available in ip, ip6 and inet tables');
        return undefined;
      }
      const p = typeof a === 'string' ? undefined : (a as { port?: number | { from: number; to: number } }).port;
      return { masquerade: p === undefined ? null : natPort(p) };
    }
    case 'redirect': {
      if (!natFamilies.includes(fam)) {
        issues.add('action', 'redirect is only available in ip, ip6 and inet tables');
        return undefined;
      }
      const p = (a as { port?: number }).port;
      return { redirect: p === undefined ? null : { port: p } };
    }
    case 'vmap': {
      const v = a as Extract<RuleAction, { type: 'vmap' }>;
      const m = ctx.sets.get(v.map.slice(1));
      if (!m || m.map !== 'verdict') issues.add('action.map', `${v.map} is not a verdict map declared in this firewall`);
      let key: Expression | undefined;
      if (v.key === 'saddr' || v.key === 'daddr') key = meterKey(v.key, env.ipf, issues, 'action.key');
      else if (v.key === 'sport' || v.key === 'dport') {
        if (env.protos.length === 0) issues.add('action.key', 'port keys need a protocol');
        key = x.payload(env.protos.length === 1 ? (env.protos[0] as string) : 'th', v.key);
      } else if (v.key === 'ether saddr') key = x.payload('ether', 'saddr');
      else key = x.meta(v.key);
      return key === undefined ? undefined : x.vmap(key, v.map);
    }
  }
  issues.add('action', `unknown action ${JSON.stringify(t)}`);
  return undefined;
}

// Sets, maps and chains: compile-sets.ts.
export { chainCommand, elementExpr, elementValue, mapCommand, setCommand, verdictExpr } from './compile-sets.js';
