/**
 * The contract of a packet-handler module: code that runs inside each queue
 * worker and decides about packets there, so that verdict latency never waits
 * for the main process. The module is given to {@link openQueues} as a path;
 * it is imported once per worker.
 *
 * ```ts
 * // my-handler.ts
 * import type { nfqueue } from 'netfence/advanced';
 * export const createPacketHandler: nfqueue.PacketHandlerFactory = (ctx) => (packet) => {
 *   if (packet.payload.includes('BitTorrent protocol')) { ctx.emit({ kind: 'bt' }); return 'bad'; }
 *   return 'accept';
 * };
 * ```
 * @module
 */
import type { Decision, PacketHandler } from './reader.js';

/** What a handler module's factory receives. */
export interface PacketHandlerContext {
  /** The queue this worker reads. */
  queue: number;
  /** `classifierOptions` as given to openQueues (structured-cloned). */
  options: unknown;
  /** Whether the queue fails open (the verdict used when the handler throws). */
  failOpen: boolean;
  /** Send an event to the main process (emitted there as `event` with `{ queue, data }`). Structured-cloneable data only. */
  emit(data: unknown): void;
  /**
   * Receive what the main process posts to this worker (`QueueHandle.post`),
   * e.g. state another worker found. Structured-cloned data; listeners run on
   * the worker's event loop, between packet batches.
   */
  onMessage?(listener: (data: unknown) => void): void;
}

/**
 * A handler module exports `createPacketHandler` (or a default export) of this
 * type; it may be async (e.g. to load rules) and returns the per-packet handler.
 */
export type PacketHandlerFactory = (ctx: PacketHandlerContext) => PacketHandler | Promise<PacketHandler>;

export type { Decision, PacketHandler };
