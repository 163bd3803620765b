/**
 * `reconcile()`: find what a dead netfence process left behind and remove it.
 * Run it at start-up (or `netfence reconcile`). It reads the intent journal
 * (see journal.ts) and acts only on entries whose process is gone (pid AND
 * start time checked, so a reused pid does not count as alive):
 *
 * - an **apply** that never completed: its started steps are undone in reverse
 *   (tc qdiscs, IFB devices, ...), and its owned tables go back to what they
 *   were before the apply (deleted when new, replaced by the journal's snapshot
 *   when they existed) — so the host ends with the OLD configuration;
 *   An XdpBlocklist attach is such an apply (its XDP steps undo to the previous
 *   program and remove the pins they created); a completed one has no entry;
 *   A DpiBlocker's steering is such an apply too, kept journaled while its
 *   process lives (`whileAlive`): once the process died, its queue rules (no
 *   reader any more) are undone.
 *
 * It never touches anything without a journal entry, never a table without
 * the entry owner's mark, and never anything of a live process. An entry
 * applied with a confirm deadline is held by its detached watchdog (see
 * watchdog.ts) while the watchdog lives and the deadline (plus a grace) has
 * not passed, even when its applier is gone; the watchdog reverts it at the
 * deadline through {@link revertAwaitingConfirm}, the same per-entry repair.
 * @module
 */
import { existsSync } from 'node:fs';
import { type NetfenceError, ValidationError } from '../errors.js';
import { run } from '../host/run.js';
import { probeNamespaceOwner } from '../capabilities/probe-ns.js';
import { Err, Ok, type Result } from '../result.js';
import { NetnsName } from '../validate.js';
import { pruneLockFiles } from './lock.js';
import { entryHeld, readJournal, readJournalEntry, removeStaleTemporaries } from './journal.js';
import { withLock } from './preflight.js';
import { tableKey } from './ownership.js';
import { emptyReport, repairEntry, type ReconcileReport } from './repair.js';

export type { ReconcileAction, ReconcileFinding, ReconcileReport } from './repair.js';

/** Options for {@link reconcile}. */
export interface ReconcileOptions {
  /** Only entries of this network namespace (default: every namespace). */
  netns?: string | undefined;
  /** Report what would be done, change nothing. */
  dryRun?: boolean | undefined;
  /**
   * @deprecated completed XdpBlocklists are not journaled any more (an attach
   * is an ordinary apply whose entry goes when it completes), so reconcile
   * cannot find them; `true` is reported in `errors`. Remove one with
   * `XdpBlocklist.destroy()`.
   */
  detachPersistentXdp?: boolean | undefined;
  /** How long to wait for tools the dead process started (nft, tc, ...) to finish, in ms (default 10,000). */
  waitMs?: number | undefined;
}

/** What {@link revertAwaitingConfirm} did. */
export interface ConfirmRevertOutcome {
  /** `reverted`: the plan was taken back; `nothing-to-do`: the entry was gone or no longer awaited confirmation (confirmed, or reverted by someone else); `failed`: the repair failed, the entry is kept for reconcile(). */
  outcome: 'reverted' | 'nothing-to-do' | 'failed';
  /** The repair report (steps undone, tables restored, errors). */
  report: ReconcileReport;
}

/**
 * Revert a plan whose confirm deadline passed: under the namespace lock, the
 * entry is read again and, if it still awaits confirmation, repaired through
 * reconcile's per-entry path. Whoever comes first (the watchdog, the applier's
 * own timer, reconcile) wins; the others find nothing to do.
 * @internal used by the confirm watchdog
 */
export async function revertAwaitingConfirm(id: string, options: { waitMs?: number } = {}): Promise<Result<ConfirmRevertOutcome, NetfenceError>> {
  const first = readJournalEntry(id);
  const report = emptyReport(false);
  if (!first || first.phase !== 'awaiting-confirm') return Ok({ outcome: 'nothing-to-do', report });
  return withLock(
    first.netns,
    async (): Promise<Result<ConfirmRevertOutcome, NetfenceError>> => {
      const e = readJournalEntry(id);
      if (!e || e.phase !== 'awaiting-confirm') return Ok({ outcome: 'nothing-to-do', report });
      const busy = new Set<string>();
      for (const o of readJournal()) if (o.id !== id && entryHeld(o)) for (const t of o.tables) busy.add(`${o.netns ?? ''}|${tableKey(t.table)}`);
      report.scanned = 1;
      const ok = await repairEntry(e, { dryRun: false, waitMs: options.waitMs ?? 10_000, busy }, report);
      return Ok({ outcome: ok ? 'reverted' : 'failed', report });
    },
    (err) => Err(err),
    `confirm-timeout ${first.owner}`,
  );
}

/**
 * Find what dead netfence processes left behind (journal entries whose pid
 * is gone or reused) and remove it: half-applied plans are undone (steps in
 * reverse, owned tables back to their pre-apply state; interrupted XDP
 * attaches and DpiBlocker steering rules are such plans), steering rules
 * without a reader are removed. Entries of live processes are left alone;
 * nothing without a journal entry or an ownership mark is ever touched.
 */
export async function reconcile(options: ReconcileOptions = {}): Promise<Result<ReconcileReport, ValidationError | NetfenceError>> {
  if (options.netns !== undefined && !NetnsName.safeParse(options.netns).success) return Err(new ValidationError('reconcile options', [{ path: 'netns', message: 'invalid namespace name' }]));
  if (options.waitMs !== undefined && !(Number.isFinite(options.waitMs) && options.waitMs >= 0)) return Err(new ValidationError('reconcile options', [{ path: 'waitMs', message: 'must be a finite number >= 0' }]));
  const dryRun = options.dryRun === true;
  const waitMs = options.waitMs ?? 10_000;
  const report = emptyReport(dryRun);
  if (options.detachPersistentXdp) report.errors.push('detachPersistentXdp: completed XdpBlocklists are not journaled any more; remove one with XdpBlocklist.destroy()');
  if (!dryRun) removeStaleTemporaries();
  const all = readJournal();
  report.scanned = all.length;
  // Tables a live process works on are never touched.
  const busy = new Set<string>();
  for (const e of all) {
    if (!entryHeld(e)) continue;
    if (e.kind === 'apply') for (const t of e.tables) busy.add(`${e.netns ?? ''}|${tableKey(t.table)}`);
  }
  const entries = all.filter((e) => options.netns === undefined || e.netns === options.netns).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  for (const e of entries) {
    if (entryHeld(e)) {
      report.live++;
      continue;
    }
    if (e.confirm === undefined) {
      await repairEntry(e, { dryRun, waitMs, busy }, report);
      continue;
    }
    // An entry with a confirm deadline may have a watchdog acting on it right now: repair it
    // under the namespace lock, from a fresh read, as the watchdog does.
    await withLock(
      e.netns,
      async () => {
        const cur = readJournalEntry(e.id);
        if (!cur) return;
        if (entryHeld(cur)) report.live++;
        else await repairEntry(cur, { dryRun, waitMs, busy }, report);
      },
      (err) => void report.errors.push(`entry ${e.id}: ${err.message.split('\n')[0]}`),
      `reconcile ${e.owner}`,
    );
  }
  // Probe namespaces of dead processes belong to no target namespace: swept by every reconcile
  // (a process killed while probing for a plan in `netns` leaves one behind).
  await sweepProbeNamespaces(dryRun, report);
  // Lock files nobody holds (their namespaces may be long gone).
  if (options.netns === undefined && !dryRun) pruneLockFiles();
  return Ok(report);
}

/**
 * Capability probes run in throwaway `nfcap-<pid>-<random>` namespaces that a
 * process deletes when detection ends, or on exit; one killed with SIGKILL in
 * the middle cannot. Remove those whose creator is gone and that hold no process.
 */
async function sweepProbeNamespaces(dryRun: boolean, report: ReconcileReport): Promise<void> {
  const l = await run(['ip', 'netns', 'list']);
  if (l.err) return;
  for (const name of l.val.stdout.split('\n').map((x) => x.split(/\s+/)[0] ?? '')) {
    const pid = probeNamespaceOwner(name);
    if (pid === undefined || existsSync(`/proc/${pid}`)) continue;
    const inside = await run(['ip', 'netns', 'pids', name]);
    if (inside.err || inside.val.stdout.trim() !== '') continue;
    if (!dryRun) {
      const d = await run(['ip', 'netns', 'del', name]);
      if (d.err) {
        report.errors.push(`probe namespace ${name}: ${d.val.message.split('\n')[0]}`);
        continue;
      }
    }
    report.removed.probeNamespaces++;
    report.found.push({ entry: name, kind: 'probe', owner: 'detectCapabilities', pid, netns: name, phase: 'probing', actions: [{ kind: 'delete-probe-netns', target: name, ok: true }] });
  }
}
