/**
 * `openQueues()`: bind a range of NFQUEUE numbers, one worker process per
 * queue (so fanout spreads over the cores), inside a network namespace when
 * asked. Packets are decided in the workers by a handler module (fast path)
 * or relayed to an `onPacket` callback in this process; the handle emits
 * events and reports statistics (reader counters and the kernel's own).
 * @module
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { fromZodIssues, NetfenceError, type ValidationError } from '../../errors.js';
import { Err, Ok, type Result } from '../../result.js';
import { startProcess, type SpawnedProcess } from '../../host/spawn.js';
import { NetnsName } from '../../validate.js';
import type { FromWorker, ToWorker, WorkerInit } from './ipc.js';
import { FlowMarksSchema } from './marks.js';
import type { ProcQueueStats } from './proc.js';
import type { QueuedPacket } from './protocol.js';
import type { Decision, ReaderStats } from './reader.js';

/** Options of {@link openQueues}. */
export interface OpenQueuesOptions {
  /** Network namespace (name under /run/netns) where the queues are; the current one if undefined. */
  netns?: string | undefined;
  /** Queues to bind: `[first, count]` — one worker per queue, matching a steering rule's fanout range. */
  queues: [number, number];
  /**
   * When the queue is full: accept (true) or drop (false) further packets (NFQA_CFG_F_FAIL_OPEN).
   * Also the verdict when a handler throws. (When no reader is bound at all, the
   * steering rule's `--queue-bypass` decides; see src/dpi/steering.ts.)
   */
  failOpen: boolean;
  /** Bytes of each packet copied to userspace (default 0xffff). */
  copyRange?: number | undefined;
  /** Kernel queue length per queue (default 4096). */
  maxLen?: number | undefined;
  /** Accept GSO super-packets unsegmented (default true). */
  gso?: boolean | undefined;
  /** Ask for conntrack attributes with each packet (default false; `auto` when supported). */
  conntrack?: boolean | 'auto' | undefined;
  /** Receive buffer per socket in bytes (default 8 MiB). */
  rcvbuf?: number | undefined;
  /** Merge equal verdicts into batch verdicts (default true). */
  batchVerdicts?: boolean | undefined;
  /** Marks shared with the steering rules (default DEFAULT_FLOW_MARKS). */
  marks?: { mask: number; benign: number; bad: number } | undefined;
  /** How benign/bad decisions reach the conntrack mark (default `auto`). */
  connmarkVia?: 'auto' | 'ct' | 'repeat' | undefined;
  /**
   * Decide in this process: each packet crosses IPC to this callback and the
   * decision crosses back (simple, slower). Exclusive with `handlerModule`.
   */
  onPacket?: ((packet: QueuedPacket) => Decision | Promise<Decision>) | undefined;
  /**
   * Decide in the workers: absolute path (or file: URL) of a module exporting a
   * {@link PacketHandlerFactory} as `createPacketHandler` or default. Verdicts never wait for IPC.
   */
  handlerModule?: string | undefined;
  /** Passed to the handler factory as `ctx.options` (structured-cloneable). */
  handlerOptions?: unknown;
  /** Also emit every packet as a `packet` event with handlerModule (costly; for debugging). */
  reportPackets?: boolean | undefined;
  /** How long to wait for the workers to bind (default 120 s: a hang guard). */
  startTimeoutMs?: number | undefined;
  /** Worker entry to run instead of the bundled one (advanced). */
  workerPath?: string | undefined;
}

/** Statistics of one queue: the reader's counters and the kernel's line of /proc. */
export interface QueueStats {
  queue: number;
  /** Worker process id, undefined once it has exited. */
  pid?: number | undefined;
  /** The reader's counters (last known when the worker has exited). */
  reader?: ReaderStats | undefined;
  /** The kernel's statistics; undefined when no socket is bound to the queue. */
  kernel?: ProcQueueStats | undefined;
}

/** Events of a {@link QueueHandle}. */
export interface QueueHandleEvents {
  /** A packet (with `onPacket` or `reportPackets`). */
  packet: [QueuedPacket];
  /** Data a handler module emitted. */
  event: [{ queue: number; data: unknown }];
  /** A worker exited (by itself, killed, or after close()). */
  exit: [{ queue: number; code: number | null; signal: NodeJS.Signals | null; expected: boolean }];
  /** A problem that did not stop the queues (e.g. an onPacket callback threw). */
  warning: [Error];
}

/** Running queue readers. */
export interface QueueHandle extends EventEmitter<QueueHandleEvents> {
  /** Queue numbers bound. */
  readonly queues: number[];
  /** Namespace the readers run in. */
  readonly netns: string | undefined;
  /** How flow marks reach conntrack in the workers (`ct` or `repeat`). */
  readonly connmarkVia: 'ct' | 'repeat';
  /** Every worker receives its packets with their conntrack attributes (asked with `conntrack` and supported by the kernel). */
  readonly conntrack: boolean;
  /** Worker process ids by queue (undefined once exited). */
  pids(): Map<number, number | undefined>;
  /** Ask every live worker for its counters and the kernel's statistics. */
  stats(): Promise<QueueStats[]>;
  /**
   * Post structured-cloneable data to the handler module of one queue's worker
   * (its `ctx.onMessage` listeners), or of every live worker with `'all'`;
   * returns how many workers it was sent to.
   */
  post(queue: number | 'all', data: unknown): number;
  /** Unbind every queue and end the workers. Safe to call twice. */
  close(): Promise<void>;
}

const QueueNum = z.number().int('must be an integer').min(0, 'must be >= 0').max(65535, 'must be <= 65535');

const OptionsSchema = z
  .object({
    netns: NetnsName.optional(),
    queues: z.tuple([QueueNum, z.number().int().min(1, 'must be >= 1').max(64, 'at most 64 workers')]).refine(([f, c]) => f + c - 1 <= 65535, 'queue range ends above 65535'),
    failOpen: z.boolean(),
    copyRange: z.number().int().min(0).max(0xffff).optional(),
    maxLen: z.number().int().min(1).max(1 << 20).optional(),
    gso: z.boolean().optional(),
    conntrack: z.union([z.boolean(), z.literal('auto')]).optional(),
    rcvbuf: z.number().int().min(4096).max(1 << 30).optional(),
    batchVerdicts: z.boolean().optional(),
    marks: FlowMarksSchema.optional(),
    connmarkVia: z.enum(['auto', 'ct', 'repeat']).optional(),
    onPacket: z.function().optional(),
    handlerModule: z
      .string()
      .min(1)
      .refine((s) => s.startsWith('file:') || isAbsolute(s), 'must be an absolute path or a file: URL')
      .optional(),
    handlerOptions: z.unknown().optional(),
    reportPackets: z.boolean().optional(),
    startTimeoutMs: z.number().int().min(100).max(600_000).optional(),
    workerPath: z.string().refine((s) => isAbsolute(s), 'must be an absolute path').optional(),
  })
  .strict()
  .refine((o) => !(o.onPacket && o.handlerModule), { message: 'give either onPacket or handlerModule, not both', path: ['onPacket'] });

/**
 * The worker entry and the node arguments to run it: next to this module —
 * `worker.ts` through tsx's loader when running from sources, the
 * `nfqueue-worker.js` entry of the build when running from dist/.
 */
export function workerCommand(workerPath?: string): string[] {
  const here = fileURLToPath(import.meta.url);
  const dir = dirname(here);
  const tsLoader = (): string[] => {
    const require = createRequire(import.meta.url);
    return ['--import', pathToFileURL(require.resolve('tsx')).href];
  };
  if (workerPath) return [process.execPath, ...(workerPath.endsWith('.ts') ? tsLoader() : []), workerPath];
  if (here.endsWith('.ts')) return [process.execPath, ...tsLoader(), join(dir, 'worker.ts')];
  for (const name of ['nfqueue-worker.js', 'nfqueue-worker.mjs']) {
    const p = join(dir, name);
    if (existsSync(p)) return [process.execPath, p];
  }
  throw new NetfenceError('NO_WORKER', `nfqueue worker entry not found next to ${here}`, {
    hint: 'the package build must include the nfqueue-worker entry (tsup entry `nfqueue-worker: src/dpi/nfqueue/worker.ts`)',
  });
}

interface WorkerState {
  queue: number;
  child: SpawnedProcess;
  alive: boolean;
  expectedExit: boolean;
  lastStats?: ReaderStats;
}

class Handle extends EventEmitter<QueueHandleEvents> implements QueueHandle {
  readonly queues: number[];
  readonly netns: string | undefined;
  connmarkVia: 'ct' | 'repeat' = 'repeat';
  conntrack = true;
  readonly workers = new Map<number, WorkerState>();
  private req = 1;
  private readonly waiting = new Map<number, (m: Extract<FromWorker, { type: 'stats' }> | undefined) => void>();
  private closing: Promise<void> | undefined;

  constructor(queues: number[], netns: string | undefined) {
    super();
    this.queues = queues;
    this.netns = netns;
  }

  pids(): Map<number, number | undefined> {
    return new Map([...this.workers].map(([q, w]) => [q, w.alive ? w.child.pid : undefined]));
  }

  async stats(): Promise<QueueStats[]> {
    const out: QueueStats[] = [];
    await Promise.all(
      [...this.workers.values()].map(async (w) => {
        if (!w.alive) {
          out.push({ queue: w.queue, reader: w.lastStats });
          return;
        }
        const req = this.req++;
        const reply = await new Promise<Extract<FromWorker, { type: 'stats' }> | undefined>((resolve) => {
          const t = setTimeout(() => {
            this.waiting.delete(req);
            resolve(undefined);
          }, 3000);
          this.waiting.set(req, (m) => {
            clearTimeout(t);
            resolve(m);
          });
          this.sendTo(w, { type: 'stats', req });
        });
        if (reply) w.lastStats = reply.stats;
        out.push({ queue: w.queue, pid: w.child.pid, reader: reply?.stats ?? w.lastStats, kernel: reply?.kernel });
      }),
    );
    return out.sort((a, b) => a.queue - b.queue);
  }

  post(queue: number | 'all', data: unknown): number {
    let n = 0;
    for (const w of this.workers.values()) {
      if ((queue === 'all' || w.queue === queue) && w.alive && w.child.connected) {
        this.sendTo(w, { type: 'handler', data });
        n++;
      }
    }
    return n;
  }

  sendTo(w: WorkerState, m: ToWorker): void {
    if (w.alive && w.child.connected) w.child.send(m, (err) => err && undefined);
  }

  onStats(m: Extract<FromWorker, { type: 'stats' }>): void {
    const f = this.waiting.get(m.req);
    if (f) {
      this.waiting.delete(m.req);
      f(m);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all(
        [...this.workers.values()].map(
          (w) =>
            new Promise<void>((resolve) => {
              if (!w.alive) return resolve();
              w.expectedExit = true;
              const t = setTimeout(() => w.child.kill('SIGKILL'), 3000);
              w.child.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
              if (w.child.connected) this.sendTo(w, { type: 'close' });
              else w.child.kill('SIGTERM');
            }),
        ),
      );
    })();
    return this.closing;
  }
}

/**
 * Bind queues `first .. first+count-1`, each read by its own worker process
 * (inside `netns` when given). Resolves when every worker has bound its queue,
 * or to an error (and no worker left running) when one could not — e.g.
 * another process holds the queue, or the handler module failed to load.
 */
export async function openQueues(options: OpenQueuesOptions): Promise<Result<QueueHandle, NetfenceError | ValidationError>> {
  const parsed = OptionsSchema.safeParse(options);
  if (!parsed.success) return Err(fromZodIssues('openQueues options', parsed.error.issues));
  const o = options;
  const [first, count] = o.queues;
  const queues = Array.from({ length: count }, (_, i) => first + i);
  let cmd: string[];
  try {
    cmd = workerCommand(o.workerPath);
  } catch (e) {
    return Err(e as NetfenceError);
  }
  const handle = new Handle(queues, o.netns);
  // A hang guard, not a speed requirement: a worker loads TypeScript handlers and can start slowly on a busy or emulated machine.
  const startTimeout = o.startTimeoutMs ?? 120_000;

  const starts = queues.map(
    (queue) =>
      new Promise<Result<void, NetfenceError>>((resolve) => {
        const child = startProcess(cmd, { netns: o.netns, stdout: 'inherit', stderr: 'inherit', ipc: true });
        const w: WorkerState = { queue, child, alive: true, expectedExit: false };
        handle.workers.set(queue, w);
        let settled = false;
        const settle = (r: Result<void, NetfenceError>): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(r);
        };
        const timer = setTimeout(() => settle(Err(new NetfenceError('QUEUE_START', `queue ${queue}: worker did not bind within ${startTimeout} ms`))), startTimeout);
        child.on('error', (e) => settle(Err(new NetfenceError('QUEUE_START', `queue ${queue}: cannot start worker \`${child.argv.join(' ')}\`: ${e.message}`))));
        child.on('exit', (code, signal) => {
          w.alive = false;
          settle(Err(new NetfenceError('QUEUE_START', `queue ${queue}: worker exited (code ${code}, signal ${signal}) before binding`)));
          handle.emit('exit', { queue, code, signal, expected: w.expectedExit });
        });
        child.on('message', (raw: unknown) => {
          const m = raw as FromWorker;
          switch (m.type) {
            case 'ready':
              handle.connmarkVia = m.connmarkVia;
              handle.conntrack &&= m.conntrack === true;
              settle(Ok(undefined));
              break;
            case 'error':
              if (!settled) settle(Err(new NetfenceError('QUEUE_START', `queue ${queue}: ${m.message}`)));
              else handle.emit('warning', new NetfenceError('QUEUE_WORKER', `queue ${queue}: ${m.message}`));
              break;
            case 'packet': {
              const p = m.packet;
              if (!Buffer.isBuffer(p.payload)) p.payload = Buffer.from(p.payload as Uint8Array);
              if (handle.listenerCount('packet')) handle.emit('packet', p);
              if (m.relay) {
                const cb = o.onPacket;
                const reply = (decision: Decision): void => handle.sendTo(w, { type: 'verdict', id: p.id, decision });
                const fallback: Decision = o.failOpen ? 'accept' : 'drop';
                try {
                  const d = cb ? cb(p) : fallback;
                  if (d instanceof Promise)
                    d.then(reply, (e: unknown) => {
                      handle.emit('warning', new NetfenceError('ON_PACKET', `onPacket rejected: ${String(e)}`));
                      reply(fallback);
                    });
                  else reply(d);
                } catch (e) {
                  handle.emit('warning', new NetfenceError('ON_PACKET', `onPacket threw: ${String(e)}`));
                  reply(fallback);
                }
              }
              break;
            }
            case 'event':
              handle.emit('event', { queue: m.queue, data: m.data });
              break;
            case 'stats':
              w.lastStats = m.stats;
              handle.onStats(m);
              break;
            case 'closed':
              w.lastStats = m.stats;
              break;
          }
        });
        const init: WorkerInit = {
          queue,
          failOpen: o.failOpen,
          copyRange: o.copyRange,
          maxLen: o.maxLen,
          gso: o.gso,
          conntrack: o.conntrack,
          rcvbuf: o.rcvbuf,
          batchVerdicts: o.batchVerdicts,
          marks: o.marks,
          connmarkVia: o.connmarkVia,
          handlerModule: o.handlerModule,
          handlerOptions: o.handlerOptions,
          relay: o.onPacket !== undefined,
          reportPackets: o.reportPackets ?? false,
        };
        child.send({ type: 'init', init } satisfies ToWorker);
      }),
  );
  const results = await Promise.all(starts);
  const failed = results.find((r) => r.err);
  if (failed && failed.err) {
    await handle.close();
    return Err(failed.val);
  }
  return Ok(handle);
}
