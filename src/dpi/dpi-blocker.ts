/**
 * DpiBlocker: inline BitTorrent detection and blocking on a router.
 *
 * Layers: host facts (capability report, iptables-nft's `filter` tables as
 * found) → {@link DpiBlocker.compile} (pure) → a {@link Plan} → the plan
 * executor (`apply()` of src/plan/executor.ts: one transaction inside the
 * namespace lock, journaled once, undone by `rollback()` or, after a crash,
 * by `reconcile()`). `apply()` binds the queues with worker processes that
 * run the DPI engine ({@link createPacketHandler} in `blocker-handler.ts`)
 * before the rules exist; `destroy()` rolls the rules back first, then closes
 * the queues. Detections are emitted as `detection` events (and through
 * {@link DpiBlocker.detections}); detected peers go to the blocklist with a TTL.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectCapabilities } from '../capabilities/index.js';
import { fromZodIssues, NetfenceError, type UnsupportedError, type ValidationError } from '../errors.js';
import { apply as applyPlan, type AppliedPlan } from '../plan/executor.js';
import { faultAt } from '../plan/faults.js';
import type { Plan } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { compileDpiBlocker, steeringForm } from './blocker-compile.js';
import { COUNTERS_FLUSH, zeroHandlerCounters, type DpiHandlerCounters, type DpiHandlerDetection, type DpiHandlerSettled } from './blocker-handler.js';
import { DpiBlockerOptionsSchema, peerCacheOptions, type DpiBlockerOptions, type DpiBlockerSettings } from './blocker-options.js';
import type { Detection, DpiBlockerCompiled, DpiBlockerEvents, DpiBlockerStats, DpiHostFacts, DpiPeerCacheStats } from './blocker-types.js';
import { DetectionFeed } from './detection-feed.js';
import { openQueues, type QueueHandle } from './nfqueue/queues.js';
import { MainPeerSync } from './peer-sync.js';
import { readXtablesFilter } from './scaffolding.js';
import { SettledServices } from './settled-services.js';
import { SteeringSchema } from './steering.js';

export type { DetectionBlocklist, DpiBlockerOptions, DpiBlockerSettings, DpiClassifierSpec } from './blocker-options.js';
export { DpiBlockerOptionsSchema } from './blocker-options.js';
export type { Detection, DpiBlockerCompiled, DpiBlockerEvents, DpiBlockerStats, DpiHostFacts, DpiPeerCacheStats } from './blocker-types.js';
export type { SettledServicesStats } from './settled-services.js';

/**
 * The handler module the workers load: `blocker-handler.ts` next to this file
 * when running from sources, `dpi-handler.js` of the build otherwise.
 */
export function dpiHandlerPath(): string {
  const here = fileURLToPath(import.meta.url);
  const dir = dirname(here);
  if (here.endsWith('.ts')) return join(dir, 'blocker-handler.ts');
  for (const name of ['dpi-handler.js', 'dpi-handler.mjs']) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new NetfenceError('NO_DPI_HANDLER', `dpi handler entry not found next to ${here}`, {
    hint: 'the package build must include the entry `dpi-handler: src/dpi/blocker-handler.ts`',
  });
}


/**
 * Inline BitTorrent (or custom) detection and blocking over NFQUEUE.
 *
 * @example
 * ```ts
 * const dpi = new DpiBlocker({ netns: 'router', blocklist: xdp, blockTtlMs: 600_000 });
 * (await dpi.apply()).unwrap();
 * dpi.on('detection', (d) => console.log(d.flow, d.reason, d.infoHash));
 * for await (const d of dpi.detections()) console.log(d.reason);  // ends at destroy()
 * console.log((await dpi.stats()).unwrap());
 * await dpi.destroy();
 * ```
 */
export class DpiBlocker extends EventEmitter<DpiBlockerEvents> {
  /** The options as given. */
  readonly options: Readonly<DpiBlockerOptions>;
  /** The options validated, defaults filled in. */
  private readonly settings: DpiBlockerSettings;
  private applied: AppliedPlan | undefined;
  private handle: QueueHandle | undefined;
  private steering: 'nft' | 'xtables' | undefined;
  /**
   * Owner of the steering plan: one per blocker instance, so a second blocker
   * of the same name in the namespace is refused ("owned by another owner")
   * instead of adding its rules to the first one's chains.
   */
  private readonly owner = `dpi:${process.pid}.${randomBytes(4).toString('hex')}`;
  private readonly counters = new Map<number, DpiHandlerCounters>();
  private blocklisted = 0;
  private blocklistErrors = 0;
  private workerExits = 0;
  /** Detections by `classifier\0detection\0action` (for {@link stats}' `detectionsBy`). */
  private readonly detectionTally = new Map<string, number>();
  private failOpen: boolean | undefined;
  private state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle';
  private readonly feed = new DetectionFeed<Detection>();
  private readonly pendingBlocks = new Set<Promise<void>>();
  /** The one peer cache of this blocker (kept across destroy()/apply()) and the relay that keeps the workers' replicas in step. */
  private readonly peers: MainPeerSync | undefined;
  private settled: SettledServices | undefined;

  /** Throws a {@link ValidationError} on invalid options (a programming error); nothing touches the host before {@link apply}. */
  constructor(options: DpiBlockerOptions = {}) {
    super();
    const parsed = DpiBlockerOptionsSchema.safeParse(options);
    if (!parsed.success) throw fromZodIssues('DpiBlocker options', parsed.error.issues);
    this.options = { ...options };
    this.settings = parsed.data;
    const pc = this.settings.peerCache;
    this.peers =
      pc === false
        ? undefined
        : new MainPeerSync(
            peerCacheOptions(pc),
            (queue, data) => this.handle?.post(queue, data) ?? 0,
            () => [...(this.handle?.pids() ?? [])].flatMap(([q, pid]) => (pid === undefined ? [] : [q])),
          );
  }

  /**
   * Compile the steering plan and the workers' options (pure, no I/O). `facts`
   * are what `apply()` gathers from the host (see {@link DpiHostFacts}); a
   * boolean is short for `{ nftQueue }`: a kernel with or without the nft queue
   * statement.
   */
  compile(facts: DpiHostFacts | boolean): Result<DpiBlockerCompiled, ValidationError | UnsupportedError> {
    return compileDpiBlocker(this.settings, this.owner, typeof facts === 'boolean' ? { nftQueue: facts } : facts);
  }

  /** The host facts for {@link compile} (reads only): the capability report (when `nftQueue` is `auto`), then, for the xtables form, iptables-nft's `filter` tables. */
  async hostFacts(): Promise<Result<DpiHostFacts, NetfenceError>> {
    const o = this.settings;
    const facts: DpiHostFacts = {};
    if (o.nftQueue === 'auto') {
      try {
        facts.capabilities = await detectCapabilities({ netns: o.netns });
      } catch (e) {
        return Err(e instanceof NetfenceError ? e : new NetfenceError('DPI_CAPABILITIES', `capability detection failed: ${String(e)}`, { cause: e }));
      }
    }
    const form = steeringForm(o, facts);
    if (form.err) return form;
    // the families the rules will cover (the steering schema holds the default)
    if (form.val === 'xtables') {
      const filter = await readXtablesFilter(o.netns, SteeringSchema.shape.families.parse(o.families));
      if (filter.err) return filter;
      facts.xtablesFilter = filter.val;
    }
    return Ok(facts);
  }

  /**
   * Gather the host facts, compile, bind the queues (worker processes running
   * the classifiers), then apply the steering plan through the executor. On
   * any failure everything started so far is undone and the error returned.
   */
  async apply(): Promise<Result<void, NetfenceError>> {
    if (this.state !== 'idle' && this.state !== 'stopped') return Err(new NetfenceError('DPI_STATE', `DpiBlocker cannot start: it is ${this.state}`));
    this.state = 'starting';
    this.counters.clear();
    this.detectionTally.clear();
    this.handle = undefined;
    const fail = async (e: NetfenceError): Promise<Result<void, NetfenceError>> => {
      if (this.handle) await this.handle.close();
      this.handle = undefined;
      this.state = 'idle';
      return Err(e);
    };
    const facts = await this.hostFacts();
    if (facts.err) return fail(facts.val);
    const compiled = this.compile(facts.val);
    if (compiled.err) return fail(compiled.val);
    const { queues, failOpen, handlerOptions, steering } = compiled.val;
    this.steering = steering;
    this.failOpen = failOpen;
    let handlerModule: string;
    try {
      handlerModule = dpiHandlerPath();
    } catch (e) {
      return fail(e as NetfenceError);
    }
    if (faultAt('dpi-queues')) return fail(new NetfenceError('FAULT_INJECTED', 'opening the queues failed: fault injected'));
    const o = this.settings;
    // conntrack attributes where the kernel gives them (direction, connection id): SYNs then stay in the kernel
    const h = await openQueues({ netns: o.netns, queues, failOpen, handlerModule, handlerOptions, marks: o.marks, startTimeoutMs: o.startTimeoutMs, maxLen: o.queueMaxLen, conntrack: 'auto' });
    if (h.err) return fail(h.val);
    this.handle = h.val;
    // the same compile with what the bound queues told (pure; only the SYN steering differs)
    const final = h.val.conntrack ? this.compile({ ...facts.val, queueConntrack: true }) : compiled;
    if (final.err) return fail(final.val);
    const plan = final.val.plan;
    const settle = final.val.handlerOptions.settleServices;
    this.settled =
      settle && o.settleServices
        ? new SettledServices({
            name: o.name ?? 'dpi',
            netns: o.netns,
            owner: this.owner,
            ttlSeconds: settle.ttlSeconds,
            maxEntries: o.settleServices.maxEntries,
            onError: (e) => this.emit('warning', new NetfenceError('DPI_SETTLE', `settled services: ${e.message}`, { cause: e })),
          })
        : undefined;
    h.val.on('event', ({ queue, data }) => this.onWorkerEvent(queue, data));
    h.val.on('warning', (e) => this.emit('warning', e));
    h.val.on('exit', ({ queue, code, signal, expected }) => {
      this.peers?.workerGone(queue);
      if (expected) return;
      this.workerExits++;
      this.emit('worker-exit', { queue, code, signal });
    });
    // whileAlive: the rules' readers are this process's workers, so the executor's journal entry
    // stays until destroy(); reconcile() takes the rules back if this process dies.
    // the workers start from the blocker's cache and share additions from now on (before the rules send them packets)
    this.peers?.hello(Date.now() / 1000);
    const a = await applyPlan(plan, { whileAlive: true });
    if (a.err) return fail(a.val);
    this.applied = a.val;
    this.state = 'running';
    return Ok(undefined);
  }

  /** @deprecated Use {@link DpiBlocker.apply}. */
  start(): Promise<Result<void, NetfenceError>> {
    return this.apply();
  }

  /**
   * Roll back every rule apply() added (through the executor, scaffolding
   * iptables-nft created included), then close the queues; ends the detection
   * iterators. Safe to call twice; apply() may be called again after.
   */
  async destroy(): Promise<Result<void, NetfenceError>> {
    if (this.state !== 'running') return Ok(undefined);
    this.state = 'stopping';
    // Rules first: with the readers gone and fail-closed, steered packets would be dropped meanwhile.
    let err: NetfenceError | undefined;
    await this.settled?.close();
    if (this.applied) {
      const r = await this.applied.rollback();
      if (r.err) err = r.val;
      this.applied = undefined;
    }
    if (this.handle) await this.handle.close();
    await Promise.all([...this.pendingBlocks]);
    this.state = 'stopped';
    this.feed.end();
    return err ? Err(err) : Ok(undefined);
  }

  /** @deprecated Use {@link DpiBlocker.destroy}. */
  stop(): Promise<Result<void, NetfenceError>> {
    return this.destroy();
  }

  /** Worker process ids by queue (undefined once exited); empty before apply(). */
  pids(): Map<number, number | undefined> {
    return this.handle?.pids() ?? new Map();
  }

  /** The rules' plan in effect (undefined when not running). */
  get plan(): Plan | undefined {
    return this.applied?.plan;
  }

  /**
   * Queue and engine counters. The workers are asked to send their engine
   * counters before they answer, so both are current.
   */
  async stats(): Promise<Result<DpiBlockerStats, NetfenceError>> {
    let queues: DpiBlockerStats['queues'] = [];
    try {
      if (this.handle) {
        // the workers send their engine counters before answering (one channel each, in order)
        this.handle.post('all', { kind: COUNTERS_FLUSH });
        queues = await this.handle.stats();
      }
    } catch (e) {
      return Err(e instanceof NetfenceError ? e : new NetfenceError('QUEUE_WORKER', `reading the queue statistics failed: ${String(e)}`, { cause: e }));
    }
    const sum = zeroHandlerCounters();
    for (const c of this.counters.values()) for (const k of Object.keys(sum) as (keyof DpiHandlerCounters)[]) sum[k] += c[k] ?? 0;
    return Ok({
      running: this.state === 'running',
      steering: this.steering,
      flowsSeen: sum.flows,
      detections: sum.detections,
      bypassed: sum.benign,
      dropped: sum.dropped,
      packetsInspected: sum.packets,
      cacheHits: sum.cacheHits,
      peerCache: this.peerCacheStats(sum),
      blocklisted: this.blocklisted,
      blocklistErrors: this.blocklistErrors,
      workerExits: this.workerExits,
      queues,
      engines: [...this.counters].map(([queue, counters]) => ({ queue, counters: { ...counters } })),
      detectionsBy: [...this.detectionTally].map(([k, count]) => {
        const [classifier = '', detection = '', action] = k.split('\0');
        return { classifier, detection, action: action === 'monitored' ? 'monitored' : 'dropped', count };
      }),
      failOpen: this.failOpen,
      settledServices: this.settled?.stats(),
    });
  }

  /**
   * Detections as an async iterator, from now on; it ends when the blocker
   * is destroyed. Each iterator buffers what its consumer has not read yet.
   */
  detections(): AsyncIterableIterator<Detection> {
    return this.feed.iterator(this.state === 'stopped');
  }

  private peerCacheStats(sum: DpiHandlerCounters): DpiPeerCacheStats | undefined {
    if (!this.peers) return undefined;
    const c = this.peers.cache;
    c.prune(Date.now() / 1000);
    const s = c.snapshot();
    return {
      size: s.size,
      learnt: s.learntSize,
      maxEntries: s.maxEntries,
      maxLearnt: s.maxLearnt,
      ttlMs: s.ttlSeconds * 1000,
      learntTtlMs: s.learntTtlSeconds * 1000,
      added: s.adds,
      learntAdded: s.learnt,
      evictions: s.evictions,
      hits: sum.cacheHits,
      learntHits: sum.learntHits,
      syncTimeouts: sum.peerSyncTimeouts,
    };
  }

  private onWorkerEvent(queue: number, data: unknown): void {
    const m = data as { kind?: string };
    if (this.settled) {
      // a settled endpoint that turns out to be a BitTorrent peer is inspected again from its next connection
      if (m?.kind === 'peers') this.settled.forget((data as { records: { addr: string; port: number }[] }).records);
      else if (m?.kind === 'detection') this.settled.forget([(data as DpiHandlerDetection).server]);
      else if (m?.kind === 'settled') {
        const w = data as DpiHandlerSettled;
        // the main cache holds every worker's peers: one another worker learnt may not have reached this one yet
        if (!this.peers?.cache.has(w, Date.now() / 1000)) this.settled.offer({ family: w.family, transport: w.transport, addr: w.addr, port: w.port });
        return;
      }
    }
    if (this.peers?.onEvent(queue, data)) return;
    if (m?.kind === 'counters') {
      this.counters.set(queue, { ...zeroHandlerCounters(), ...(data as { counters: DpiHandlerCounters }).counters });
      return;
    }
    if (m?.kind !== 'detection') return;
    const w = data as DpiHandlerDetection;
    const o = this.settings;
    const blocked: string[] = [];
    const d: Detection = {
      time: new Date(),
      queue,
      flow: { transport: w.transport, family: w.family, client: w.client, server: w.server },
      reason: w.reason,
      detection: w.detection,
      classifier: w.classifier,
      infoHash: w.infoHash,
      peerId: w.peerId,
      software: w.software,
      atPacket: w.atPacket,
      action: w.monitored ? 'monitored' : 'dropped',
      blocked,
    };
    if (o.blocklist && !w.monitored && w.peers) {
      if (typeof o.blockPeers === 'function') {
        try {
          blocked.push(...o.blockPeers(d));
        } catch (e) {
          this.emit('warning', new NetfenceError('DPI_BLOCKLIST', `blockPeers threw: ${String(e)}`));
        }
      } else {
        blocked.push(w.server.addr);
        if (o.blockPeers === 'both') blocked.push(w.client.addr);
      }
    }
    if (blocked.length && o.blocklist) this.block(o.blocklist, blocked);
    const tally = `${d.classifier ?? ''}\0${d.detection ?? ''}\0${d.action}`;
    this.detectionTally.set(tally, (this.detectionTally.get(tally) ?? 0) + 1);
    this.emit('detection', d);
    this.feed.push(d);
  }

  /** Hand addresses to the blocklist (TTL in seconds, as its `add` takes it); failures are counted and emitted as warnings. */
  private block(blocklist: NonNullable<DpiBlockerSettings['blocklist']>, blocked: string[]): void {
    const p = blocklist
      .add(blocked, { ttl: this.settings.blockTtlMs / 1000 })
      .then(
        (r) => {
          if (r.err) {
            this.blocklistErrors++;
            this.emit('warning', new NetfenceError('DPI_BLOCKLIST', `blocklist add ${blocked.join(', ')} failed: ${String((r.val as Error)?.message ?? r.val)}`));
          } else this.blocklisted += blocked.length;
        },
        (e: unknown) => {
          this.blocklistErrors++;
          this.emit('warning', new NetfenceError('DPI_BLOCKLIST', `blocklist add ${blocked.join(', ')} threw: ${String(e)}`));
        },
      )
      .finally(() => this.pendingBlocks.delete(p));
    this.pendingBlocks.add(p);
  }
}
