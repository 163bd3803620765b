/**
 * What the executor does before it sends anything: serialize per namespace
 * (in this process and, with flock, across processes), decide whether a
 * snapshot is needed, probe ownership of the plan's tables and list the ones
 * to snapshot.
 * @module
 */
import { type CommandError, type NetfenceError } from '../errors.js';
import { nftListMany } from '../host/nft.js';
import { Err, Ok, type Result } from '../result.js';
import { KeyedSerialQueue } from '../util/serial.js';
import type { ApplyOptions } from './executor.js';
import { withNsLock } from './lock.js';
import { foreignOwner, OwnershipError, probeOwnership, type TableOwnership } from './ownership.js';
import type { TableSnapshot } from './snapshot.js';
import type { Plan, TableRef } from './types.js';

/**
 * Time limit for snapshot listings and restore batches: nft 1.0.x needs more
 * than a minute to list a table with a million set elements.
 */
export const LONG_MS = 600_000;

/** Counters for tests and benchmarks: how many tables were listed in full as snapshots. */
export const executorStats = { tablesSnapshotted: 0 };

// ---------------------------------------------------------------------------
// Serialization: one operation at a time per namespace, within this process
// (a promise chain) and across processes (flock, see lock.ts).

const queues = new KeyedSerialQueue();
export function withLock<T>(netns: string | undefined, fn0: () => Promise<T>, onLockError: (e: NetfenceError) => T, what: string): Promise<T> {
  return queues.run(netns ?? '', () => withNsLock(netns, what, fn0, onLockError));
}

export interface Preflight {
  tables: TableSnapshot[];
}

/**
 * Which of `tables` exist and whether they are ours (one cheap `nft -c` probe
 * per table, see {@link probeOwnership}); with `snapshot`, the listings of
 * those that exist (one batched `nft -j list`). Tables that are not ours are
 * never listed, except — on the error path — their counters, to name the owner.
 */
export async function preflight(tables: readonly TableRef[], owner: string, netns: string | undefined, snapshot: boolean): Promise<Result<Preflight, NetfenceError>> {
  const probes = await Promise.all(tables.map((t) => probeOwnership(t, owner, netns)));
  const out: TableSnapshot[] = [];
  for (let i = 0; i < tables.length; i++) {
    const t = tables[i] as TableRef;
    const p = probes[i] as Result<TableOwnership, CommandError>;
    if (p.err) return Err(p.val);
    if (p.val === 'not-owned') return Err(new OwnershipError(t, await foreignOwner(t, netns), owner));
    out.push({ table: t, existed: p.val === 'owned' });
  }
  const existing = out.filter((s) => s.existed);
  if (snapshot && existing.length > 0) {
    const l = await nftListMany(existing.map((s) => ({ list: { table: { family: s.table.family, name: s.table.name } } })), { netns, timeoutMs: LONG_MS });
    if (l.err) return Err(l.val);
    existing.forEach((s, i) => {
      executorStats.tablesSnapshotted++;
      s.listing = l.val[i];
    });
  }
  return Ok({ tables: out });
}

export function needsSnapshot(plan: Plan, options: ApplyOptions): boolean {
  const mode = options.snapshot ?? 'auto';
  if (mode === 'always') return true;
  if (mode === 'never') return false;
  return plan.steps.length > 0 || options.healthCheck !== undefined || options.confirmWithinMs !== undefined || rebuildsTable(plan);
}

/**
 * Whether the plan replaces or empties a whole table (`delete table`, `flush
 * table`): then the previous content would be lost without a snapshot, so
 * `auto` takes one and {@link AppliedPlan.rollback} can put it back. Small
 * incremental plans (elements, single rules) do not, so they never list a
 * large set.
 */
export function rebuildsTable(plan: Plan): boolean {
  return plan.nft.some((c) => {
    if (typeof c !== 'object' || c === null) return false;
    const cmd = c as Record<string, unknown>;
    const body = (cmd.delete ?? cmd.flush ?? cmd.destroy) as Record<string, unknown> | undefined;
    return typeof body === 'object' && body !== null && 'table' in body;
  });
}
