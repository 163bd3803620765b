/**
 * Verdicts: what a packet handler decides ({@link Decision}) and how decided
 * packets become verdict messages ({@link planVerdicts}, pure).
 * @module
 */
import type { QueuedPacket, Verdict } from './protocol.js';

/**
 * What a packet handler decides:
 * - `accept` / `drop`: this packet only (later packets of the flow are still queued while within the steering bound);
 * - `benign`: accept, and mark the flow so that it bypasses the queue from now on;
 * - `bad`: drop, and mark the flow so that all its later packets are dropped (or reset) by the steering rules;
 * - a raw {@link Verdict}.
 */
export type Decision = 'accept' | 'drop' | 'benign' | 'bad' | Verdict;

/** Decides about one packet; may be async (the packet waits in the kernel meanwhile). */
export type PacketHandler = (packet: QueuedPacket) => Decision | Promise<Decision>;

/** A decided packet waiting for its verdict message. */
export interface ReadyVerdict {
  id: number;
  v: Verdict;
}

/** One verdict message to send: for one packet, or a batch for every packet up to `id`. */
export interface PlannedVerdict {
  kind: 'single' | 'batch';
  id: number;
  verdict: Verdict;
  /** Packets it decides. */
  count: number;
}

/**
 * Order decided packets by id and merge runs of two or more equal plain
 * verdicts (no mark, connmark or payload) into one batch verdict — only when
 * no packet with a lower id still waits for an async decision (`minPending`),
 * since a batch verdict covers every queued packet up to its id. Pure.
 */
export function planVerdicts(list: ReadyVerdict[], minPending = Infinity, batching = true): PlannedVerdict[] {
  const sorted = [...list].sort((a, b) => a.id - b.id);
  const plain = (v: Verdict): boolean => v.mark === undefined && v.connmark === undefined && v.payload === undefined;
  const out: PlannedVerdict[] = [];
  for (let i = 0; i < sorted.length; ) {
    const first = sorted[i] as ReadyVerdict;
    let j = i + 1;
    if (batching && plain(first.v)) {
      while (j < sorted.length) {
        const r = sorted[j] as ReadyVerdict;
        if (!plain(r.v) || r.v.verdict !== first.v.verdict) break;
        // A run that could be batched stops before a pending id.
        if (first.id < minPending && r.id > minPending) break;
        j++;
      }
    }
    const last = sorted[j - 1] as ReadyVerdict;
    if (j - i >= 2 && last.id < minPending) out.push({ kind: 'batch', id: last.id, verdict: { verdict: first.v.verdict }, count: j - i });
    else for (let k = i; k < j; k++) out.push({ kind: 'single', id: (sorted[k] as ReadyVerdict).id, verdict: (sorted[k] as ReadyVerdict).v, count: 1 });
    i = j;
  }
  return out;
}
