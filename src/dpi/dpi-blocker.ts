/**
 * DpiBlocker: inline BitTorrent detection and blocking on a router.
 *
 * `start()` detects what the kernel can do, compiles the steering rules (only
 * the first packets of each flow go to NFQUEUE; benign flows bypass the queue
 * by conntrack mark; flows judged bad are dropped in full), binds the queues
 * with worker processes that run the DPI engine ({@link createPacketHandler}
 * in `blocker-handler.ts`), then applies the rules. `stop()` closes the
 * queues and rolls back every rule it added. Detections are emitted as
 * `detection` events (and through {@link DpiBlocker.detections}); detected
 * peers go to the blocklist with a TTL.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { detectCapabilities } from '../capabilities/index.js';
import { fromZodIssues, NetfenceError, UnsupportedError, type ValidationError } from '../errors.js';
import { apply, type AppliedPlan } from '../plan/executor.js';
import { nftList } from '../host/nft.js';
import { run } from '../host/run.js';
import type { Plan } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { NetnsName, SafePath } from '../validate.js';
import type { ClassifierModuleSpec, DpiHandlerCounters, DpiHandlerDetection, DpiHandlerOptions } from './blocker-handler.js';
import { FlowMarksSchema, type FlowMarks } from './nfqueue/marks.js';
import { openQueues, type QueueHandle, type QueueStats } from './nfqueue/queues.js';
import { compileSteering, type SteeringHook } from './steering.js';
import { faultAt } from '../plan/faults.js';
import { journalBegin, type DpiJournalEntry, type JournalHandle } from '../plan/journal.js';
import type { Endpoint, Transport } from './types.js';

/** The built-in chains iptables-nft creates in table filter on first use. */
const BUILTIN_CHAINS = ['INPUT', 'FORWARD', 'OUTPUT'];

/**
 * Where detected peers go: anything with an `add(entries, { ttl })` returning
 * a Result — an `XdpBlocklist` (XDP fast path or its nft-set fallback), or
 * your own.
 */
export interface DetectionBlocklist {
  /** Add addresses (text form) for `ttl` seconds. */
  add(entries: string[], options?: { ttl?: number }): Promise<Result<unknown, unknown>>;
}

/**
 * A classifier for DpiBlocker. Classifiers run inside the queue worker
 * processes, so they are given as modules, not objects:
 * - `'bittorrent'`: the built-in BitTorrent classifier;
 * - an absolute path (or file: URL) of a module exporting `createClassifier(options)`,
 *   `classifier`, or a default of either — returning a `Classifier` (src/dpi/types.ts);
 * - `{ module, options }`: the same with options for `createClassifier` (structured-cloneable).
 * A flow a classifier judges `bittorrent` is treated as bad (dropped, reported).
 */
export type DpiClassifierSpec = 'bittorrent' | string | ClassifierModuleSpec;

/** Options of {@link DpiBlocker}. */
export interface DpiBlockerOptions {
  /** Network namespace of the router (a name under /run/netns); the current one if undefined. */
  netns?: string | undefined;
  /** Queues `[first, count]`; one worker process per queue (default `[200, min(cores, 4)]`). */
  queues?: [number, number] | undefined;
  /** Hooks to inspect (default `['forward']`: traffic routed through this host). */
  hooks?: SteeringHook[] | undefined;
  /** Report and count detections but accept everything (default false). */
  monitorOnly?: boolean | undefined;
  /** Detected peers are added here (not in monitor-only mode). */
  blocklist?: DetectionBlocklist | undefined;
  /** Seconds a detected peer stays on the blocklist (default 3600). */
  blockTtl?: number | undefined;
  /**
   * Which end of a detected flow is blocked: `responder` (default: the peer that
   * was connected to — on a router, the remote peer of an outgoing connection),
   * `both`, or a function choosing the addresses (e.g. "the end that is not in my
   * customers' prefix" — uTP peers connect in either direction). Only flows where
   * both ends are known BitTorrent peers are blocked (not trackers, DNS or TLS
   * hostname detections).
   */
  blockPeers?: 'responder' | 'both' | ((detection: Detection) => string[]) | undefined;
  /**
   * What happens to the packets that would be inspected when no reader is there
   * (worker died, not started) or the queue is full: accepted (true, default) or dropped (false).
   * Flows already judged keep their treatment either way.
   */
  failOpen?: boolean | undefined;
  /** Classifiers in run order (default `['bittorrent']`). */
  classifiers?: DpiClassifierSpec[] | undefined;
  /** Packets of each flow (both directions, handshake included) that are inspected (default 24). */
  packets?: number | undefined;
  /** Answer later TCP packets of a bad flow with a reset instead of dropping silently (default false). */
  resetBad?: boolean | undefined;
  /** IP families (default both). */
  families?: ('ipv4' | 'ipv6')[] | undefined;
  /** Transports inspected (default tcp and udp). */
  protocols?: ('tcp' | 'udp')[] | undefined;
  /** Use the nft `queue` statement: `auto` (default) asks detectCapabilities; false forces the xtables NFQUEUE form. */
  nftQueue?: boolean | 'auto' | undefined;
  /** Instance name, part of the chain/table name (default `dpi`). */
  name?: string | undefined;
  /** Flow marks shared by rules and readers (default DEFAULT_FLOW_MARKS). */
  marks?: FlowMarks | undefined;
  /** Payload packets per direction inspected before a flow is judged benign (default 10). */
  maxPacketsPerDirection?: number | undefined;
  /** How long to wait for the workers to bind (ms, default 120000: a hang guard). */
  startTimeoutMs?: number | undefined;
  /**
   * Packets each queue may hold waiting for a verdict before the kernel stops
   * queueing (default 4096). Beyond it, packets follow `failOpen`: accepted
   * without inspection, or dropped (counted as `queueDropped` in the queue's
   * kernel statistics).
   */
  queueMaxLen?: number | undefined;
}

/** One flow judged BitTorrent (or bad by a custom classifier). */
export interface Detection {
  /** When the main process learnt of it. */
  time: Date;
  /** Queue (worker) that saw it. */
  queue: number;
  /** The flow's 5-tuple: transport, initiator (client) and responder (server). */
  flow: { transport: Transport; family: 4 | 6; client: Endpoint; server: Endpoint };
  /** Why, e.g. `TCP peer handshake ("BitTorrent protocol")`. */
  reason: string;
  /** Detection family (`handshake`, `utp`, `dht`, `cache`, ...). */
  detection?: string | undefined;
  /** Classifier that decided. */
  classifier?: string | undefined;
  /** Torrent info-hash (40 hex digits) when the packets carried one. */
  infoHash?: string | undefined;
  /** Peer id when seen. */
  peerId?: string | undefined;
  /** Client software when known. */
  software?: string | undefined;
  /** Packets of the flow seen when it was decided. */
  atPacket: number;
  /** `dropped` (this and every later packet of the flow) or `monitored` (monitor-only: let through). */
  action: 'dropped' | 'monitored';
  /** Addresses handed to the blocklist (empty when none). */
  blocked: string[];
}

/** Counters of a {@link DpiBlocker}. */
export interface DpiBlockerStats {
  /** Whether start() succeeded and stop() was not called. */
  running: boolean;
  /** `nft` or `xtables` steering rules. */
  steering: 'nft' | 'xtables' | undefined;
  /** Flows seen by the engines (all workers). */
  flowsSeen: number;
  /** Flows judged BitTorrent. */
  detections: number;
  /** Flows judged benign: they bypass the queue from then on. */
  bypassed: number;
  /** Packets answered `bad` (the rules drop the rest of their flows without queueing them). */
  dropped: number;
  /** Packets inspected by the engines. */
  packetsInspected: number;
  /** Detections answered from the peer endpoint cache. */
  cacheHits: number;
  /** Addresses added to the blocklist. */
  blocklisted: number;
  /** Blocklist additions that failed. */
  blocklistErrors: number;
  /** Workers that exited unexpectedly (traffic then follows `failOpen`). */
  workerExits: number;
  /** Per queue: reader counters and the kernel's statistics. */
  queues: QueueStats[];
}

/** Events of a {@link DpiBlocker}. */
export interface DpiBlockerEvents {
  /** A flow was judged BitTorrent. */
  detection: [Detection];
  /** A worker exited unexpectedly; steered packets now follow `failOpen`. */
  'worker-exit': [{ queue: number; code: number | null; signal: NodeJS.Signals | null }];
  /** A problem that did not stop the blocker (a blocklist add failed, a worker warning). */
  warning: [Error];
}

const ModulePath = SafePath.refine((s) => s === 'bittorrent' || s.startsWith('file:') || isAbsolute(s), "must be 'bittorrent', an absolute path or a file: URL");
const OptionsSchema = z
  .object({
    netns: NetnsName.optional(),
    queues: z.tuple([z.number().int().min(0).max(65535), z.number().int().min(1).max(64)]).optional(),
    hooks: z.array(z.enum(['forward', 'input', 'output'])).min(1).optional(),
    monitorOnly: z.boolean().optional(),
    blocklist: z.custom<DetectionBlocklist>((v) => typeof v === 'object' && v !== null && typeof (v as DetectionBlocklist).add === 'function', 'must have an add(entries, { ttl }) method').optional(),
    blockTtl: z.number().positive().max(10 * 365 * 86400).optional(),
    blockPeers: z.union([z.enum(['responder', 'both']), z.custom<(d: Detection) => string[]>((v) => typeof v === 'function', 'a function')]).optional(),
    failOpen: z.boolean().optional(),
    classifiers: z
      .array(
        z.union([
          ModulePath,
          z.object({ module: ModulePath.refine((s) => s !== 'bittorrent', 'a module path'), options: z.unknown().optional() }).strict(),
          z.custom<never>(() => false, 'classifier objects cannot be passed: classifiers run in the worker processes, give a module path'),
        ]),
      )
      .min(1)
      .optional(),
    packets: z.number().int().min(1).max(1000).optional(),
    resetBad: z.boolean().optional(),
    families: z.array(z.enum(['ipv4', 'ipv6'])).min(1).optional(),
    protocols: z.array(z.enum(['tcp', 'udp'])).min(1).optional(),
    nftQueue: z.union([z.boolean(), z.literal('auto')]).optional(),
    name: z.string().regex(/^[A-Za-z0-9_]{1,16}$/, 'letters, digits and _, at most 16').optional(),
    marks: FlowMarksSchema.optional(),
    maxPacketsPerDirection: z.number().int().min(1).max(1000).optional(),
    startTimeoutMs: z.number().int().min(100).max(600_000).optional(),
    queueMaxLen: z.number().int().min(1).max(1 << 20).optional(),
  })
  .strict();

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

/** What {@link DpiBlocker.compile} produces (pure): the steering plan and the workers' handler options. */
export interface DpiBlockerCompiled {
  /** The steering rules as a plan (apply with `apply()`). */
  plan: Plan;
  /** Queues `[first, count]` the rules steer to and the workers bind. */
  queues: [number, number];
  /** The fail-open choice shared by rules and readers. */
  failOpen: boolean;
  /** What each worker's handler module receives. */
  handlerOptions: DpiHandlerOptions;
}

const zeroCounters = (): DpiHandlerCounters => ({ packets: 0, undecodable: 0, flows: 0, detections: 0, cacheHits: 0, benign: 0, dropped: 0, accepted: 0 });

/**
 * Inline BitTorrent (or custom) detection and blocking over NFQUEUE.
 *
 * @example
 * ```ts
 * const dpi = new DpiBlocker({ netns: 'router', blocklist: xdp, blockTtl: 600 });
 * (await dpi.start()).unwrap();
 * dpi.on('detection', (d) => console.log(d.flow, d.reason, d.infoHash));
 * for await (const d of dpi.detections()) console.log(d.reason);  // ends at stop()
 * console.log(await dpi.stats());
 * await dpi.stop();
 * ```
 */
export class DpiBlocker extends EventEmitter<DpiBlockerEvents> {
  /** Validated options. */
  readonly options: Readonly<DpiBlockerOptions>;
  private applied: AppliedPlan | undefined;
  private handle: QueueHandle | undefined;
  private journal: JournalHandle<DpiJournalEntry> | undefined;
  private steering: 'nft' | 'xtables' | undefined;
  /** What iptables-nft created on first use at start(): `filter` tables and built-in chains that did not exist before. */
  private scaffolding: { family: 'ip' | 'ip6'; table: boolean; chains: string[] }[] = [];
  /**
   * Owner of the steering table (nft form): one per blocker instance, so a
   * second blocker of the same name in the namespace is refused ("owned by
   * another owner") instead of adding its rules to the first one's chains.
   */
  private readonly owner = `dpi:${process.pid}.${randomBytes(4).toString('hex')}`;
  private readonly counters = new Map<number, DpiHandlerCounters>();
  private blocklisted = 0;
  private blocklistErrors = 0;
  private workerExits = 0;
  private state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle';
  private readonly iterators = new Set<{ push(d: Detection | undefined): void }>();
  private readonly pendingBlocks = new Set<Promise<void>>();

  /** Throws a {@link ValidationError} on invalid options (a programming error); nothing touches the host before {@link start}. */
  constructor(options: DpiBlockerOptions = {}) {
    super();
    const parsed = OptionsSchema.safeParse(options);
    if (!parsed.success) throw fromZodIssues('DpiBlocker options', parsed.error.issues);
    this.options = { ...options };
  }

  /** Compile the steering plan and handler options for a kernel with (`nftQueue`) or without the nft queue statement. Pure. */
  compile(nftQueue: boolean): Result<DpiBlockerCompiled, ValidationError> {
    const o = this.options;
    const queues: [number, number] = o.queues ?? [200, Math.max(1, Math.min(availableParallelism(), 4))];
    const failOpen = o.failOpen ?? true;
    const plan = compileSteering({
      netns: o.netns,
      owner: this.owner,
      name: o.name,
      queues,
      hooks: o.hooks,
      families: o.families,
      protocols: o.protocols,
      failOpen,
      packets: o.packets ?? 24,
      resetBad: o.resetBad,
      marks: o.marks,
      nftQueue,
    });
    if (plan.err) return plan;
    const classifiers = (o.classifiers ?? ['bittorrent']).map((c) => (typeof c === 'string' ? (c === 'bittorrent' ? 'bittorrent' : { module: c }) : c)) as DpiHandlerOptions['classifiers'];
    return Ok({
      plan: plan.val,
      queues,
      failOpen,
      handlerOptions: { monitorOnly: o.monitorOnly ?? false, classifiers, maxPacketsPerDirection: o.maxPacketsPerDirection },
    });
  }

  /**
   * Detect capabilities, bind the queues (worker processes running the
   * classifiers), then apply the steering rules. On any failure everything
   * started so far is undone and the error returned.
   */
  async start(): Promise<Result<void, NetfenceError | ValidationError>> {
    if (this.state !== 'idle' && this.state !== 'stopped') return Err(new NetfenceError('DPI_STATE', `DpiBlocker cannot start: it is ${this.state}`));
    this.state = 'starting';
    this.counters.clear();
    this.handle = undefined;
    const fail = async (e: NetfenceError | ValidationError): Promise<Result<void, NetfenceError | ValidationError>> => {
      if (this.handle) await this.handle.close();
      this.handle = undefined;
      if (this.applied) await this.applied.rollback();
      this.applied = undefined;
      await this.removeScaffolding();
      this.journal?.remove();
      this.journal = undefined;
      this.state = 'idle';
      return Err(e);
    };
    const o = this.options;
    let nftQueue: boolean;
    if (o.nftQueue === undefined || o.nftQueue === 'auto') {
      let caps;
      try {
        caps = await detectCapabilities({ netns: o.netns });
      } catch (e) {
        return fail(e instanceof NetfenceError ? e : new NetfenceError('DPI_CAPABILITIES', `capability detection failed: ${String(e)}`, { cause: e }));
      }
      nftQueue = caps.nft.features.queue.available;
      const xt = caps.iptables;
      if (!nftQueue && !xt.nfqueue.available) {
        return fail(
          new UnsupportedError('iptables.nfqueue', `neither the nft queue statement (${caps.nft.features.queue.reason ?? 'missing'}) nor the xtables NFQUEUE target (${xt.nfqueue.reason ?? 'missing'}) is available`, {
            hint: 'install iptables (iptables-nft) or use a kernel with CONFIG_NFT_QUEUE',
          }),
        );
      }
    } else nftQueue = o.nftQueue;
    this.steering = nftQueue ? 'nft' : 'xtables';
    const compiled = this.compile(nftQueue);
    if (compiled.err) return fail(compiled.val);
    const { plan, queues, failOpen, handlerOptions } = compiled.val;
    let handlerModule: string;
    try {
      handlerModule = dpiHandlerPath();
    } catch (e) {
      return fail(e as NetfenceError);
    }
    if (faultAt('dpi-queues')) return fail(new NetfenceError('FAULT_INJECTED', 'opening the queues failed: fault injected'));
    const h = await openQueues({
      netns: o.netns,
      queues,
      failOpen,
      handlerModule,
      handlerOptions,
      marks: o.marks,
      startTimeoutMs: o.startTimeoutMs ?? 120_000,
      maxLen: o.queueMaxLen,
    });
    if (h.err) return fail(h.val);
    this.handle = h.val;
    h.val.on('event', ({ queue, data }) => this.onWorkerEvent(queue, data));
    h.val.on('warning', (e) => this.emit('warning', e));
    h.val.on('exit', ({ queue, code, signal, expected }) => {
      if (expected) return;
      this.workerExits++;
      this.emit('worker-exit', { queue, code, signal });
    });
    // journal: the steering rules and their readers, so reconcile() can remove rules left without a reader
    this.journal = journalBegin<DpiJournalEntry>({
      kind: 'dpi',
      owner: plan.owner,
      netns: plan.netns,
      tables: plan.tables,
      steps: plan.steps,
      queues,
      workerPids: [...h.val.pids().values()].filter((p): p is number => p !== undefined),
    });
    if (!nftQueue) this.scaffolding = await this.missingScaffolding(o.families ?? ['ipv4', 'ipv6']);
    const a = await apply(plan);
    if (a.err) return fail(a.val);
    this.applied = a.val;
    this.state = 'running';
    return Ok(undefined);
  }

  /**
   * Roll back every rule start() added, then close the queues; ends the
   * detection iterators. Safe to call twice; start() may be called again after.
   */
  async stop(): Promise<Result<void, NetfenceError>> {
    if (this.state !== 'running') return Ok(undefined);
    this.state = 'stopping';
    // Rules first: with the readers gone and fail-closed, steered packets would be dropped meanwhile.
    let err: NetfenceError | undefined;
    if (this.applied) {
      const r = await this.applied.rollback();
      if (r.err) err = r.val;
      this.applied = undefined;
    }
    if (!err) {
      const s = await this.removeScaffolding();
      if (s.err) err = s.val;
    }
    if (this.handle) await this.handle.close();
    if (!err) this.journal?.remove();
    this.journal = undefined;
    await Promise.all([...this.pendingBlocks]);
    this.state = 'stopped';
    for (const it of this.iterators) it.push(undefined);
    this.iterators.clear();
    return err ? Err(err) : Ok(undefined);
  }

  /** Which iptables-nft `filter` tables and built-in chains do not exist yet in the blocker's namespace. */
  private async missingScaffolding(families: ('ipv4' | 'ipv6')[]): Promise<{ family: 'ip' | 'ip6'; table: boolean; chains: string[] }[]> {
    const out: { family: 'ip' | 'ip6'; table: boolean; chains: string[] }[] = [];
    for (const f of families) {
      const family = f === 'ipv4' ? 'ip' : 'ip6';
      const l = await nftList(['table', family, 'filter'], { netns: this.options.netns });
      const have = new Set(l.ok ? (l.val.nftables as Record<string, { name?: string }>[]).filter((o) => o.chain).map((o) => o.chain!.name) : []);
      out.push({ family, table: l.err, chains: BUILTIN_CHAINS.filter((c) => !have.has(c)) });
    }
    return out;
  }

  /**
   * iptables-nft creates table `filter` and its built-in chains on first use,
   * and they outlive our chain. Remove what start() caused, once nothing else
   * uses it: a built-in chain only while it is empty (the kernel refuses to
   * delete a chain that holds rules), the table only when it holds nothing but
   * empty built-in chains.
   */
  private async removeScaffolding(): Promise<Result<void, NetfenceError>> {
    const created = this.scaffolding;
    this.scaffolding = [];
    for (const { family, table, chains } of created) {
      const l = await nftList(['table', family, 'filter'], { netns: this.options.netns });
      if (l.err) continue; // gone already
      const objs = l.val.nftables as Record<string, { name?: string; chain?: string }>[];
      const inUse = (c: string): boolean => objs.some((o) => o.rule && o.rule.chain === c);
      const foreign = objs.some((o) => o.rule || o.set || o.map || o.counter || o.quota || o.limit || (o.chain && !BUILTIN_CHAINS.includes(o.chain.name ?? '')));
      const present = (c: string): boolean => objs.some((o) => o.chain && o.chain.name === c);
      const argv =
        table && !foreign
          ? [['nft', 'delete', 'table', family, 'filter']]
          : chains.filter((c) => present(c) && !inUse(c)).map((c) => ['nft', 'delete', 'chain', family, 'filter', c]);
      for (const a of argv) {
        const r = await run(a, { netns: this.options.netns, what: `remove what iptables-nft created for the blocker (${a.slice(2).join(' ')})` });
        if (r.err) return Err(r.val);
      }
    }
    return Ok(undefined);
  }

  /** Worker process ids by queue (undefined once exited); empty before start(). */
  pids(): Map<number, number | undefined> {
    return this.handle?.pids() ?? new Map();
  }

  /** The rules' plan in effect (undefined when not running). */
  get plan(): Plan | undefined {
    return this.applied?.plan;
  }

  /**
   * Queue and engine counters. Engine counters arrive from the workers after
   * each flow decision and at most every 250 ms, so they may lag by that much.
   */
  async stats(): Promise<DpiBlockerStats> {
    const queues = this.handle ? await this.handle.stats() : [];
    const sum = zeroCounters();
    for (const c of this.counters.values()) for (const k of Object.keys(sum) as (keyof DpiHandlerCounters)[]) sum[k] += c[k];
    return {
      running: this.state === 'running',
      steering: this.steering,
      flowsSeen: sum.flows,
      detections: sum.detections,
      bypassed: sum.benign,
      dropped: sum.dropped,
      packetsInspected: sum.packets,
      cacheHits: sum.cacheHits,
      blocklisted: this.blocklisted,
      blocklistErrors: this.blocklistErrors,
      workerExits: this.workerExits,
      queues,
    };
  }

  /**
   * Detections as an async iterator, from now on; it ends when the blocker
   * stops. Each iterator buffers what its consumer has not read yet.
   */
  detections(): AsyncIterableIterator<Detection> {
    const buf: Detection[] = [];
    const waiting: ((r: IteratorResult<Detection>) => void)[] = [];
    let done = this.state === 'stopped';
    const sink = {
      push: (d: Detection | undefined): void => {
        if (d === undefined) {
          done = true;
          for (const w of waiting.splice(0)) w({ value: undefined, done: true });
          return;
        }
        const w = waiting.shift();
        if (w) w({ value: d, done: false });
        else buf.push(d);
      },
    };
    if (!done) this.iterators.add(sink);
    const it: AsyncIterableIterator<Detection> = {
      next: () => {
        const d = buf.shift();
        if (d) return Promise.resolve({ value: d, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => waiting.push(resolve));
      },
      return: () => {
        done = true;
        this.iterators.delete(sink);
        for (const w of waiting.splice(0)) w({ value: undefined, done: true });
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  private onWorkerEvent(queue: number, data: unknown): void {
    const m = data as { kind?: string };
    if (m?.kind === 'counters') {
      this.counters.set(queue, (data as { counters: DpiHandlerCounters }).counters);
      return;
    }
    if (m?.kind !== 'detection') return;
    const w = data as DpiHandlerDetection;
    const o = this.options;
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
    if (blocked.length && o.blocklist) {
      const p = o.blocklist
        .add(blocked, { ttl: o.blockTtl ?? 3600 })
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
    this.emit('detection', d);
    for (const it of this.iterators) it.push(d);
  }
}
