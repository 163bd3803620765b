/**
 * One peer cache for a whole DpiBlocker, across its queue workers.
 *
 * Workers are processes, so each holds a replica of the cache (lookups stay
 * O(1) and local, on the packet path) and the main process holds the
 * authoritative copy (its statistics are the blocker's):
 *
 * ```
 * worker A: cache.add() ─ onAdd ─▶ emit {peers, seq, records, sync}
 * main:     merge into its cache ─▶ post {peers, records, origin A, seq} to B, C, ...
 * B, C:     merge ─▶ (sync) emit {peers-ack, origin A, seq}
 * main:     every live worker acked ─▶ post {peers-synced, seq} to A
 * ```
 *
 * A packet that *listed* peers (a tracker or DHT reply) and is let through
 * waits for `peers-synced` (at most {@link WorkerPeerSync.timeoutMs}): the
 * client only learns the peers from that packet, so by the time it connects
 * to one of them, every worker knows it, whichever queue the new flow hashes
 * to. Detections are shared without waiting (their flow is already judged).
 * Until the main process says hello (`peers-hello`, sent by DpiBlocker once
 * the workers are bound, with the cache's live entries: a blocker applied
 * again starts from what it knew) a worker shares nothing and never waits:
 * the handler module used alone with `openQueues` behaves as before.
 * @module
 */
import { PeerCache, type PeerCacheOptions, type PeerRecord } from './classifiers/peer-cache.js';

/** Messages of the protocol (worker events and main posts). */
export type PeerSyncMessage =
  | { kind: 'peers-hello'; workers: number; records: PeerRecord[] }
  | { kind: 'peers'; seq: number; records: PeerRecord[]; sync: boolean; origin?: number }
  | { kind: 'peers-ack'; origin: number; seq: number }
  | { kind: 'peers-synced'; seq: number };

/** What a worker's handler module gives {@link WorkerPeerSync}. */
export interface PeerSyncContext {
  queue: number;
  emit(data: unknown): void;
  onMessage?(listener: (data: unknown) => void): void;
}

/** Worker side: shares local additions, merges the others', holds verdicts for the sync barrier. */
export class WorkerPeerSync {
  private outbox: PeerRecord[] = [];
  private seq = 0;
  private workers = 0;
  private readonly waiting = new Map<number, () => void>();
  /** Barriers released by their timeout rather than by `peers-synced`. */
  timeouts = 0;

  constructor(
    private readonly cache: PeerCache,
    private readonly ctx: PeerSyncContext,
    /** Longest wait for the other workers (ms). */
    readonly timeoutMs = 250,
  ) {
    cache.onAdd = (r) => {
      if (this.workers === 0) return;
      this.outbox.push(r);
    };
    ctx.onMessage?.((d) => this.onMessage(d as PeerSyncMessage));
  }

  /** True once the main process said hello: additions are shared. */
  get sharing(): boolean {
    return this.workers > 0;
  }

  /**
   * Send what this packet added (at once: a queue worker's event loop may not
   * turn again before its next poll). `wait`: the packet listed peers and will
   * be let through — then, when other workers exist, returns the promise to
   * wait on before its verdict; otherwise undefined.
   */
  flush(wait: boolean): Promise<void> | undefined {
    if (this.outbox.length === 0) return undefined;
    const sync = wait && this.workers > 1;
    const records = this.outbox;
    this.outbox = [];
    const seq = ++this.seq;
    this.ctx.emit({ kind: 'peers', seq, records, sync } satisfies PeerSyncMessage);
    if (!sync) return undefined;
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        if (this.waiting.delete(seq)) {
          this.timeouts++;
          resolve();
        }
      }, this.timeoutMs);
      this.waiting.set(seq, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Handle a message the main process posted. */
  onMessage(m: PeerSyncMessage): void {
    switch (m?.kind) {
      case 'peers-hello':
        this.workers = m.workers;
        this.cache.merge(m.records);
        break;
      case 'peers':
        this.cache.merge(m.records);
        if (m.sync && m.origin !== undefined) this.ctx.emit({ kind: 'peers-ack', origin: m.origin, seq: m.seq } satisfies PeerSyncMessage);
        break;
      case 'peers-synced': {
        const done = this.waiting.get(m.seq);
        if (done) {
          this.waiting.delete(m.seq);
          done();
        }
        break;
      }
    }
  }
}

/** Main side: the authoritative cache and the relay between workers. */
export class MainPeerSync {
  /** The blocker's one peer cache (every worker's additions). */
  readonly cache: PeerCache;
  private readonly pending = new Map<string, { origin: number; seq: number; left: Set<number> }>();

  constructor(
    options: PeerCacheOptions,
    private readonly post: (queue: number | 'all', data: PeerSyncMessage) => number,
    private readonly live: () => number[],
  ) {
    this.cache = new PeerCache(options);
  }

  /** Tell the workers (once bound) to share, and give them the cache's live entries at `ts`. */
  hello(ts: number): void {
    this.post('all', { kind: 'peers-hello', workers: this.live().length, records: this.cache.records(ts) });
  }

  /** Handle a worker event; returns false when it is not part of this protocol. */
  onEvent(queue: number, data: unknown): boolean {
    const m = data as PeerSyncMessage;
    if (m?.kind === 'peers') {
      this.cache.merge(m.records);
      const others = this.live().filter((q) => q !== queue);
      for (const q of others) this.post(q, { kind: 'peers', seq: m.seq, records: m.records, sync: m.sync, origin: queue });
      if (m.sync) {
        if (others.length === 0) this.post(queue, { kind: 'peers-synced', seq: m.seq });
        else this.pending.set(`${queue}:${m.seq}`, { origin: queue, seq: m.seq, left: new Set(others) });
      }
      return true;
    }
    if (m?.kind === 'peers-ack') {
      this.acked(`${m.origin}:${m.seq}`, queue);
      return true;
    }
    return false;
  }

  /** A worker is gone: it will not ack. */
  workerGone(queue: number): void {
    for (const [k, p] of this.pending) this.acked(k, queue, p);
  }

  private acked(key: string, queue: number, p = this.pending.get(key)): void {
    if (!p) return;
    p.left.delete(queue);
    if (p.left.size > 0) return;
    this.pending.delete(key);
    this.post(p.origin, { kind: 'peers-synced', seq: p.seq });
  }
}
