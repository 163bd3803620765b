/**
 * The Throttler: bandwidth limits by interface, address, port, protocol and
 * process, compiled to plans and applied through the executor's transaction.
 *
 * @example
 * ```ts
 * const t = new Throttler({ netns: 'vm1' });
 * const up = await t.limit({ iface: 'eth0', direction: 'egress', rate: '10mbit', match: { dst: '198.18.0.0/15' } });
 * if (up.err) throw up.val;
 * await up.val.update({ rate: '20mbit' });
 * console.log(await up.val.stats());
 * await t.destroy();
 * ```
 * @module
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { ApplyError, fromZodIssues, UnsupportedError, ValidationError, type CommandError } from '../errors.js';
import { hostFiles } from '../host/files.js';
import { apply } from '../plan/executor.js';
import type { Plan } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { SerialQueue } from '../util/serial.js';
import { backendByName, listBackends, selectBackend } from './backends/index.js';
import type { SiteInfo } from './backends/types.js';
import { throttleCaps, type ThrottleCaps } from './caps.js';
import { burstFor, compileLimit, compileRemove, compileUpdate, type CompileContext, type LimitRecord } from './compile.js';
import { cgroup2Mount, readHostFacts } from './facts.js';
import type { LimitError, LimitHandle, ThrottleHostFacts, ThrottlerStats } from './handle.js';
import { readLimitStats } from './read-stats.js';
import {
  LimitSchema,
  ThrottlerOptionsSchema,
  UpdateSchema,
  type BackendInfo,
  type BackendName,
  type LimitRequest,
  type LimitSpec,
  type ThrottleStats,
  type ThrottlerOptions,
  type UpdateRequest,
} from './types.js';

export { PER_PROCESS_NOTE } from './backends/index.js';
export type { BackendInfo, BackendName, LimitRequest, ThrottleStats, ThrottlerOptions, UpdateRequest } from './types.js';
export type { LimitError, LimitHandle, ThrottleHostFacts, ThrottlerStats } from './handle.js';

/** Largest number of limits one Throttler can create (fwmark and prio space). */
export const MAX_LIMITS = 4095;

interface SiteState {
  info: SiteInfo;
  backend: BackendName;
  count: number;
}

interface Entry {
  record: LimitRecord;
  plan: Plan;
}

/**
 * Bandwidth limits for one network namespace (or the current one).
 * One Throttler per namespace and name: it owns the HTB root qdiscs, IFB devices
 * and nft tables (`netfence_throttle_<name>_l<N>`) it creates, and removes them
 * with {@link Throttler.destroy}. State lives in this object: a new process does not
 * know the limits of an earlier one.
 *
 * Vocabulary (as on every netfence class): {@link Throttler.compile} is pure and
 * synchronous, {@link Throttler.limit} applies one limit and returns its handle
 * (removed with {@link LimitHandle.remove} or {@link Throttler.unlimit}),
 * {@link Throttler.stats} reads the counters, {@link Throttler.destroy} removes
 * everything this Throttler put into the kernel.
 */
export class Throttler {
  /** Target network namespace (undefined: the current one). */
  readonly netns: string | undefined;
  /** Name of this throttler. */
  readonly name: string;
  /** Plan owner recorded in its nft tables. */
  readonly owner: string;
  /** @internal */
  protected nextId = 1;
  /** @internal */
  protected readonly sites = new Map<string, SiteState>();
  private readonly entries = new Map<number, Entry>();
  private readonly queue = new SerialQueue();

  /** Throws {@link ValidationError} for invalid options (a programming error). */
  constructor(options?: ThrottlerOptions) {
    const r = ThrottlerOptionsSchema.safeParse(options);
    if (!r.success) throw fromZodIssues('Throttler options', r.error.issues);
    this.netns = r.data.netns;
    this.name = r.data.name;
    this.owner = `throttle:${this.name}`;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }

  /** The capabilities this Throttler decides with. */
  capabilities(): Promise<ThrottleCaps> {
    return throttleCaps(this.netns);
  }

  /**
   * Every backend with its priority, availability on this host and the reason,
   * what it matches and what it cannot do. Note {@link PER_PROCESS_NOTE}: per-process
   * download cannot be shaped with tc; it is policed by nft-limit.
   */
  async listBackends(): Promise<BackendInfo[]> {
    return listBackends(await this.capabilities());
  }

  /** Limits currently in effect. */
  limits(): LimitHandle[] {
    return [...this.entries.values()].map((e) => this.handle(e.record.id));
  }

  /** @internal */
  protected siteKey(backend: BackendName, spec: LimitSpec): string {
    return `${backend}:${spec.direction}:${spec.iface}`;
  }

  private ifbName(iface: string): string {
    return `nfb${createHash('sha1').update(`${this.netns ?? ''}/${this.name}/${iface}`).digest('hex').slice(0, 8)}`;
  }

  /**
   * Read the host facts a limit needs (capabilities, the interface's MTU, the
   * process's cgroup for `match.pid`), checking on the way that the interface,
   * process or cgroup exists. The I/O half of {@link Throttler.limit}; the other
   * half is {@link Throttler.compile}.
   */
  async hostFacts(req: LimitRequest): Promise<Result<ThrottleHostFacts, LimitError>> {
    const parsed = LimitSchema.safeParse(req);
    if (!parsed.success) return Err(fromZodIssues('limit', parsed.error.issues));
    const spec = parsed.data;
    const caps = await this.capabilities();
    const sel = selectBackend(spec, caps);
    if (sel.err) return Err(sel.val);
    return readHostFacts(spec, caps, this.netns);
  }

  /**
   * Validate and select with the given facts: everything the pure compilation needs. No I/O.
   * @internal
   */
  protected prepare(req: LimitRequest, facts: ThrottleHostFacts, id: number): Result<{ spec: LimitSpec; ctx: CompileContext }, LimitError> {
    const parsed = LimitSchema.safeParse(req);
    if (!parsed.success) return Err(fromZodIssues('limit', parsed.error.issues));
    const spec = parsed.data;
    const caps = facts.capabilities;
    const sel = selectBackend(spec, caps);
    if (sel.err) return Err(sel.val);
    const b = sel.val.backend;
    const site: SiteInfo = { iface: spec.iface, direction: spec.direction, ...(b.name === 'ifb-tc' ? { ifb: this.ifbName(spec.iface) } : {}) };
    const existing = this.sites.get(this.siteKey(b.name, spec));
    const ctx: CompileContext = {
      owner: this.owner,
      netns: this.netns,
      table: `netfence_throttle_${this.name}_l${id}`,
      id,
      backend: b,
      reason: sel.val.reason,
      site: existing?.info ?? site,
      siteExists: existing !== undefined && existing.count > 0,
      mtu: facts.mtu,
    };
    const m = spec.match;
    if (m?.pid !== undefined || m?.cgroup !== undefined) {
      const mounted = cgroup2Mount(caps);
      if (mounted.err) return mounted;
      const mount = mounted.val;
      if (m.pid !== undefined) {
        const from = facts.pidCgroup;
        if (from === undefined) return Err(new UnsupportedError('cgroup.v2', `process ${m.pid} has no cgroup v2 membership (no 0:: line in /proc/${m.pid}/cgroup)`));
        ctx.cgroup = { mount, rel: `netfence/${this.name}-${process.pid}-${id}`, create: { pid: m.pid, restoreTo: from.replace(/^\/+/, '') } };
      } else {
        ctx.cgroup = { mount, rel: m.cgroup! };
      }
    }
    return Ok({ spec, ctx });
  }

  /**
   * The plan {@link limit} would apply for `req`, without applying anything
   * (for review, printing or storing). Pure and synchronous: the host facts are
   * passed in (`(await t.hostFacts(req)).unwrap()`, or your own). The limit
   * number in it is a preview, and the plan builds the shared qdisc/IFB only if
   * this Throttler has not built it yet.
   */
  compile(req: LimitRequest, facts: ThrottleHostFacts): Result<Plan, LimitError>;
  /**
   * Reads the host facts itself and returns a Promise.
   * @deprecated pass the host facts: `t.compile(req, (await t.hostFacts(req)).unwrap())`.
   * This one-argument form stays for one minor version.
   */
  compile(req: LimitRequest): Promise<Result<Plan, LimitError>>;
  compile(req: LimitRequest, facts?: ThrottleHostFacts): Result<Plan, LimitError> | Promise<Result<Plan, LimitError>> {
    if (facts === undefined) {
      return this.hostFacts(req).then((f) => (f.err ? Err(f.val) : this.compile(req, f.val)));
    }
    const p = this.prepare(req, facts, this.nextId);
    if (p.err) return Err(p.val);
    return Ok(compileLimit(p.val.spec, p.val.ctx).plan);
  }

  /**
   * Add a limit. Validates the request, picks a backend (or uses the named one,
   * refusing with {@link UnsupportedError} and the reason when it cannot serve),
   * compiles a plan and applies it as one transaction: if anything fails half-way,
   * nothing is left behind ({@link ApplyError}).
   */
  limit(req: LimitRequest): Promise<Result<LimitHandle, LimitError>> {
    return this.serial(async () => {
      if (this.nextId > MAX_LIMITS) return Err(new UnsupportedError('throttle.limits', `a Throttler supports at most ${MAX_LIMITS} limits`));
      const id = this.nextId;
      const facts = await this.hostFacts(req);
      if (facts.err) return Err(facts.val);
      const p = this.prepare(req, facts.val, id);
      if (p.err) return Err(p.val);
      const { spec, ctx } = p.val;
      const { plan, record } = compileLimit(spec, ctx);
      const r = await apply(plan);
      if (r.err) return Err(r.val);
      this.nextId++;
      const key = this.siteKey(ctx.backend.name, spec);
      const s = this.sites.get(key);
      if (s) s.count++;
      else this.sites.set(key, { info: ctx.site, backend: ctx.backend.name, count: 1 });
      this.entries.set(id, { record, plan });
      return Ok(this.handle(id));
    });
  }

  private handle(id: number): LimitHandle {
    const self = this;
    const get = () => this.entries.get(id);
    const first = get()!;
    return {
      id,
      backend: first.record.backend,
      spec: first.record.spec,
      plan: first.plan,
      get rateBps() {
        return get()?.record.rateBps ?? first.record.rateBps;
      },
      get kernelRateBps() {
        return get()?.record.kernelRateBps ?? first.record.kernelRateBps;
      },
      get burst() {
        return get()?.record.burst ?? first.record.burst;
      },
      cgroupDir: first.record.cgroup?.created ? first.record.cgroup.abs : undefined,
      update: (u) => self.serial(() => self.updateLimit(id, u)),
      stats: () => self.statsOf(id),
      remove: () => self.serial(() => self.removeLimit(id)),
    };
  }

  private async updateLimit(id: number, u: UpdateRequest): Promise<Result<void, ValidationError | UnsupportedError | ApplyError>> {
    const e = this.entries.get(id);
    if (!e) return Err(new ValidationError('update', [{ path: '', message: `limit ${id} was removed` }]));
    const parsed = UpdateSchema.safeParse(u);
    if (!parsed.success) return Err(fromZodIssues('update', parsed.error.issues));
    const b = backendByName(e.record.backend);
    if (e.record.kernelRateBps === undefined && !b.policesInNft) return Err(new UnsupportedError(`throttle.${b.name}`, 'this limit has no rate to change'));
    const plan = compileUpdate(e.record, b, this.owner, this.netns, parsed.data.rate, parsed.data.burst);
    const r = await apply(plan);
    if (r.err) return Err(r.val);
    e.record.rateBps = parsed.data.rate;
    e.record.kernelRateBps = Math.round(parsed.data.rate * e.record.factor);
    e.record.burst = burstFor(b, e.record.kernelRateBps, parsed.data.burst);
    return Ok(undefined);
  }

  private async removeLimit(id: number): Promise<Result<void, ApplyError>> {
    const e = this.entries.get(id);
    if (!e) return Ok(undefined);
    const rec = e.record;
    const b = backendByName(rec.backend);
    const key = `${rec.backend}:${rec.site.direction}:${rec.site.iface}`;
    const site = this.sites.get(key);
    const lastOnSite = (site?.count ?? 1) <= 1;
    let pids: number[] = [];
    if (rec.cgroup?.created) {
      let txt = '';
      try {
        txt = hostFiles().read(posix.join(rec.cgroup.abs, 'cgroup.procs'));
      } catch {
        // the group is gone already: no process to move back
      }
      pids = txt.split('\n').filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0);
    }
    const caps = await this.capabilities();
    const plan = compileRemove(rec, b, { owner: this.owner, netns: this.netns, lastOnSite, cgroupMount: caps.cgroup2Mount, pidsInGroup: pids });
    const r = await apply(plan);
    if (r.err) return Err(r.val);
    this.entries.delete(id);
    if (site) {
      site.count--;
      if (site.count <= 0) this.sites.delete(key);
    }
    return Ok(undefined);
  }

  private async statsOf(id: number): Promise<Result<ThrottleStats, CommandError | UnsupportedError>> {
    const e = this.entries.get(id);
    if (!e) return Err(new UnsupportedError('throttle.stats', `limit ${id} was removed`));
    return readLimitStats(e.record, this.netns);
  }

  /**
   * Remove one limit (the same as `handle.remove()`); a limit that is already
   * gone is not an error.
   */
  unlimit(limit: LimitHandle | number): Promise<Result<void, ApplyError>> {
    const id = typeof limit === 'number' ? limit : limit.id;
    return this.serial(() => this.removeLimit(id));
  }

  /** Bytes, packets and drops of every limit in effect, in the order they were made. */
  async stats(): Promise<Result<ThrottlerStats, CommandError | UnsupportedError>> {
    const out: ThrottlerStats = { limits: [] };
    for (const [id, e] of [...this.entries]) {
      const s = await this.statsOf(id);
      if (s.err) {
        if (!this.entries.has(id)) continue; // removed meanwhile
        return Err(s.val);
      }
      out.limits.push({ id, backend: e.record.backend, iface: e.record.spec.iface, direction: e.record.spec.direction, stats: s.val });
    }
    return Ok(out);
  }

  /** Remove every limit this Throttler created (newest first), with their qdiscs, IFB devices, tables and cgroups. */
  destroy(): Promise<Result<void, ApplyError>> {
    return this.serial(async () => {
      const errors: ApplyError[] = [];
      for (const id of [...this.entries.keys()].reverse()) {
        const r = await this.removeLimit(id);
        if (r.err) errors.push(r.val);
      }
      if (errors.length === 0) return Ok(undefined);
      return Err(
        new ApplyError('destroy', `could not remove ${errors.length} limit(s): ${errors.map((e) => e.message.split('\n')[0]).join('; ')}`, {
          restored: errors.every((e) => e.restored),
          restoreErrors: errors,
        }),
      );
    });
  }

  /**
   * Remove every limit this Throttler created.
   * @deprecated use {@link Throttler.destroy} (the same operation; `clear()`
   * means "empty, keep the structure" on the other classes). Stays for one minor version.
   */
  clear(): Promise<Result<void, ApplyError>> {
    return this.destroy();
  }
}
