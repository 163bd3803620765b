/**
 * A normalized route and its resolved target addresses → nft JSON (pure).
 *
 * Per client family served (IPv4 clients go to the target's IPv4 addresses,
 * IPv6 clients to its IPv6 ones: kernel NAT does not translate families):
 * - `sp_filter` (prerouting) and `sp_filter_out` (output, clients on this
 *   host): block lists drop, allow lists drop what is outside, then `claim`
 *   accepts, so that a lower-priority route's lists never apply;
 * - `sp_dnat` / `sp_dnat_out`: DNAT (round robin or source hash over several
 *   addresses); for loopback targets without `route_localnet`, remote clients
 *   are claimed without NAT and rejected in `sp_input`;
 * - `sp_snat`: masquerade, or `nomasq` (accept) when the source is kept;
 * - `sp_forward`: the `maxRate` limit, then counters of the forwarded flows.
 * Every rule's comment is `nf:<route id>:<kind>`.
 * @module
 */
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import * as x from '../../nft/build.js';
import type { Command, Expression, Statement } from '../../nft/schema/index.js';
import type { ListedRule } from '../../firewall/kernel.js';
import { nftBurst } from '../../throttle/rate.js';
import { ownedRuleComment, ownerOfRuleComment } from '../../util/rule-comment.js';
import { intervalElement, type CompiledIpList } from './ip-patterns.js';
import type { NormalizedRoute } from './normalize.js';
import type { IPortRange } from './types.js';

/** The base chains of a manager's table. */
export const SMARTPROXY_CHAINS = [
  { name: 'sp_filter', type: 'filter', hook: 'prerouting', prio: -150 },
  { name: 'sp_filter_out', type: 'filter', hook: 'output', prio: -150 },
  { name: 'sp_dnat', type: 'nat', hook: 'prerouting', prio: -100 },
  { name: 'sp_dnat_out', type: 'nat', hook: 'output', prio: -100 },
  { name: 'sp_snat', type: 'nat', hook: 'postrouting', prio: 100 },
  { name: 'sp_input', type: 'filter', hook: 'input', prio: 0 },
  { name: 'sp_forward', type: 'filter', hook: 'forward', prio: 0 },
] as const;

/** Names of the base chains. */
export const CHAIN_NAMES: string[] = SMARTPROXY_CHAINS.map((c) => c.name);

/** The commands creating a table's base chains (idempotent), plus `extra`. */
export function structure(table: string, extra: Command[] = []): Command[] {
  return [
    x.cmd.add({ table: { family: 'inet', name: table } }),
    ...SMARTPROXY_CHAINS.map((c) => x.cmd.add({ chain: { family: 'inet', table, name: c.name, type: c.type, hook: c.hook, prio: c.prio, policy: 'accept' } })),
    ...extra,
  ];
}

/** Resolved target addresses per client family. */
export interface TargetAddresses {
  ipv4: string[];
  ipv6: string[];
}

/** A route compiled to nft commands. */
export interface CompiledRoute {
  id: string;
  name: string | undefined;
  table: string;
  /** The first client family served (4 when none). */
  family: 4 | 6;
  /** Client families served. */
  families: (4 | 6)[];
  /** `add set` + `flush set` + elements, per named set. */
  sets: { name: string; type: string; elements: number; cmds: Command[] }[];
  /** `add rule` commands (appended; {@link placeRules} positions them among other routes' rules). */
  rules: Command[];
  /** The route's priority (higher = its rules come first). */
  priority: number;
  enabled: boolean;
  addresses: TargetAddresses;
  targetIndex: number;
  remoteClients: 'forwarded' | 'rejected';
  /** Whether remote clients reach an IPv4 loopback target through `route_localnet`. */
  usesRouteLocalnet: boolean;
  rateLimited: boolean;
  /**
   * Conntrack matches of the route's connections, per family, for the fast path's offload rules (none when rate-limited).
   * @internal
   */
  offloadMatches: Statement[][];
  decisions: { subject: string; chosen: string; reason: string }[];
  /** Hash of what goes to the kernel: equal digests mean an unchanged route. */
  digest: string;
}

/** Compile options. */
export interface CompileOptions {
  /** `net.ipv4.conf.all.route_localnet` will be 1: remote clients may reach IPv4 loopback targets. */
  routeLocalnet: boolean;
  /** Whether the manager offloads routes' connections to a flowtable. */
  fastPath?: boolean;
}

const isLoopback = (a: string) => (isIPv4(a) ? a.startsWith('127.') : a === '::1' || a === '0:0:0:0:0:0:0:1');

function portExpr(ports: readonly (number | IPortRange)[]): Expression {
  const l = ports.map((v) => (typeof v === 'number' ? v : v.from === v.to ? v.from : x.range(v.from, v.to)));
  return l.length === 1 ? (l[0] as Expression) : x.anonSet(l);
}

/**
 * Compile (pure). `addresses` are the chosen target's addresses, resolved.
 * Returns a message (naming the field) when they cannot be rules: loopback
 * and other addresses mixed in one family.
 */
export function compileNormalized(r: NormalizedRoute, addresses: TargetAddresses, o: CompileOptions): CompiledRoute | { error: { path: string; message: string } } {
  const sets: CompiledRoute['sets'] = [];
  const rules: Command[] = [];
  const decisions: CompiledRoute['decisions'] = [];
  const families: (4 | 6)[] = [];
  const offloadMatches: Statement[][] = [];
  let remoteClients: CompiledRoute['remoteClients'] = 'forwarded';
  let usesRouteLocalnet = false;
  const table = r.table;
  const rule = (chain: string, kind: string, expr: Statement[]) => x.cmd.add({ rule: { family: 'inet', table, chain, comment: ownedRuleComment(r.id, kind), expr } });
  const l4: Expression = r.protocols.length === 1 ? (r.protocols[0] as string) : x.anonSet(r.protocols);

  for (const fam of [4, 6] as const) {
    if (!r.enabled) break;
    const addrs = fam === 4 ? addresses.ipv4 : addresses.ipv6;
    if (addrs.length === 0) continue;
    const loop = addrs.filter(isLoopback);
    if (loop.length > 0 && loop.length < addrs.length) return { error: { path: `${r.where}.${r.hostField}`, message: `mixes loopback (${loop.join(', ')}) and other IPv${fam} targets: they cannot be reached by the same clients` } };
    const ipP = fam === 4 ? 'ip' : 'ip6';
    const nf = fam === 4 ? 'ipv4' : 'ipv6';
    const setOrInline = (name: string, list: CompiledIpList): Expression | undefined => {
      const iv = fam === 4 ? list.v4 : list.v6;
      if (iv.length === 0) return undefined;
      const elems = iv.map((i) => intervalElement(i, fam));
      if (!r.useIPSets) return x.anonSet(elems);
      const type = fam === 4 ? 'ipv4_addr' : 'ipv6_addr';
      sets.push({
        name,
        type,
        elements: elems.length,
        cmds: [x.cmd.add({ set: { family: 'inet', table, name, type, flags: ['interval'] } }), x.cmd.flush({ set: { family: 'inet', table, name } }), x.cmd.add({ element: { family: 'inet', table, name, elem: elems } })],
      });
      return `@${name}`;
    };
    let client: Expression | undefined;
    if (r.clientIp && !r.clientIp.all) {
      client = setOrInline(`${r.id}_c${fam}`, r.clientIp);
      if (client === undefined) continue; // no client of this family matches the route
    }
    families.push(fam);
    // Client → route packets only: a reply that happens to go to a route's port (a client whose source port is one) is not the route's.
    const base = (): Statement[] => [
      x.eq(x.meta('nfproto'), nf),
      x.eq(x.meta('l4proto'), l4),
      x.eq(x.payload('th', 'dport'), portExpr(r.ports)),
      x.eq({ fib: { result: 'type', flags: ['daddr'] } }, 'local'),
      x.eq({ ct: { key: 'direction' } }, 'original'),
      ...(client ? [x.eq(x.payload(ipP, 'saddr'), client)] : []),
    ];
    const orig = (): Statement[] => [
      x.eq(x.meta('nfproto'), nf),
      x.eq(x.meta('l4proto'), l4),
      x.match(x.ct('status'), 'in', 'dnat'),
      x.eq({ ct: { key: 'proto-dst', dir: 'original' } }, portExpr(r.ports)),
      ...(client ? [x.eq({ ct: { key: `${ipP} saddr`, dir: 'original' } }, client)] : []),
    ];
    const filters: { kind: 'block' | 'allow'; expr: Statement[] }[] = [];
    r.block.forEach((b, i) => {
      if (b.list.all) return filters.push({ kind: 'block', expr: [...base(), x.counter(), x.drop()] });
      const s = setOrInline(`${r.id}_b${fam}_${i}`, b.list);
      if (s !== undefined) filters.push({ kind: 'block', expr: [...base(), x.eq(x.payload(ipP, 'saddr'), s), x.counter(), x.drop()] });
    });
    r.allow.forEach((a, i) => {
      if (a.list.all) return;
      const s = setOrInline(`${r.id}_a${fam}_${i}`, a.list);
      // An allow list without addresses of this family allows none of it.
      filters.push({ kind: 'allow', expr: s !== undefined ? [...base(), x.match(x.payload(ipP, 'saddr'), '!=', s), x.counter(), x.drop()] : [...base(), x.counter(), x.drop()] });
    });
    for (const [chain, suffix] of [['sp_filter', ''], ['sp_filter_out', '-local']] as const) {
      for (const f of filters) rules.push(rule(chain, `${f.kind}${suffix}`, f.expr));
      // The route claims its packets: lower-priority routes' lists do not apply to them.
      rules.push(rule(chain, `claim${suffix}`, [...base(), x.accept()]));
    }
    const targets = addrs;
    let addr: Expression = targets[0] as string;
    if (targets.length > 1) {
      const key = r.lb === 'ip-hash' ? { jhash: { mod: targets.length, seed: 0x6e66, offset: 0, expr: x.payload(ipP, 'saddr') } } : { numgen: { mode: 'inc', mod: targets.length, offset: 0 } };
      addr = { map: { key, data: x.anonSet(targets.map((h, i) => [i, h])) } };
    }
    const dnat = x.nat('dnat', { family: ipP, addr, ...(typeof r.port === 'number' ? { port: r.port } : {}) });
    const loopback = loop.length > 0;
    const remoteOk = !loopback || (fam === 4 && o.routeLocalnet);
    if (loopback && remoteOk) usesRouteLocalnet = true;
    if (remoteOk) rules.push(rule('sp_dnat', 'dnat', [...base(), x.counter(), dnat]));
    else {
      remoteClients = 'rejected';
      decisions.push({
        subject: `${r.where} IPv${fam} remote clients`,
        chosen: 'rejected',
        reason: fam === 6 ? 'the target is ::1, which the kernel never routes from other hosts' : 'the target is a loopback address and route_localnet was not enabled (netfence option routeLocalnet: true)',
      });
      // Claimed without NAT (a lower-priority route does not take them), then rejected on input.
      rules.push(rule('sp_dnat', 'claim-remote', [...base(), x.accept()]));
      const notNatted = x.eq(x.and(x.ct('status'), 'dnat'), 0);
      for (const p of r.protocols) {
        const rej = p === 'tcp' ? { reject: { type: 'tcp reset' } } : { reject: { type: 'icmpx', expr: 'port-unreachable' } };
        rules.push(rule('sp_input', 'reject-remote', [...base().map((s, i) => (i === 1 ? x.eq(x.meta('l4proto'), p) : s)), notNatted, x.counter(), rej]));
      }
    }
    // Connections made from this host take the output hook.
    rules.push(rule('sp_dnat_out', 'dnat-local', [...base(), x.counter(), dnat]));
    if (!r.preserveSourceIP) rules.push(rule('sp_snat', 'masq', [...orig(), x.counter(), { masquerade: null }]));
    // Keeping the source: stop here, so a lower-priority route's masquerade does not apply.
    else rules.push(rule('sp_snat', 'nomasq', [...orig(), x.accept()]));
    if (r.maxRate !== undefined) rules.push(rule('sp_forward', 'rate', [...orig(), { limit: { rate: r.maxRate, rate_unit: 'bytes', per: 'second', burst: nftBurst(r.maxRate * 8), burst_unit: 'bytes', inv: true } }, x.counter(), x.drop()]));
    if (o.fastPath && r.maxRate === undefined) offloadMatches.push(orig());
    rules.push(rule('sp_forward', 'sent', [...orig(), x.eq({ ct: { key: 'direction' } }, 'original'), x.counter()]));
    rules.push(rule('sp_forward', 'count', [...orig(), x.counter(), x.accept()]));
  }
  if (o.fastPath && r.maxRate !== undefined && r.enabled) decisions.push({ subject: `${r.where} fast path`, chosen: 'not offloaded', reason: 'maxRate must see every packet of the route' });
  else if (o.fastPath && r.enabled) decisions.push({ subject: `${r.where} fast path`, chosen: 'offloaded', reason: 'established flows bypass the forward chains (its forward counters then see the first packets only)' });
  const digest = createHash('sha256').update(JSON.stringify({ sets, rules, p: r.priority })).digest('hex').slice(0, 16);
  return {
    id: r.id,
    name: r.name,
    table,
    family: families[0] ?? 4,
    families,
    sets,
    rules,
    priority: r.priority,
    enabled: r.enabled,
    addresses,
    targetIndex: r.targetIndex,
    remoteClients,
    usesRouteLocalnet,
    rateLimited: r.maxRate !== undefined,
    offloadMatches,
    decisions,
    digest,
  };
}

/** The route id in a rule comment `nf:<id>:<kind>`. */
export function commentId(comment: string | undefined): string | undefined {
  return ownerOfRuleComment(comment);
}

/**
 * Position a compiled route's rules among the rules already in the kernel
 * (pure): each rule goes right before the first rule, in its chain, of a
 * route with a LOWER priority (`insert` at that handle), or at the end of the
 * chain if there is none. Equal priorities keep provisioning order. Rules of
 * the routes in `exclude` (replaced or removed in the same transaction) are
 * never anchors.
 */
export function placeRules(compiled: Pick<CompiledRoute, 'id' | 'priority' | 'rules'>, existing: readonly ListedRule[], priorityOf: (id: string) => number | undefined, exclude?: string | ReadonlySet<string>): Command[] {
  const ex = typeof exclude === 'string' ? new Set([exclude]) : (exclude ?? new Set<string>());
  // The rules that can be anchors (of a lower-priority route), in listing order: found in one
  // pass over the listing, each comment parsed once (a table of 1,000 routes lists 7,000 rules).
  let anchors: readonly ListedRule[] | undefined;
  const lowerPriority = (): readonly ListedRule[] => {
    if (anchors) return anchors;
    const found: ListedRule[] = [];
    const prio = new Map<string, number | undefined>();
    for (const e of existing) {
      const id = commentId(e.comment);
      if (id === undefined || ex.has(id) || id === compiled.id) continue;
      if (!prio.has(id)) prio.set(id, priorityOf(id));
      const p = prio.get(id);
      if (p !== undefined && p < compiled.priority) found.push(e);
    }
    return (anchors = found);
  };
  return compiled.rules.map((cmd) => {
    if (!('add' in cmd) || !('rule' in cmd.add)) return cmd;
    const r = cmd.add.rule;
    const anchor = lowerPriority().find((e) => e.chain === r.chain);
    return anchor ? { insert: { rule: { ...r, handle: anchor.handle } } } : cmd;
  });
}
