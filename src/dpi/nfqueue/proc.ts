/**
 * Kernel statistics of bound queues, from /proc/net/netfilter/nfnetlink_queue
 * (per network namespace: read it from inside the namespace).
 * @module
 */
import { readFile } from 'node:fs/promises';
import type { CommandError } from '../../errors.js';
import { run } from '../../host/run.js';
import { Err, Ok, type Result } from '../../result.js';

/** The kernel's view of one bound queue (one line of /proc/net/netfilter/nfnetlink_queue). */
export interface ProcQueueStats {
  /** Queue number. */
  queue: number;
  /** Netlink port id of the socket bound to it. */
  portid: number;
  /** Packets currently waiting for a verdict. */
  queueTotal: number;
  /** Copy mode: 0 none, 1 meta, 2 packet. */
  copyMode: number;
  /** Bytes copied per packet. */
  copyRange: number;
  /** Packets dropped because the queue was full (without fail-open). */
  queueDropped: number;
  /** Packets the kernel could not deliver to the socket (receive buffer full): dropped, or accepted with fail-open. */
  userDropped: number;
  /** Id of the last packet queued (= packets queued since bind). */
  idSequence: number;
}

/** The file, relative to the reader's network namespace. */
export const PROC_QUEUE_FILE = '/proc/net/netfilter/nfnetlink_queue';

/** Parse the file's text; malformed lines are skipped. */
export function parseProcQueues(text: string): ProcQueueStats[] {
  const out: ProcQueueStats[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length < 8 || f.slice(0, 8).some((x) => !Number.isFinite(x))) continue;
    const [queue, portid, queueTotal, copyMode, copyRange, queueDropped, userDropped, idSequence] = f as [number, number, number, number, number, number, number, number];
    out.push({ queue, portid, queueTotal, copyMode, copyRange, queueDropped, userDropped, idSequence });
  }
  return out;
}

/**
 * Read the kernel statistics of every bound queue in `netns` (through
 * `nsenter`), or in the current namespace. No file (nfnetlink_queue not
 * loaded yet) reads as no queues.
 */
export async function readProcQueues(options: { netns?: string | undefined } = {}): Promise<Result<ProcQueueStats[], CommandError>> {
  if (options.netns) {
    const r = await run(['cat', PROC_QUEUE_FILE], { netns: options.netns, what: 'read queue statistics', timeoutMs: 10_000 });
    if (r.err) return /No such file/.test(r.val.failure.stderr) ? Ok([]) : Err(r.val);
    return Ok(parseProcQueues(r.val.stdout));
  }
  try {
    return Ok(parseProcQueues(await readFile(PROC_QUEUE_FILE, 'utf8')));
  } catch {
    return Ok([]);
  }
}
