/**
 * SmartProxy integration: a drop-in `NFTablesManager` for routes with
 * `action.forwardingEngine: 'nftables'`, compiled to kernel NAT rules in a
 * netfence-owned `inet` table. Entry point `netfence/smartproxy`.
 *
 * Each route becomes a handful of rules (DNAT, masquerade, allow/block, rate
 * limit), tagged with the route's stable id in their comments, plus named
 * sets for its allow/block lists. provision, deprovision and update are one
 * nft transaction each; update deletes the old route's rules and adds the new
 * ones in the same transaction, so there is no instant with neither.
 *
 * Routes whose ports overlap are ordered by priority (SmartProxy's rule:
 * the higher number is matched first): a route's rules are inserted before
 * the rules of every lower-priority route in each chain, and each route
 * "claims" its packets (accept after its filter rules, after its forward
 * count, and in postrouting when it keeps the source), so the rules of a
 * lower-priority route never apply to the winner's traffic.
 * @module
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { AsyncLocalStorage } from 'node:async_hooks';
import { z } from 'zod';
import { NetfenceError, ValidationError, type ValidationIssue } from '../errors.js';
import * as x from '../firewall/expr.js';
import type { Expr, Stmt } from '../firewall/expr.js';
import { destroyTables, listRules, submit, type ListedRule } from '../firewall/kernel.js';
/** A rule as listed from the kernel (chain, handle, comment, counters), as {@link placeRules} receives it. */
export type { ListedRule } from '../firewall/kernel.js';
import { PlanOwner } from '../plan/ownership.js';
import { emptyPlan, type TableRef } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { NftName, NetnsName, parsePrefix } from '../validate.js';
import { ipv4Bytes, ipv6Bytes } from '../xdp/entries.js';

/** A port, a `{from,to}` range, or a list of both (SmartProxy's `TPortRange`). */
export type TPortRange = number | { from: number; to: number } | Array<number | { from: number; to: number }>;

/** nftables options of a route (SmartProxy's `action.nftables`). */
export interface INfTablesOptions {
  protocol?: 'tcp' | 'udp' | 'all';
  /** Keep the client's address (no masquerade): the target must route replies back through this host. */
  preserveSourceIP?: boolean;
  /** Rate limit for the route's traffic (both directions), e.g. `'10mbps'`, `'500kbps'`, `'1gbps'` (bits per second). */
  maxRate?: string;
  /**
   * Order of routes whose ports overlap: the higher number wins (SmartProxy's
   * route priority: higher = matched first). Overrides the route's top-level
   * `priority`; default 0; equal priorities keep provisioning order.
   */
  priority?: number;
  /** Table for this route (default: the manager's). */
  tableName?: string;
  /** Named sets for allow/block lists (default true); inline anonymous sets when false. */
  useIPSets?: boolean;
  /**
   * Refused when `true` (a {@link ValidationError} naming the field): SmartProxy
   * defines no kernel behaviour for it that netfence could reproduce. `false`
   * (or absent) is the only behaviour there is: conntrack-based DNAT.
   */
  useAdvancedNAT?: boolean;
}

/** A route in SmartProxy's model (the fields the nftables engine uses). */
export interface IRouteConfig {
  id?: string;
  name?: string;
  match: { ports: TPortRange; domains?: string | string[]; [k: string]: unknown };
  action: {
    type: 'forward' | string;
    target?: { host: string | string[] | ((...a: unknown[]) => unknown); port: number | 'preserve' | ((...a: unknown[]) => unknown) };
    forwardingEngine?: 'node' | 'nftables';
    security?: { ipAllowList?: string[]; ipBlockList?: string[]; [k: string]: unknown };
    nftables?: INfTablesOptions;
    [k: string]: unknown;
  };
  /** SmartProxy's route priority (higher = matched first); `action.nftables.priority` overrides it. */
  priority?: number;
  /** `false` is refused: a disabled route must not be provisioned. */
  enabled?: boolean;
  [k: string]: unknown;
}

/** Options of {@link NFTablesManager}. */
export interface NFTablesManagerOptions {
  /** Default table name (default `smartproxy`). */
  tableName?: string;
  /** Network namespace; the current one if absent. */
  netns?: string;
  /** Plan owner recorded in the tables (default `smartproxy`). */
  owner?: string;
}

/** Status of one provisioned route. */
export interface RouteStatus {
  routeId: string;
  name: string | undefined;
  table: string;
  /** Packets and bytes that hit the route's DNAT rules (new connections' first packets: NAT rules see one packet per flow). */
  packets: number;
  bytes: number;
  /** Packets and bytes counted on the route's forwarded traffic (all packets of its flows). */
  forwarded: { packets: number; bytes: number };
  /** The route's rules in force, as nft JSON statements, by comment. */
  rules: { comment: string; chain: string; handle: number }[];
}

/** What `getStatus()` returns: routes by id. */
export type NFTablesStatus = Record<string, RouteStatus>;

const CHAINS = {
  filter: { name: 'sp_filter', type: 'filter', hook: 'prerouting', prio: -150 },
  nat: { name: 'sp_dnat', type: 'nat', hook: 'prerouting', prio: -100 },
  out: { name: 'sp_dnat_out', type: 'nat', hook: 'output', prio: -100 },
  post: { name: 'sp_snat', type: 'nat', hook: 'postrouting', prio: 100 },
  fwd: { name: 'sp_forward', type: 'filter', hook: 'forward', prio: 0 },
} as const;

const PortSchema = z.number().int().min(1).max(65535);
const RangeSchema = z.object({ from: PortSchema, to: PortSchema }).refine((r) => r.from <= r.to, { message: 'from must be <= to', path: ['to'] });
const PortsSchema = z.union([PortSchema, RangeSchema, z.array(z.union([PortSchema, RangeSchema])).min(1)]);
const RateSchema = z.string().regex(/^\d+(\.\d+)?\s*(bps|kbps|mbps|gbps)$/i, "must be like '10mbps', '500kbps', '1gbps'");

/** A stable route id, derived from the route's name and match (never from time). */
/**
 * The list without entries another entry already covers (an address inside a
 * listed prefix, a duplicate): same membership, and nft refuses overlapping
 * intervals in an interval set ("conflicting intervals specified"). CIDR
 * prefixes either nest or are disjoint, so nothing else can overlap.
 */
function withoutCovered(items: string[]): string[] {
  const ps = items.map((s) => {
    const p = parsePrefix(s)!;
    const bits = p.family === 4 ? 32 : 128;
    let n = 0n;
    for (const b of p.family === 4 ? ipv4Bytes(p.address) : ipv6Bytes(p.address)) n = (n << 8n) | BigInt(b);
    const host = BigInt(bits - p.len);
    const lo = (n >> host) << host;
    return { s, lo, hi: lo + (1n << host) - 1n };
  });
  return ps.filter((a, i) => !ps.some((b, j) => j !== i && b.lo <= a.lo && a.hi <= b.hi && (b.lo < a.lo || a.hi < b.hi || j < i))).map((a) => a.s);
}

/** JSON text of any value, never throwing (BigInt, cycles, throwing getters): for messages and hashing only. */
function safeJson(v: unknown): string {
  try {
    return String(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x)));
  } catch {
    return `[${typeof v}]`;
  }
}

export function routeId(route: Pick<IRouteConfig, 'name' | 'match' | 'id'>): string {
  const basis = safeJson({ name: route.name ?? route.id ?? '', ports: route.match?.ports ?? null, domains: route.match?.domains ?? null });
  return `r${createHash('sha256').update(basis).digest('hex').slice(0, 12)}`;
}

/** Bytes per second of a rate like `'10mbps'`. */
export function parseRate(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(bps|kbps|mbps|gbps)$/i.exec(rate.trim());
  if (!m) return NaN;
  const mult = { bps: 1, kbps: 1e3, mbps: 1e6, gbps: 1e9 }[(m[2] as string).toLowerCase() as 'bps'];
  return Math.max(1, Math.round((Number(m[1]) * mult) / 8));
}

/** A route compiled to nft commands. */
export interface CompiledRoute {
  id: string;
  table: string;
  family: 4 | 6;
  /** `add set` + `flush set` + elements, per named set. */
  sets: { name: string; cmds: unknown[] }[];
  /** `add rule` commands (appended; {@link placeRules} positions them among other routes' rules). */
  rules: unknown[];
  /** The route's priority (higher = its rules come first). */
  priority: number;
}

/** Fields of `action.nftables` netfence understands (anything else is refused, not ignored). */
const NFT_KEYS = new Set(['protocol', 'preserveSourceIP', 'maxRate', 'priority', 'tableName', 'useIPSets', 'useAdvancedNAT']);
/** Fields of `action.security` the kernel rules implement. */
const SECURITY_KEYS = new Set(['ipAllowList', 'ipBlockList']);
const isAnyDomain = (d: unknown) => d === undefined || d === '*' || (Array.isArray(d) && d.length > 0 && d.every((v) => v === '*'));

/** The route id in a rule comment `nf:<id>:<kind>`. */
function commentId(comment: string | undefined): string | undefined {
  const m = /^nf:([^:]+):/.exec(comment ?? '');
  return m ? m[1] : undefined;
}

/**
 * Position a compiled route's rules among the rules already in the kernel
 * (pure): each rule goes right before the first rule, in its chain, of a
 * route with a LOWER priority (`insert` at that handle), or at the end of the
 * chain if there is none. Equal priorities keep provisioning order. Rules of
 * `exclude` (the route being replaced in the same transaction) are never
 * used as anchors.
 */
export function placeRules(compiled: CompiledRoute, existing: readonly ListedRule[], priorityOf: (id: string) => number | undefined, exclude?: string): unknown[] {
  return compiled.rules.map((cmd) => {
    const r = (cmd as { add: { rule: { chain: string } & Record<string, unknown> } }).add.rule;
    const anchor = existing.find((e) => {
      if (e.chain !== r.chain) return false;
      const id = commentId(e.comment);
      if (id === undefined || id === exclude || id === compiled.id) return false;
      const p = priorityOf(id);
      return p !== undefined && p < compiled.priority;
    });
    return anchor ? { insert: { rule: { ...r, handle: anchor.handle } } } : cmd;
  });
}

function portList(p: TPortRange): (number | { from: number; to: number })[] {
  return Array.isArray(p) ? p : [p];
}

function portExpr(p: TPortRange): Expr {
  const l = portList(p).map((v) => (typeof v === 'number' ? v : v.from === v.to ? v.from : x.range(v.from, v.to)));
  return l.length === 1 ? l[0] : x.setOf(l);
}

/**
 * Compile a route to nft commands (pure). Refuses, naming the field, what
 * cannot be kernel rules: targets given as functions, host names (give
 * addresses), mixed IPv4/IPv6 targets, a 'preserve' port with a port list
 * mapped to a fixed port, etc.
 */
export function compileRoute(route: IRouteConfig, defaults: { tableName: string }): Result<CompiledRoute, ValidationError> {
  const issues: ValidationIssue[] = [];
  if (!route || typeof route !== 'object' || Array.isArray(route)) return Err(new ValidationError('route', [{ path: 'route', message: 'must be a route object' }]));
  for (const k of ['match', 'action'] as const) {
    const v = route[k];
    if (v !== undefined && (v === null || typeof v !== 'object' || Array.isArray(v))) return Err(new ValidationError('route', [{ path: `route.${k}`, message: 'must be an object' }]));
  }
  // name and id are free text for people, but never control characters, quotes, backslash, `;`, `$` or backticks
  for (const k of ['name', 'id'] as const) {
    const v = route[k];
    if (v !== undefined && (typeof v !== 'string' || v.length > 200 || /[\x00-\x1f\x7f"'`;$\\]/.test(v)))
      return Err(new ValidationError('route', [{ path: `route.${k}`, message: 'must be a string of at most 200 characters without control characters, quotes, backslash, ; $ or backticks' }]));
  }
  const rid = routeId(route);
  const where = `route ${typeof route.name === 'string' ? route.name : rid}`;
  const bad = (f: string, m: string) => issues.push({ path: `${where}.${f}`, message: m });
  const a = route.action ?? ({} as IRouteConfig['action']);
  const nopt = a.nftables ?? {};
  const table = nopt.tableName ?? defaults.tableName;
  if (!NftName.safeParse(table).success) bad('action.nftables.tableName', 'invalid table name');
  if (a.type !== 'forward') bad('action.type', `only 'forward' routes can run on the nftables engine (got ${safeJson(a.type)})`);
  if (a.forwardingEngine !== undefined && a.forwardingEngine !== 'nftables') bad('action.forwardingEngine', "must be 'nftables' for NFTablesManager");
  if (route.enabled === false) bad('enabled', 'a disabled route cannot be provisioned (deprovision it instead)');
  for (const k of Object.keys(nopt)) if (!NFT_KEYS.has(k)) bad(`action.nftables.${k}`, `unknown option (known: ${[...NFT_KEYS].join(', ')})`);
  if (nopt.useAdvancedNAT !== undefined && typeof nopt.useAdvancedNAT !== 'boolean') bad('action.nftables.useAdvancedNAT', 'must be a boolean');
  if (nopt.useAdvancedNAT === true) bad('action.nftables.useAdvancedNAT', 'is not supported: SmartProxy gives it no kernel behaviour netfence could reproduce; netfence always uses conntrack-based DNAT (remove the option or set it to false)');
  const prio = nopt.priority ?? route.priority ?? 0;
  if (typeof prio !== 'number' || !Number.isFinite(prio)) bad(nopt.priority !== undefined ? 'action.nftables.priority' : 'priority', 'must be a finite number');
  for (const k of Object.keys(route.match ?? {})) {
    if (k === 'ports' || (k === 'domains' && isAnyDomain(route.match.domains))) continue;
    if (route.match[k] === undefined) continue;
    bad(`match.${k}`, 'kernel NAT matches ports only: this criterion cannot be kernel rules (use forwardingEngine "node" for it)');
  }
  for (const k of Object.keys(a.security ?? {})) {
    if (!SECURITY_KEYS.has(k) && (a.security as Record<string, unknown>)[k] !== undefined) bad(`action.security.${k}`, 'not implemented by the nftables engine (only ipAllowList and ipBlockList are)');
  }
  const ports = PortsSchema.safeParse(route.match?.ports);
  if (!ports.success) bad('match.ports', ports.error.issues[0]?.message ?? 'invalid');
  const target = a.target;
  if (!target) bad('action.target', 'is required');
  const hostsRaw = target?.host;
  if (typeof hostsRaw === 'function') bad('action.target.host', 'a function cannot be compiled to kernel rules: give IP addresses, or use forwardingEngine "node" for dynamic targets');
  if (typeof target?.port === 'function') bad('action.target.port', 'a function cannot be compiled to kernel rules: give a number or "preserve", or use forwardingEngine "node"');
  const hosts = typeof hostsRaw === 'string' ? [hostsRaw] : Array.isArray(hostsRaw) ? hostsRaw : [];
  if (typeof hostsRaw !== 'function' && hosts.length === 0 && target) bad('action.target.host', 'needs at least one address');
  hosts.forEach((h, i) => {
    if (typeof h !== 'string' || !(isIPv4(h) || isIPv6(h))) bad(`action.target.host${Array.isArray(hostsRaw) ? `.${i}` : ''}`, `${safeJson(h)} is not an IP address (kernel NAT needs addresses; resolve host names first)`);
  });
  const fam: 4 | 6 = typeof hosts[0] === 'string' && isIPv6(hosts[0]) ? 6 : 4;
  if (hosts.some((h) => typeof h === 'string' && (fam === 4 ? isIPv6(h) : isIPv4(h)))) bad('action.target.host', 'all targets must be of one address family');
  const port = target?.port;
  if (port !== undefined && typeof port !== 'function' && port !== 'preserve' && !PortSchema.safeParse(port).success) bad('action.target.port', "must be a port number or 'preserve'");
  const proto = nopt.protocol ?? 'tcp';
  if (!['tcp', 'udp', 'all'].includes(proto)) bad('action.nftables.protocol', "must be 'tcp', 'udp' or 'all'");
  if (nopt.maxRate !== undefined && !RateSchema.safeParse(nopt.maxRate).success) bad('action.nftables.maxRate', "must be like '10mbps', '500kbps', '1gbps'");
  const lists: { kind: 'allow' | 'block'; items: string[] }[] = [];
  for (const kind of ['allow', 'block'] as const) {
    const l = kind === 'allow' ? a.security?.ipAllowList : a.security?.ipBlockList;
    if (l === undefined) continue;
    if (!Array.isArray(l)) {
      bad(`action.security.ip${kind === 'allow' ? 'Allow' : 'Block'}List`, 'must be an array');
      continue;
    }
    l.forEach((s, i) => {
      if (typeof s !== 'string' || !parsePrefix(s)) bad(`action.security.ip${kind === 'allow' ? 'Allow' : 'Block'}List.${i}`, `${safeJson(s)} is not an IP address or CIDR (wildcards like 192.168.* are not supported: use 192.168.0.0/16)`);
    });
    lists.push({ kind, items: l });
  }
  if (issues.length) return Err(new ValidationError(where, issues));

  const p = ports.data as TPortRange;
  const protos = proto === 'all' ? ['tcp', 'udp'] : [proto];
  const ipP = fam === 4 ? 'ip' : 'ip6';
  const nf = fam === 4 ? 'ipv4' : 'ipv6';
  const rule = (chain: string, k: string, expr: Stmt[]) => x.add('rule', { family: 'inet', table, chain, comment: `nf:${rid}:${k}`, expr });
  const base = (): Stmt[] => [
    x.match(x.meta('nfproto'), nf),
    x.match(x.meta('l4proto'), protos.length === 1 ? protos[0] : x.setOf(protos)),
    x.match(x.payload('th', 'dport'), portExpr(p)),
    x.match({ fib: { result: 'type', flags: ['daddr'] } }, 'local'),
  ];
  const sets: CompiledRoute['sets'] = [];
  const rules: unknown[] = [];
  const useSets = nopt.useIPSets !== false;
  for (const l of lists) {
    const mine = withoutCovered(l.items.filter((s) => parsePrefix(s)?.family === fam));
    const name = `${rid}_${l.kind}`;
    const elems = mine.map((s) => x.addrValue(s));
    let right: Expr;
    if (useSets) {
      sets.push({
        name,
        cmds: [
          x.add('set', { family: 'inet', table, name, type: fam === 4 ? 'ipv4_addr' : 'ipv6_addr', flags: ['interval'] }),
          x.flush('set', { family: 'inet', table, name }),
          ...(elems.length ? [x.add('element', { family: 'inet', table, name, elem: elems })] : []),
        ],
      });
      right = `@${name}`;
    } else right = x.setOf(elems);
    if (l.kind === 'block' && elems.length) rules.push(rule(CHAINS.filter.name, 'block', [...base(), x.match(x.payload(ipP, 'saddr'), right), x.counter(), x.drop()]));
    if (l.kind === 'allow') {
      // An allow list of the other family only: nothing of this family is allowed.
      rules.push(rule(CHAINS.filter.name, 'allow', elems.length ? [...base(), x.match(x.payload(ipP, 'saddr'), right, '!='), x.counter(), x.drop()] : [...base(), x.counter(), x.drop()]));
    }
  }
  // The route claims its packets: lower-priority routes' lists do not apply to them.
  rules.push(rule(CHAINS.filter.name, 'claim', [...base(), x.accept()]));
  const addr: Expr = hosts.length === 1 ? hosts[0] : { map: { key: { numgen: { mode: 'inc', mod: hosts.length, offset: 0 } }, data: x.setOf(hosts.map((h, i) => [i, h])) } };
  const dnat = { dnat: { family: ipP, addr, ...(typeof port === 'number' ? { port } : {}) } };
  rules.push(rule(CHAINS.nat.name, 'dnat', [...base(), x.counter(), dnat]));
  // Connections made from this host to its own address take the output hook.
  rules.push(rule(CHAINS.out.name, 'dnat-local', [...base(), x.counter(), dnat]));
  const origPort = (): Stmt[] => [
    x.match(x.meta('nfproto'), nf),
    x.match(x.meta('l4proto'), protos.length === 1 ? protos[0] : x.setOf(protos)),
    x.match(x.ct('status'), 'dnat', 'in'),
    x.match({ ct: { key: 'proto-dst', dir: 'original' } }, portExpr(p)),
  ];
  if (!nopt.preserveSourceIP) rules.push(rule(CHAINS.post.name, 'masq', [...origPort(), x.counter(), { masquerade: null }]));
  // Keeping the source: stop here, so a lower-priority route's masquerade does not apply.
  else rules.push(rule(CHAINS.post.name, 'nomasq', [...origPort(), x.accept()]));
  if (nopt.maxRate) rules.push(rule(CHAINS.fwd.name, 'rate', [...origPort(), { limit: { rate: parseRate(nopt.maxRate), rate_unit: 'bytes', per: 'second', inv: true } }, x.counter(), x.drop()]));
  rules.push(rule(CHAINS.fwd.name, 'count', [...origPort(), x.counter(), x.accept()]));
  return Ok({ id: rid, table, family: fam, sets, rules, priority: prio as number });
}

/** The commands creating a manager table's base chains (idempotent). */
function structure(table: string): unknown[] {
  return [
    x.add('table', { family: 'inet', name: table }),
    ...Object.values(CHAINS).map((c) => x.add('chain', { family: 'inet', table, name: c.name, type: c.type, hook: c.hook, prio: c.prio, policy: 'accept' })),
  ];
}

/**
 * SmartProxy's NFTablesManager, implemented with netfence: provision,
 * deprovision and update routes as kernel NAT rules, one transaction each.
 */
export class NFTablesManager {
  private readonly tableName: string;
  private readonly netns: string | undefined;
  private readonly owner: string;
  /** Provisioned routes by id. */
  private readonly routes = new Map<string, { route: IRouteConfig; compiled: CompiledRoute }>();
  /** Mutations run one at a time: each reads the live chains to place its rules by priority. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly inQueue = new AsyncLocalStorage<true>();

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inQueue.getStore()) return fn(); // provisionRoute -> updateRoute
    const next = this.queue.then(() => this.inQueue.run(true, fn));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Invalid options throw a {@link ValidationError}. */
  constructor(options: NFTablesManagerOptions = {}) {
    const issues: ValidationIssue[] = [];
    if (options === null || typeof options !== 'object') throw new ValidationError('NFTablesManager options', [{ path: 'options', message: 'must be an object' }]);
    if (options.tableName !== undefined && !NftName.safeParse(options.tableName).success) issues.push({ path: 'tableName', message: 'invalid table name' });
    if (options.netns !== undefined && !NetnsName.safeParse(options.netns).success) issues.push({ path: 'netns', message: 'invalid namespace name' });
    if (options.owner !== undefined && !PlanOwner.safeParse(options.owner).success) issues.push({ path: 'owner', message: 'invalid owner (letters, digits and _ . : @ + = / -, at most 100)' });
    if (issues.length) throw new ValidationError('NFTablesManager options', issues);
    this.tableName = options.tableName ?? 'smartproxy';
    this.netns = options.netns;
    this.owner = options.owner ?? 'smartproxy';
  }

  /** Compile a route without touching the kernel (for review, tests). */
  compile(route: IRouteConfig): Result<CompiledRoute, ValidationError> {
    return compileRoute(route, { tableName: this.tableName });
  }

  private async tx(table: string, nft: unknown[]): Promise<Result<void, NetfenceError>> {
    const plan = emptyPlan(this.owner, this.netns);
    plan.tables = [{ family: 'inet', name: table }];
    plan.nft = [...structure(table), ...nft];
    const r = await submit(plan, { snapshot: 'never' });
    return r.err ? Err(r.val) : Ok(undefined);
  }

  /** The route's rules positioned by priority among the other routes' rules in its table. */
  private async placed(c: CompiledRoute, exclude?: string): Promise<Result<unknown[], NetfenceError>> {
    const others = [...this.routes.entries()].filter(([id, p]) => id !== exclude && id !== c.id && p.compiled.table === c.table);
    if (others.length === 0) return Ok(c.rules);
    const l = await listRules(this.netns, 'inet', c.table, Object.values(CHAINS).map((ch) => ch.name));
    if (l.err) return Err(l.val);
    return Ok(placeRules(c, l.val, (id) => this.routes.get(id)?.compiled.priority, exclude));
  }

  /** Commands removing a provisioned route's rules (found by their comments) and, optionally, its sets. */
  private async removal(id: string, keepSets: Set<string>): Promise<Result<unknown[], NetfenceError>> {
    const p = this.routes.get(id);
    if (!p) return Ok([]);
    const t = p.compiled.table;
    const l = await listRules(this.netns, 'inet', t, Object.values(CHAINS).map((c) => c.name));
    if (l.err) return Err(l.val);
    const cmds: unknown[] = l.val.filter((r) => r.comment?.startsWith(`nf:${id}:`)).map((r) => x.del('rule', { family: 'inet', table: t, chain: r.chain, handle: r.handle }));
    for (const s of p.compiled.sets) if (!keepSets.has(`${t}/${s.name}`)) cmds.push(x.del('set', { family: 'inet', table: t, name: s.name }));
    return Ok(cmds);
  }

  /** Install a route's rules (one transaction). Provisioning an already provisioned route replaces it. */
  async provisionRoute(route: IRouteConfig): Promise<Result<{ routeId: string }, NetfenceError>> {
    return this.serial(async () => {
    const c = this.compile(route);
    if (c.err) return Err(c.val);
    if (this.routes.has(c.val.id)) return this.updateRoute(route, route);
    const pl = await this.placed(c.val);
    if (pl.err) return Err(pl.val);
    const r = await this.tx(c.val.table, [...c.val.sets.flatMap((s) => s.cmds), ...pl.val]);
    if (r.err) return Err(r.val);
    this.routes.set(c.val.id, { route, compiled: c.val });
    return Ok({ routeId: c.val.id });
    });
  }

  /** Remove a route's rules and sets (one transaction). Unknown routes are a no-op. */
  async deprovisionRoute(route: IRouteConfig): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const id = routeId(route);
    const p = this.routes.get(id);
    if (!p) return Ok(undefined);
    const rm = await this.removal(id, new Set());
    if (rm.err) return Err(rm.val);
    const r = await this.tx(p.compiled.table, rm.val);
    if (r.err) return Err(r.val);
    this.routes.delete(id);
    return Ok(undefined);
    });
  }

  /**
   * Replace `oldRoute` by `newRoute` atomically: the old rules are deleted and
   * the new ones added in ONE nft transaction. Established connections keep
   * their NAT (conntrack), and routes not named here are not touched. A
   * changed priority moves the route's rules to their new position in the
   * same transaction.
   */
  async updateRoute(oldRoute: IRouteConfig, newRoute: IRouteConfig): Promise<Result<{ routeId: string }, NetfenceError>> {
    return this.serial(async () => {
    const c = this.compile(newRoute);
    if (c.err) return Err(c.val);
    const oldId = routeId(oldRoute);
    const old = this.routes.get(oldId);
    if (old && old.compiled.table !== c.val.table) {
      return Err(new ValidationError('updateRoute', [{ path: 'action.nftables.tableName', message: 'cannot move a route to another table atomically: deprovision and provision it' }]));
    }
    const keep = new Set(c.val.sets.map((s) => `${c.val.table}/${s.name}`));
    const rm = await this.removal(oldId, keep);
    if (rm.err) return Err(rm.val);
    const pl = await this.placed(c.val, oldId);
    if (pl.err) return Err(pl.val);
    const r = await this.tx(c.val.table, [...c.val.sets.flatMap((s) => s.cmds), ...rm.val, ...pl.val]);
    if (r.err) return Err(r.val);
    this.routes.delete(oldId);
    this.routes.set(c.val.id, { route: newRoute, compiled: c.val });
    return Ok({ routeId: c.val.id });
    });
  }

  /** Per-route packets, bytes and the rules in force, read from the kernel. */
  async getStatus(): Promise<Result<NFTablesStatus, NetfenceError>> {
    const out: NFTablesStatus = {};
    const tables = new Set([...this.routes.values()].map((r) => r.compiled.table));
    for (const t of tables) {
      const l = await listRules(this.netns, 'inet', t, Object.values(CHAINS).map((c) => c.name));
      if (l.err) return Err(l.val);
      for (const [id, p] of this.routes) {
        if (p.compiled.table !== t) continue;
        const mine = l.val.filter((r) => r.comment?.startsWith(`nf:${id}:`));
        const dn = mine.filter((r) => /:dnat(-local)?$/.test(r.comment ?? ''));
        const fw = mine.filter((r) => (r.comment ?? '').endsWith(':count'));
        out[id] = {
          routeId: id,
          name: p.route.name,
          table: t,
          packets: dn.reduce((s, r) => s + r.packets, 0),
          bytes: dn.reduce((s, r) => s + r.bytes, 0),
          forwarded: { packets: fw.reduce((s, r) => s + r.packets, 0), bytes: fw.reduce((s, r) => s + r.bytes, 0) },
          rules: mine.map((r) => ({ comment: r.comment ?? '', chain: r.chain, handle: r.handle })),
        };
      }
    }
    return Ok(out);
  }

  /** Remove every table this manager provisioned (one transaction). */
  async stop(): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const tables: TableRef[] = [...new Set([...this.routes.values()].map((r) => r.compiled.table))].map((name) => ({ family: 'inet', name }));
    if (tables.length === 0) return Ok(undefined);
    const r = await destroyTables(tables, this.netns, this.owner);
    if (r.err) return Err(r.val);
    this.routes.clear();
    return Ok(undefined);
    });
  }
}

/** Options of {@link createNfTablesRoute}. */
export interface NfTablesRouteOptions extends INfTablesOptions {
  ipAllowList?: string[];
  ipBlockList?: string[];
}

/**
 * A forward route on the nftables engine: `ports` on this host forwarded to
 * `target.host` (one address, or several to load-balance) at `target.port`
 * (a number, or `'preserve'` to keep the port the client used).
 */
export function createNfTablesRoute(name: string, ports: TPortRange, target: { host: string | string[]; port: number | 'preserve' }, options: NfTablesRouteOptions = {}): IRouteConfig {
  const { ipAllowList, ipBlockList, ...nft } = options;
  const security = ipAllowList || ipBlockList ? { ...(ipAllowList ? { ipAllowList } : {}), ...(ipBlockList ? { ipBlockList } : {}) } : undefined;
  return {
    name,
    match: { ports },
    action: { type: 'forward', target, forwardingEngine: 'nftables', ...(security ? { security } : {}), nftables: { protocol: 'tcp', ...nft } },
  };
}

/** A route forwarding a port range to the same ports on `host` (`'preserve'`). */
export function createNfTablesRangeRoute(name: string, from: number, to: number, host: string | string[], options: NfTablesRouteOptions = {}): IRouteConfig {
  return createNfTablesRoute(name, { from, to }, { host, port: 'preserve' }, options);
}
