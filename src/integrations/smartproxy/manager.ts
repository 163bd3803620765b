/**
 * The two route managers, one core:
 * - {@link NFTablesManager}: a drop-in for SmartProxy 21.x's own
 *   (`new NFTablesManager(smartProxy)`, booleans, failures logged and emitted
 *   as `'error'` events carrying the typed error);
 * - {@link NetfenceRouteManager}: netfence's Result-based API (the API that
 *   `NFTablesManager` had before 0.2), in netfence's vocabulary (`compile`
 *   pure, `destroy()` removes everything; `NFTablesManager` keeps SmartProxy's
 *   names, `stop()` included, because it is a drop-in).
 * @module
 */
import { EventEmitter } from 'node:events';
import { NetfenceError, ValidationError } from '../../errors.js';
import { Err, Ok, type Result } from '../../result.js';
import type { CompiledRoute } from './compile.js';
import { RouteCore, type Prepared, type SyncSummary } from './core.js';
import { decideFastPath, NO_FAST_PATH } from './fastpath.js';
import { parseRouteOptions, type ResolvedRouteOptions } from './options.js';
import { routeId } from './normalize.js';
import { routeStatus, smartProxyStatus } from './status.js';
import type { IRouteConfig, NetfenceNfTablesStatus, NetfenceRouteOptions, NFTablesStatus, RouteLogger, SmartProxyLike, SmartProxySettings } from './types.js';

/** Options of {@link NetfenceRouteManager} (the same as `NFTablesManager`'s second argument). */
export type NFTablesManagerOptions = NetfenceRouteOptions;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const NETFENCE_KEYS = ['tableName', 'netns', 'owner', 'routeLocalnet', 'resolve', 'logger', 'fastPath'] as const;

function checkOptions(what: string, options: unknown): ResolvedRouteOptions {
  return parseRouteOptions(what, options);
}

function makeCore(o: ResolvedRouteOptions, engine: 'strict' | 'lenient', preserveSourceIP: () => boolean | undefined): RouteCore {
  return new RouteCore({
    tableName: o.tableName,
    netns: o.netns,
    owner: o.owner,
    engine,
    preserveSourceIP,
    routeLocalnet: o.routeLocalnet,
    resolve: o.resolve,
    fastPath: NO_FAST_PATH,
  });
}

/** Shared by both managers: the fast-path decision (once), then the operations. */
abstract class Base extends EventEmitter {
  /** @internal */
  protected readonly core: RouteCore;
  private ready: Promise<Result<void, NetfenceError>> | undefined;

  protected constructor(
    protected readonly options: ResolvedRouteOptions,
    engine: 'strict' | 'lenient',
    preserveSourceIP: () => boolean | undefined,
  ) {
    super();
    this.core = makeCore(options, engine, preserveSourceIP);
  }

  protected prepareOnce(): Promise<Result<void, NetfenceError>> {
    this.ready ??= decideFastPath(this.options.fastPath ?? 'off', this.options.netns).then((r) => {
      if (r.err) {
        this.ready = undefined; // decided again next time
        return Err(r.val);
      }
      this.core.o.fastPath = r.val;
      return Ok(undefined);
    });
    return this.ready;
  }

  /** Compile a route without touching the kernel (host names need `resolved` addresses). */
  compile(route: IRouteConfig, resolved?: Record<string, string[]>): Result<CompiledRoute, ValidationError> {
    return this.core.compile(route, resolved);
  }

  /** Whether the route (by its id: name and match) is provisioned. */
  isRouteProvisioned(route: IRouteConfig): boolean {
    return this.core.isProvisioned(route);
  }

  protected doProvision(route: IRouteConfig): Promise<Result<{ routeId: string }, NetfenceError>> {
    return this.core.serial(async () => {
      const f = await this.prepareOnce();
      if (f.err) return Err(f.val);
      const p = await this.core.prepare(route);
      if (p.err) return Err(p.val);
      if (p.val.kind === 'skip') return Ok({ routeId: p.val.id });
      const r = await this.core.change([], [p.val]);
      return r.err ? Err(r.val) : Ok({ routeId: p.val.compiled.id });
    });
  }

  protected doDeprovision(route: IRouteConfig): Promise<Result<void, NetfenceError>> {
    return this.core.serial(async () => {
      const id = routeId(route);
      if (!this.core.routes.has(id)) return Ok(undefined);
      return this.core.change([id], []);
    });
  }

  protected doUpdate(oldRoute: IRouteConfig, newRoute: IRouteConfig): Promise<Result<{ routeId: string }, NetfenceError>> {
    return this.core.serial(async () => {
      const f = await this.prepareOnce();
      if (f.err) return Err(f.val);
      const p: Result<Prepared, NetfenceError> = await this.core.prepare(newRoute);
      if (p.err) return Err(p.val);
      const oldId = routeId(oldRoute);
      const remove = this.core.routes.has(oldId) ? [oldId] : [];
      const add = p.val.kind === 'route' ? [p.val] : [];
      const r = await this.core.change(remove, add);
      return r.err ? Err(r.val) : Ok({ routeId: p.val.kind === 'route' ? p.val.compiled.id : p.val.id });
    });
  }

  protected doSync(routes: readonly IRouteConfig[]): Promise<Result<SyncSummary, NetfenceError>> {
    return this.core.serial(async () => {
      const f = await this.prepareOnce();
      if (f.err) return Err(f.val);
      return this.core.sync(routes);
    });
  }

  protected doStop(): Promise<Result<void, NetfenceError>> {
    return this.core.serial(() => this.core.stop());
  }
}

/**
 * netfence's route manager with `Result` values (the API `NFTablesManager`
 * had before): provision, deprovision, update and sync routes as kernel NAT
 * rules, one transaction each.
 */
export class NetfenceRouteManager extends Base {
  /** Invalid options throw a {@link ValidationError}. Routes without `forwardingEngine` are taken as nftables routes; `'node'` is refused. */
  constructor(options: NetfenceRouteOptions = {}) {
    super(checkOptions('NetfenceRouteManager options', options), 'lenient', () => undefined);
  }

  /** Install a route's rules (one transaction). Provisioning an already provisioned route replaces it. */
  provisionRoute(route: IRouteConfig): Promise<Result<{ routeId: string }, NetfenceError>> {
    return this.doProvision(route);
  }

  /** Remove a route's rules and sets (one transaction). Unknown routes are a no-op. */
  deprovisionRoute(route: IRouteConfig): Promise<Result<void, NetfenceError>> {
    return this.doDeprovision(route);
  }

  /** Replace `oldRoute` by `newRoute` in ONE transaction: no instant with neither; other routes untouched. */
  updateRoute(oldRoute: IRouteConfig, newRoute: IRouteConfig): Promise<Result<{ routeId: string }, NetfenceError>> {
    return this.doUpdate(oldRoute, newRoute);
  }

  /** Make the provisioned routes exactly `routes` (paired by name), in one transaction; unchanged routes are not touched. */
  syncRoutes(routes: readonly IRouteConfig[]): Promise<Result<SyncSummary, NetfenceError>> {
    return this.doSync(routes);
  }

  /**
   * Per route: packets, bytes, the rules in force, the target addresses in force.
   * @deprecated use {@link stats} (same result; the name every class uses).
   */
  getStatus(): Promise<Result<NFTablesStatus, NetfenceError>> {
    return this.stats();
  }

  /** Per route: packets, bytes, the rules in force, the target addresses in force. */
  async stats(): Promise<Result<NFTablesStatus, NetfenceError>> {
    const l = await this.core.listed();
    if (l.err) return Err(l.val);
    const out: NFTablesStatus = {};
    for (const [id, p] of this.core.routes) out[id] = routeStatus(id, p, l.val.get(p.compiled.table) ?? []);
    return Ok(out);
  }

  /** Remove every table this manager provisioned (one transaction): everything it put into the kernel. */
  destroy(): Promise<Result<void, NetfenceError>> {
    return this.doStop();
  }

  /**
   * Remove every table this manager provisioned.
   * @deprecated use {@link NetfenceRouteManager.destroy} (the same operation, the
   * name every netfence class uses). Stays for one minor version.
   */
  stop(): Promise<Result<void, NetfenceError>> {
    return this.destroy();
  }
}

/**
 * SmartProxy's `NFTablesManager`, implemented with netfence: `new
 * NFTablesManager(smartProxy)` (or its settings), netfence's own options
 * second. Operations resolve to booleans as SmartProxy's do (`true` for routes
 * that do not use the nftables engine); a failure is logged and emitted as an
 * `'error'` event with the typed error (when someone listens), and kept in
 * {@link NFTablesManager.lastError}.
 */
export class NFTablesManager extends Base {
  /** The last failure, if any. */
  lastError: NetfenceError | undefined;
  private readonly logger: RouteLogger;
  private readonly settings: () => SmartProxySettings;

  constructor(smartProxyOrSettings?: SmartProxyLike | SmartProxySettings, netfenceOptions: NetfenceRouteOptions = {}) {
    const get = settingsOf(smartProxyOrSettings);
    super(checkOptions('NFTablesManager netfence options', netfenceOptions), 'strict', () => {
      const v = get().preserveSourceIP;
      return typeof v === 'boolean' ? v : undefined;
    });
    this.settings = get;
    this.logger = netfenceOptions.logger ?? console;
  }

  private ok<T>(op: string, route: unknown, r: Result<T, NetfenceError>): boolean {
    if (r.ok) {
      if (this.settings().enableDetailedLogging === true) this.logger.info?.(`[netfence] ${op} ${describe(route)}: ok`);
      return true;
    }
    this.lastError = r.val;
    this.logger.error(`[netfence] ${op} ${describe(route)} failed: ${r.val.message}`);
    // An 'error' event without a listener would throw: SmartProxy callers read the boolean.
    if (this.listenerCount('error') > 0) this.emit('error', r.val, op);
    return false;
  }

  /** Provision a route's rules: `true` on success (and for routes not on the nftables engine), `false` otherwise. */
  async provisionRoute(route: IRouteConfig): Promise<boolean> {
    return this.ok('provisionRoute', route, await this.doProvision(route));
  }

  /** Remove a route's rules: `true` on success or when it was not provisioned. */
  async deprovisionRoute(route: IRouteConfig): Promise<boolean> {
    return this.ok('deprovisionRoute', route, await this.doDeprovision(route));
  }

  /** Replace `oldRoute` by `newRoute` in one transaction (SmartProxy's does deprovision then provision). */
  async updateRoute(oldRoute: IRouteConfig, newRoute: IRouteConfig): Promise<boolean> {
    return this.ok('updateRoute', newRoute, await this.doUpdate(oldRoute, newRoute));
  }

  /** What SmartProxy's `updateRoutes()` does to nftables routes (remove, update, add; paired by name), as one transaction. */
  async syncRoutes(routes: readonly IRouteConfig[]): Promise<boolean> {
    return this.ok('syncRoutes', { name: `${Array.isArray(routes) ? routes.length : '?'} routes` }, await this.doSync(routes));
  }

  /** SmartProxy's status per route id, each with netfence's counters and the addresses in force under `netfence`. */
  async getStatus(): Promise<Record<string, NetfenceNfTablesStatus>> {
    const l = await this.core.listed();
    if (l.err) this.ok('getStatus', undefined, l);
    const out: Record<string, NetfenceNfTablesStatus> = {};
    for (const [id, p] of this.core.routes) {
      const listed = l.ok ? (l.val.get(p.compiled.table) ?? []) : [];
      out[id] = smartProxyStatus(routeStatus(id, p, listed), p, listed);
    }
    return out;
  }

  /** Remove every table this manager provisioned. */
  async stop(): Promise<void> {
    this.ok('stop', undefined, await this.doStop());
  }
}

function describe(route: unknown): string {
  if (!isObj(route)) return '';
  return typeof route.name === 'string' ? `route ${route.name}` : typeof route.id === 'string' ? `route ${route.id}` : 'route';
}

/** SmartProxy (its settings read live) or its settings; netfence's options in the first argument are refused. */
function settingsOf(arg: unknown): () => SmartProxySettings {
  if (arg === undefined || arg === null) return () => ({});
  if (typeof arg !== 'object' || Array.isArray(arg)) throw new ValidationError('NFTablesManager', [{ path: 'smartProxy', message: 'must be a SmartProxy instance or its settings' }]);
  const a = arg as Record<string, unknown>;
  if (isObj(a.settings)) return () => (isObj(a.settings) ? (a.settings as SmartProxySettings) : {});
  const wrong = NETFENCE_KEYS.filter((k) => k in a);
  if (wrong.length > 0)
    throw new ValidationError('NFTablesManager', [{ path: wrong[0] as string, message: 'netfence options go in the second argument: new NFTablesManager(smartProxy, { netns, tableName, owner, ... }) (the first is SmartProxy or its settings); NetfenceRouteManager takes them first' }]);
  return () => a as SmartProxySettings;
}
