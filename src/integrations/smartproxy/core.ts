/**
 * The state and kernel side of both route managers (Result-based): resolve
 * host names, compile, and apply any set of removals and additions as ONE nft
 * transaction, with each added rule placed by priority among the rules
 * already in force. Routes not named in a change are never touched.
 * @module
 */
import { lookup } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { NetfenceError, ValidationError } from '../../errors.js';
import * as x from '../../nft/build.js';
import type { Command } from '../../nft/schema/index.js';
import { destroyTables, listRules, submit, type ListedRule } from '../../firewall/kernel.js';
import { run } from '../../host/run.js';
import { emptyPlan, type TableRef } from '../../plan/types.js';
import { ownedRuleCommentPrefix } from '../../util/rule-comment.js';
import { SerialQueue } from '../../util/serial.js';
import { Err, Ok, type Result } from '../../result.js';
import { applyEcho, failedAtStaleHandle } from '../../firewall/live-rules.js';
import { CHAIN_NAMES, compileNormalized, placeRules, structure, type CompiledRoute, type TargetAddresses } from './compile.js';
import { normalizeRoute, routeId, type NormalizedRoute } from './normalize.js';
import type { IRouteConfig } from './types.js';
import type { FastPath } from './fastpath.js';

const CHAIN_SET: ReadonlySet<string> = new Set(CHAIN_NAMES);

/** Settings of a core. */
export interface CoreOptions {
  tableName: string;
  netns: string | undefined;
  owner: string;
  engine: 'strict' | 'lenient';
  /** Default of preserveSourceIP, read at each provision (SmartProxy's live settings). */
  preserveSourceIP: () => boolean | undefined;
  routeLocalnet: boolean;
  resolve: (host: string) => Promise<string[]>;
  fastPath: FastPath;
}

/** A provisioned route. */
export interface Provisioned {
  route: IRouteConfig;
  compiled: CompiledRoute;
  /** How it was prepared, for `syncRoutes` to reuse when the same route comes again. @internal */
  prepared?: { key: string; norm: NormalizedRoute } | undefined;
}

/**
 * A key for a route that is plain data (strings, numbers, booleans, arrays and
 * plain objects), equal for equal routes; undefined for anything else (a
 * function, a Date, a class instance), which is then prepared again.
 */
export function routeKey(route: IRouteConfig, extra: string): string | undefined {
  if (!plainData(route, 0)) return undefined;
  const key = JSON.stringify(route);
  return typeof key === 'string' ? `${extra}|${key}` : undefined;
}

/** Whether `v` is plain data all the way down (what JSON.stringify keeps exactly). */
function plainData(v: unknown, depth: number): boolean {
  if (v === null || v === undefined) return true;
  const t = typeof v;
  if (t === 'string' || t === 'boolean') return true;
  if (t === 'number') return Number.isFinite(v);
  if (t !== 'object' || depth > 32) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (x === undefined || !plainData(x, depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const k in v as Record<string, unknown>) if (!plainData((v as Record<string, unknown>)[k], depth + 1)) return false;
  return true;
}

/** A route ready to go to the kernel, or not this manager's. */
export type Prepared = { kind: 'skip'; id: string } | { kind: 'route'; route: IRouteConfig; norm: NormalizedRoute; compiled: CompiledRoute };

/** What `syncRoutes` did, by route id. */
export interface SyncSummary {
  added: string[];
  updated: string[];
  removed: string[];
  unchanged: string[];
}

/** The system resolver: every address of a name (both families). */
export async function systemResolve(host: string): Promise<string[]> {
  const r = await lookup(host, { all: true, verbatim: true });
  return r.map((a) => a.address);
}

export class RouteCore {
  readonly routes = new Map<string, Provisioned>();
  /** Tables this core created (removed by stop()). */
  private readonly tables = new Set<string>();
  private readonly queue = new SerialQueue({ reentrant: true });
  /** The value of route_localnet before this core set it, when it did. */
  private localnetBefore: string | undefined;
  /**
   * The rules of each table as of this core's last transaction (handles from
   * nft's echo, see firewall/live-rules.ts), so a change does not list the
   * table again. Forgotten on any failure; a stale handle fails the batch
   * atomically and the change is built again from a fresh listing.
   */
  private readonly known = new Map<string, ListedRule[]>();

  constructor(readonly o: CoreOptions) {}

  /** The settings a prepared route depends on (see {@link routeKey}). */
  private settingsKey(): string {
    return `${this.o.engine}|${String(this.o.preserveSourceIP())}|${this.o.routeLocalnet}|${this.o.fastPath.enabled}`;
  }

  /** Mutations run one at a time: each reads the live chains to place its rules. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }

  /** Compile with addresses given (literal targets need none): pure, for review and tests. */
  compile(route: IRouteConfig, resolved: Record<string, string[]> = {}): Result<CompiledRoute, ValidationError> {
    const n = normalizeRoute(route, { tableName: this.o.tableName, engine: 'lenient', preserveSourceIP: this.o.preserveSourceIP() });
    if (n.err) return Err(n.val);
    const norm = n.val as NormalizedRoute;
    const addrs = literalOrGiven(norm, resolved);
    if (typeof addrs === 'string') return Err(new ValidationError(norm.where, [{ path: `${norm.where}.${norm.hostField}`, message: addrs }]));
    return this.finish(norm, addrs);
  }

  private finish(norm: NormalizedRoute, addrs: TargetAddresses): Result<CompiledRoute, ValidationError> {
    const c = compileNormalized(norm, addrs, { routeLocalnet: this.o.routeLocalnet, fastPath: this.o.fastPath.enabled });
    if ('error' in c) return Err(new ValidationError(norm.where, [c.error]));
    c.decisions.push(...this.o.fastPath.decisions.map((d) => ({ ...d, subject: `${norm.where} ${d.subject}` })));
    return Ok(c);
  }

  /** Normalize, resolve host names (once, now) and compile. */
  async prepare(route: IRouteConfig): Promise<Result<Prepared, NetfenceError>> {
    const n = normalizeRoute(route, { tableName: this.o.tableName, engine: this.o.engine, preserveSourceIP: this.o.preserveSourceIP() });
    if (n.err) return Err(n.val);
    if (n.val === 'skip') return Ok({ kind: 'skip', id: routeId(route) });
    const norm = n.val;
    const resolved: Record<string, string[]> = {};
    for (const h of norm.hosts) {
      if (isIPv4(h) || isIPv6(h)) continue;
      try {
        const a = (await this.o.resolve(h)).filter((v) => isIPv4(v) || isIPv6(v));
        if (a.length === 0) throw new Error('no addresses');
        resolved[h] = a;
      } catch (e) {
        return Err(new NetfenceError('RESOLVE_FAILED', `${norm.where}.${norm.hostField}: host name ${JSON.stringify(h)} did not resolve (${(e as Error).message})`, { hint: 'give an address, or fix name resolution; names are resolved once, at provision time' }));
      }
    }
    const addrs = literalOrGiven(norm, resolved);
    if (typeof addrs === 'string') return Err(new ValidationError(norm.where, [{ path: `${norm.where}.${norm.hostField}`, message: addrs }]));
    const c = this.finish(norm, addrs);
    return c.err ? Err(c.val) : Ok({ kind: 'route', route, norm, compiled: c.val });
  }

  isProvisioned(route: IRouteConfig): boolean {
    return this.routes.has(routeId(route));
  }

  /**
   * Remove the routes `remove` (ids) and add `add`, in one nft transaction.
   * Disabled routes in `add` only remove their earlier version.
   */
  async change(remove: readonly string[], add: readonly Extract<Prepared, { kind: 'route' }>[], fresh = false): Promise<Result<void, NetfenceError>> {
    const adding = add.filter((p) => p.compiled.enabled);
    const gone = new Set([...remove, ...add.map((p) => p.compiled.id)].filter((id) => this.routes.has(id)));
    const tables = new Set<string>([...adding.map((p) => p.compiled.table), ...[...gone].map((id) => this.routes.get(id)!.compiled.table)]);
    if (tables.size === 0) {
      for (const p of add) this.routes.delete(p.compiled.id);
      return Ok(undefined);
    }
    const cmds: Command[] = [];
    const setsAfter: Command[] = [];
    const keep = new Set(adding.flatMap((p) => p.compiled.sets.map((s) => `${p.compiled.table}/${s.name}`)));
    const prio = (id: string) => (gone.has(id) ? undefined : this.routes.get(id)?.compiled.priority);
    // Higher priority first; ties keep the order given (insertions before one anchor then come out in that order).
    const order = adding.map((p, i) => ({ p, i })).sort((a, b) => b.p.compiled.priority - a.p.compiled.priority || a.i - b.i);
    const before = new Map<string, ListedRule[]>();
    let usedKnown = false;
    for (const t of tables) {
      cmds.push(...structure(t));
      const others = [...this.routes.values()].some((r) => r.compiled.table === t);
      let listed: ListedRule[] = [];
      const kept = fresh ? undefined : this.known.get(t);
      if (kept) {
        listed = kept;
        usedKnown = true;
      } else if (others) {
        const l = await listRules(this.o.netns, 'inet', t, CHAIN_NAMES);
        if (l.err) return Err(l.val);
        listed = l.val;
      }
      before.set(t, listed);
      for (const { p } of order) if (p.compiled.table === t) cmds.push(...p.compiled.sets.flatMap((s) => s.cmds));
      for (const id of gone) {
        const r = this.routes.get(id)!;
        if (r.compiled.table !== t) continue;
        const owned = ownedRuleCommentPrefix(id);
        for (const lr of listed) if (typeof lr.comment === 'string' && lr.comment.startsWith(owned)) cmds.push(x.cmd.delete({ rule: { family: 'inet', table: t, chain: lr.chain, handle: lr.handle } }));
        for (const s of r.compiled.sets) if (!keep.has(`${t}/${s.name}`)) setsAfter.push(x.cmd.delete({ set: { family: 'inet', table: t, name: s.name } }));
      }
      for (const { p } of order) {
        if (p.compiled.table !== t) continue;
        // Only rules of a route with a lower priority can be anchors: without one, nothing to scan.
        const lower = [...this.routes.values()].some((r) => !gone.has(r.compiled.id) && r.compiled.priority < p.compiled.priority);
        cmds.push(...placeRules(p.compiled, lower ? listed : [], prio, gone));
      }
    }
    if (this.o.fastPath.enabled) {
      for (const t of tables) {
        const after = [...[...this.routes.values()].filter((r) => !gone.has(r.compiled.id)), ...adding].filter((r) => r.compiled.table === t);
        setsAfter.push(...this.o.fastPath.refresh(t, after.map((r) => ({ id: r.compiled.id, matches: r.compiled.offloadMatches }))));
      }
    }
    const lnet = await this.localnet(adding.some((p) => p.compiled.usesRouteLocalnet));
    if (lnet.err) return Err(lnet.val);
    const plan = emptyPlan(this.o.owner, this.o.netns);
    plan.tables = [...tables].map((name) => ({ family: 'inet', name }));
    plan.nft = [...cmds, ...setsAfter];
    // One atomic batch and nothing after it (no steps, no snapshot, so no later phase can fail):
    // a route change is in force entirely or not at all. nft echoes it, which keeps the handles.
    // Off the event loop (libnftables thread, else an nft process): nft reads the whole route table first
    // (nft 1.0.x), and a proxy's event loop must not wait for it.
    const r = await submit(plan, { echo: true, inProcess: false });
    if (r.err) {
      for (const t of tables) this.known.delete(t);
      // What this core kept may be stale (the table changed behind its back): build it again from a listing.
      if (usedKnown && failedAtStaleHandle(r.val)) return this.change(remove, add, true);
      return Err(r.val);
    }
    for (const t of tables) {
      const next = applyEcho(before.get(t) ?? [], t, plan.nft, r.val.echo, CHAIN_SET);
      if (next) this.known.set(t, next);
      else this.known.delete(t);
    }
    for (const t of tables) this.tables.add(t);
    for (const id of gone) this.routes.delete(id);
    const extra = this.settingsKey();
    for (const p of adding) {
      const key = routeKey(p.route, extra);
      this.routes.set(p.compiled.id, { route: p.route, compiled: p.compiled, prepared: key === undefined ? undefined : { key, norm: p.norm } });
    }
    return Ok(undefined);
  }

  /** Set route_localnet=1 in the namespace when a route needs it (remembering the old value for stop()). */
  private async localnet(needed: boolean): Promise<Result<void, NetfenceError>> {
    if (!needed || this.localnetBefore !== undefined) return Ok(undefined);
    const key = 'net.ipv4.conf.all.route_localnet';
    const cur = await run(['sysctl', '-n', key], { netns: this.o.netns, what: `read ${key}` });
    if (cur.err) return Err(cur.val);
    const before = cur.val.stdout.trim();
    if (before !== '1') {
      const w = await run(['sysctl', '-q', '-w', `${key}=1`], { netns: this.o.netns, what: `set ${key}=1` });
      if (w.err) return Err(w.val);
    }
    this.localnetBefore = before;
    return Ok(undefined);
  }

  /**
   * Make the provisioned routes be exactly `routes` (those this manager
   * handles, enabled), in one transaction: routes are paired by name (else
   * by id), as SmartProxy's updateRoutes pairs them; unchanged routes are not
   * touched.
   */
  async sync(routes: readonly IRouteConfig[]): Promise<Result<SyncSummary, NetfenceError>> {
    if (!Array.isArray(routes)) return Err(new ValidationError('syncRoutes', [{ path: 'routes', message: 'must be an array of routes' }]));
    const prepared: Extract<Prepared, { kind: 'route' }>[] = [];
    const seen = new Map<string, number>();
    // A route equal to a provisioned one (same data, same settings) is not prepared again:
    // normalizing and compiling 1,000 routes costs more than the nft transaction.
    const extra = this.settingsKey();
    const byKey = new Map<string, Extract<Prepared, { kind: 'route' }>>();
    for (const p of this.routes.values()) if (p.prepared) byKey.set(p.prepared.key, { kind: 'route', route: p.route, norm: p.prepared.norm, compiled: p.compiled });
    for (const [i, route] of routes.entries()) {
      const key = routeKey(route, extra);
      const again = key === undefined ? undefined : byKey.get(key);
      const p: Result<Prepared, NetfenceError> = again ? Ok({ ...again, route }) : await this.prepare(route);
      if (p.err) return Err(p.val);
      if (p.val.kind === 'skip' || !p.val.compiled.enabled) continue;
      const id = p.val.compiled.id;
      if (seen.has(id)) return Err(new ValidationError('syncRoutes', [{ path: `routes.${i}`, message: `has the same name and match as routes.${seen.get(id)} (one route id)` }]));
      seen.set(id, i);
      prepared.push(p.val);
    }
    const summary: SyncSummary = { added: [], updated: [], removed: [], unchanged: [] };
    const keyOf = (r: IRouteConfig, id: string) => (typeof r.name === 'string' ? `name:${r.name}` : `id:${id}`);
    const current = new Map([...this.routes.entries()].map(([id, p]) => [keyOf(p.route, id), id]));
    const remove: string[] = [];
    const add: typeof prepared = [];
    const paired = new Set<string>();
    for (const p of prepared) {
      const old = current.get(keyOf(p.route, p.compiled.id)) ?? (this.routes.has(p.compiled.id) ? p.compiled.id : undefined);
      if (old !== undefined && !paired.has(old)) {
        paired.add(old);
        const o = this.routes.get(old)!;
        if (old === p.compiled.id && o.compiled.digest === p.compiled.digest && o.compiled.table === p.compiled.table) {
          summary.unchanged.push(old);
          continue;
        }
        remove.push(old);
        summary.updated.push(p.compiled.id);
      } else summary.added.push(p.compiled.id);
      add.push(p);
    }
    for (const id of this.routes.keys()) if (!paired.has(id) && !add.some((p) => p.compiled.id === id)) {
      remove.push(id);
      summary.removed.push(id);
    }
    if (remove.length === 0 && add.length === 0) return Ok(summary);
    const r = await this.change(remove, add);
    return r.err ? Err(r.val) : Ok(summary);
  }

  /** The listed rules of every table in use. */
  async listed(): Promise<Result<Map<string, ListedRule[]>, NetfenceError>> {
    const out = new Map<string, ListedRule[]>();
    for (const t of new Set([...this.routes.values()].map((r) => r.compiled.table))) {
      const l = await listRules(this.o.netns, 'inet', t, CHAIN_NAMES);
      if (l.err) return Err(l.val);
      out.set(t, l.val);
    }
    return Ok(out);
  }

  /** Remove every table this core created (one transaction) and restore route_localnet. */
  async stop(): Promise<Result<void, NetfenceError>> {
    const tables: TableRef[] = [...new Set([...this.tables, ...[...this.routes.values()].map((r) => r.compiled.table)])].map((name) => ({ family: 'inet', name }));
    if (tables.length > 0) {
      const r = await destroyTables(tables, this.o.netns, this.o.owner);
      if (r.err) return Err(r.val);
    }
    this.routes.clear();
    this.tables.clear();
    this.known.clear();
    if (this.localnetBefore !== undefined && this.localnetBefore !== '1') {
      const v = /^\d+$/.test(this.localnetBefore) ? this.localnetBefore : '0';
      const w = await run(['sysctl', '-q', '-w', `net.ipv4.conf.all.route_localnet=${v}`], { netns: this.o.netns, what: 'restore route_localnet' });
      if (w.err) return Err(w.val);
    }
    this.localnetBefore = undefined;
    return Ok(undefined);
  }
}

/** The chosen target's addresses per family: literals, and names from `resolved`; a message when a name is missing. */
function literalOrGiven(norm: NormalizedRoute, resolved: Record<string, string[]>): TargetAddresses | string {
  const out: TargetAddresses = { ipv4: [], ipv6: [] };
  for (const h of norm.hosts) {
    const list = isIPv4(h) || isIPv6(h) ? [h] : resolved[h];
    if (!list) return `host name ${JSON.stringify(h)} is resolved at provision time; compile() needs its addresses`;
    for (const a of list) {
      const fam = isIPv4(a) ? out.ipv4 : out.ipv6;
      if (!fam.includes(a)) fam.push(a);
    }
  }
  return out;
}
