/**
 * Messages between the main process and a queue worker (Node IPC channel,
 * `advanced` serialization so Buffers travel as bytes).
 * @module
 */
import type { ProcQueueStats } from './proc.js';
import type { QueuedPacket, Verdict } from './protocol.js';
import type { ConnmarkVia, Decision, FlowMarks, ReaderStats } from './reader.js';

/** Everything a worker needs to bind and read its queue. */
export interface WorkerInit {
  queue: number;
  failOpen: boolean;
  copyRange?: number | undefined;
  maxLen?: number | undefined;
  gso?: boolean | undefined;
  conntrack?: boolean | 'auto' | undefined;
  rcvbuf?: number | undefined;
  batchVerdicts?: boolean | undefined;
  marks?: FlowMarks | undefined;
  connmarkVia?: ConnmarkVia | undefined;
  /** Absolute path or file: URL of a handler module (see handler.ts). */
  handlerModule?: string | undefined;
  handlerOptions?: unknown;
  /** Ask the main process for each decision (openQueues `onPacket`). */
  relay: boolean;
  /** Also report every packet to the main process. */
  reportPackets: boolean;
  /** Send stats every this many ms (0: only on request). */
  statsIntervalMs?: number | undefined;
}

/** Main → worker. */
export type ToWorker =
  | { type: 'init'; init: WorkerInit }
  | { type: 'verdict'; id: number; decision: Decision }
  | { type: 'stats'; req: number }
  /** Data for the handler module's `onMessage` listeners (QueueHandle.post). */
  | { type: 'handler'; data: unknown }
  | { type: 'close' };

/** Worker → main. */
export type FromWorker =
  | { type: 'ready'; queue: number; pid: number; connmarkVia: 'ct' | 'repeat'; conntrack: boolean; rcvbuf: number }
  | { type: 'error'; queue: number; message: string; fatal: boolean }
  | { type: 'packet'; packet: QueuedPacket; relay: boolean }
  | { type: 'event'; queue: number; data: unknown }
  | { type: 'stats'; req: number; stats: ReaderStats; kernel?: ProcQueueStats | undefined }
  | { type: 'closed'; stats: ReaderStats };

export type { Verdict };
