/**
 * Serial queues: jobs run one at a time, in call order. A job that fails
 * (rejects or throws) fails only its own caller; the next job runs as usual.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** Options of a {@link SerialQueue}. */
export interface SerialQueueOptions {
  /**
   * A job started from inside a job of the same queue runs at once instead of
   * waiting for the outer one (which would never finish). Default false.
   */
  reentrant?: boolean;
}

/** Runs async jobs one at a time, in call order. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private count = 0;
  private readonly inside: AsyncLocalStorage<true> | undefined;

  constructor(options: SerialQueueOptions = {}) {
    this.inside = options.reentrant ? new AsyncLocalStorage<true>() : undefined;
  }

  /** Jobs queued or running. */
  get pending(): number {
    return this.count;
  }

  /**
   * Run `fn` after every job queued before it has settled; the result is
   * `fn`'s. In a reentrant queue, a call made from inside a job runs `fn` at once.
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const inside = this.inside;
    if (inside?.getStore()) return fn();
    this.count++;
    const job = async (): Promise<T> => {
      try {
        return await (inside ? inside.run(true, fn) : fn());
      } finally {
        this.count--;
      }
    };
    const next = this.tail.then(job, job);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * One {@link SerialQueue} per key (e.g. per network namespace): jobs with the
 * same key run one at a time, jobs with different keys independently. A key's
 * queue is dropped when it has nothing left to run.
 */
export class KeyedSerialQueue {
  private readonly queues = new Map<string, SerialQueue>();

  /** Run `fn` after every job of `key` queued before it has settled. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let q = this.queues.get(key);
    if (!q) {
      q = new SerialQueue();
      this.queues.set(key, q);
    }
    const queue = q;
    const p = queue.run(fn);
    const drop = (): void => {
      if (queue.pending === 0 && this.queues.get(key) === queue) this.queues.delete(key);
    };
    p.then(drop, drop);
    return p;
  }

  /** Keys with jobs queued or running. */
  get size(): number {
    return this.queues.size;
  }
}
