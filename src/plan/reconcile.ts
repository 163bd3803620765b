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
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { NetfenceError, ValidationError } from '../errors.js';
import { hostFiles } from '../host/files.js';
import { nftApply } from '../host/nft.js';
import { run } from '../host/run.js';
import { probeNamespaceOwner } from '../capabilities/probe-ns.js';
import { Err, Ok, type Result } from '../result.js';
import { NetnsName } from '../validate.js';
import { runAction } from './executor.js';
import { isXdpAction, xdpActionNeedsNetns } from './actions-xdp.js';
import { pruneLockFiles } from './lock.js';
import { entryHeld, readJournal, readJournalEntry, removeJournalEntry, removeStaleTemporaries, type JournalEntry } from './journal.js';
import { withLock } from './preflight.js';
import { probeOwnership, tableKey } from './ownership.js';
import { restoreCommands, type TableSnapshot } from './snapshot.js';
import { emptyPlan, type Step, type TableRef } from './types.js';
import { validatePlan } from './validate-plan.js';

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

/** One thing reconcile did (or, in a dry run, would do). */
export interface ReconcileAction {
  /** What kind of object. */
  kind: 'undo-step' | 'delete-table' | 'restore-table' | 'keep-table' | 'detach-xdp' | 'unlink-pins' | 'complete-xdp-pin' | 'remove-journal' | 'delete-probe-netns';
  /** What exactly (step id, `family name`, interface, pin dir, entry id). */
  target: string;
  /** Whether it worked (always true in a dry run). */
  ok: boolean;
  /** Why it failed or was skipped, if it did. */
  note?: string | undefined;
}

/** A journal entry of a dead process and what was done about it. */
export interface ReconcileFinding {
  /** Journal entry id (file name). */
  entry: string;
  /** `apply` (an interrupted apply, an XdpBlocklist attach, a DpiBlocker's steering), `probe` (a capability-probe namespace). */
  kind: 'apply' | 'probe';
  /** Plan owner. */
  owner: string;
  /** The dead process. */
  pid: number;
  /** Its network namespace (undefined: the machine's own). */
  netns: string | undefined;
  /** Where the dead process was (the apply phase; `in-effect` for a plan held while its process lived). */
  phase: string;
  actions: ReconcileAction[];
}

/** What {@link reconcile} found and removed. */
export interface ReconcileReport {
  /** Whether this was a dry run (nothing changed). */
  dryRun: boolean;
  /** Journal entries read. */
  scanned: number;
  /** Entries of live processes (left alone). */
  live: number;
  /** Entries kept on purpose (completed XdpBlocklists, see {@link ReconcileOptions.detachPersistentXdp}). */
  kept: number;
  /** Entries of dead processes and what was done. */
  found: ReconcileFinding[];
  /** Totals over `found`. */
  removed: {
    stepsUndone: number;
    tablesDeleted: number;
    tablesRestored: number;
    xdpDetached: number;
    pinDirsRemoved: number;
    queueRuleSets: number;
    /** Throwaway capability-probe namespaces (`nfcap-*`) of dead processes. */
    probeNamespaces: number;
    journalEntries: number;
  };
  /** Actions that failed (the entry is then kept, so a later run can retry). */
  errors: string[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether any process is still in process group `pgid`. */
function groupAlive(pgid: number): boolean {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[2]) === pgid && rest[0] !== 'Z') return true;
    } catch {
      // exited meanwhile
    }
  }
  return false;
}

/**
 * Tools a dead process started (nft, tc, bpftool) keep running and may still
 * commit. When the process led its own process group, wait for the group to
 * empty so nothing lands after the repair.
 */
async function waitForTools(e: JournalEntry, waitMs: number): Promise<boolean> {
  if (e.pgid !== e.pid) return true;
  const until = Date.now() + waitMs;
  while (groupAlive(e.pgid)) {
    if (Date.now() > until) return false;
    await sleep(25);
  }
  return true;
}

function netnsGone(netns: string | undefined): boolean {
  return netns !== undefined && !hostFiles().exists(`/run/netns/${netns}`);
}

/**
 * Undo `steps` in reverse. When the namespace is gone (`machineOnly`), only
 * the actions that do not live in it run: bpffs pins are machine-wide.
 */
async function undoSteps(steps: readonly Step[], netns: string | undefined, dryRun: boolean, out: ReconcileAction[], report: ReconcileReport, machineOnly = false): Promise<number> {
  let n = 0;
  for (const s of [...steps].reverse()) {
    const undo = machineOnly ? s.undo.filter((a) => isXdpAction(a) && !xdpActionNeedsNetns(a)) : s.undo;
    if (machineOnly && undo.length === 0) continue;
    if (dryRun) {
      out.push({ kind: 'undo-step', target: s.id, ok: true });
      n++;
      continue;
    }
    const notes: string[] = [];
    for (const a of undo) {
      const r = await runAction(a, netns);
      // tolerated: the step may have been half done (or not at all), like the executor's own undo
      if (r.err && !a.ignoreFailure) notes.push(r.val.failure.stderr.split('\n')[0] ?? r.val.message);
      else if (r.ok && a.kind === 'xdp-detach') report.removed.xdpDetached++;
      else if (r.ok && a.kind === 'xdp-unpin' && !a.names) report.removed.pinDirsRemoved++;
    }
    out.push({ kind: 'undo-step', target: s.id, ok: true, ...(notes.length ? { note: `tolerated: ${notes.join('; ')}` } : {}) });
    n++;
  }
  return n;
}

/** Put the entry's owned tables back as the journal says they were; only tables carrying `owner`'s mark (or absent) are touched. */
async function restoreTables(
  tables: readonly { table: TableRef; existed: boolean; listing?: TableSnapshot['listing'] }[],
  owner: string,
  netns: string | undefined,
  busy: Set<string>,
  dryRun: boolean,
  out: ReconcileAction[],
  errors: string[],
): Promise<{ deleted: number; restored: number; failed: boolean }> {
  const todo: TableSnapshot[] = [];
  const kinds: ReconcileAction[] = [];
  for (const t of tables) {
    const key = tableKey(t.table);
    if (busy.has(`${netns ?? ''}|${key}`)) {
      out.push({ kind: 'keep-table', target: key, ok: true, note: 'a live netfence process works on it' });
      continue;
    }
    const p = await probeOwnership(t.table, owner, netns);
    if (p.err) {
      errors.push(`probe ${key}: ${p.val.message.split('\n')[0]}`);
      out.push({ kind: 'keep-table', target: key, ok: false, note: p.val.message.split('\n')[0] });
      return { deleted: 0, restored: 0, failed: true };
    }
    if (p.val === 'not-owned') {
      out.push({ kind: 'keep-table', target: key, ok: true, note: `not marked as ${owner}'s: never touched` });
      continue;
    }
    if (t.existed && !t.listing) {
      out.push({ kind: 'keep-table', target: key, ok: true, note: 'existed before and no snapshot was journaled (its nft batch is atomic: old or new, never a mix)' });
      continue;
    }
    if (!t.existed && p.val === 'absent') continue; // the nft batch never committed
    todo.push({ table: t.table, existed: t.existed, listing: t.listing });
    kinds.push({ kind: t.existed ? 'restore-table' : 'delete-table', target: key, ok: true });
  }
  if (todo.length === 0) return { deleted: 0, restored: 0, failed: false };
  if (!dryRun) {
    const r = await nftApply(restoreCommands(todo).commands, { netns, what: 'reconcile: restore tables', timeoutMs: 600_000 });
    if (r.err) {
      const msg = r.val.message.split('\n')[0] ?? '';
      errors.push(`restore ${kinds.map((k) => k.target).join(', ')}: ${msg}`);
      for (const k of kinds) out.push({ ...k, ok: false, note: msg });
      return { deleted: 0, restored: 0, failed: true };
    }
  }
  out.push(...kinds);
  return { deleted: kinds.filter((k) => k.kind === 'delete-table').length, restored: kinds.filter((k) => k.kind === 'restore-table').length, failed: false };
}

/**
 * A journal file is data read back from disk: before anything in it reaches a
 * tool, it passes the same validation as a plan (argv arrays, no shells,
 * valid names) — an entry that does not is reported and left alone.
 */
function entryProblem(e: JournalEntry): string | undefined {
  if (e.netns !== undefined && !NetnsName.safeParse(e.netns).success) return 'invalid namespace name';
  const p = emptyPlan(e.owner, e.netns);
  p.tables.push(...e.tables.map((t) => t.table));
  p.steps.push(...e.steps);
  const v = validatePlan(p);
  return v.err ? v.val.message.split('\n')[0] : undefined;
}

/** What one repair needs besides the entry. */
interface RepairContext {
  dryRun: boolean;
  waitMs: number;
  /** Tables live processes work on (`netns|family name`): never touched. */
  busy: Set<string>;
}

/**
 * The per-entry repair path: undo the entry's started steps in reverse, put
 * its owned tables back (deleted when new, the snapshot when they existed;
 * only tables carrying the owner's mark), then remove the entry. On a failure
 * the entry is kept (a later run retries). Used by {@link reconcile} for every
 * entry whose process is gone, and by the confirm watchdog at its deadline
 * (see {@link revertAwaitingConfirm}). Returns whether the entry was repaired.
 */
async function repairEntry(e: JournalEntry, ctx: RepairContext, report: ReconcileReport): Promise<boolean> {
  const { dryRun, waitMs, busy } = ctx;
  const problem = entryProblem(e);
  if (problem) {
    report.errors.push(`entry ${e.id}: refused (${problem}); left alone`);
    return false;
  }
  if (!(await waitForTools(e, waitMs))) {
    report.errors.push(`entry ${e.id}: tools started by dead pid ${e.pid} still run after ${waitMs} ms; try again later`);
    return false;
  }
  const actions: ReconcileAction[] = [];
  const finding: ReconcileFinding = { entry: e.id, kind: e.kind, owner: e.owner, pid: e.pid, netns: e.netns, phase: e.phase, actions };
  report.found.push(finding);
  let failed = false;
  const gone = netnsGone(e.netns);
  const steps = e.steps.slice(0, e.stepsStarted);
  if (!gone) {
    const n = await undoSteps(steps, e.netns, dryRun, actions, report);
    report.removed.stepsUndone += n;
    const r = await restoreTables(e.tables, e.owner, e.netns, busy, dryRun, actions, report.errors);
    report.removed.tablesDeleted += r.deleted;
    report.removed.tablesRestored += r.restored;
    // a plan that held only while its process lived (DpiBlocker's queue rules, `whileAlive`)
    if ((e.phase as string) === 'in-effect' && (n > 0 || r.deleted > 0)) report.removed.queueRuleSets++;
    failed = r.failed;
  } else report.removed.stepsUndone += await undoSteps(steps, e.netns, dryRun, actions, report, true); // pins outlive the namespace
  if (failed) return false;
  if (!dryRun) removeJournalEntry(e.id);
  actions.push({ kind: 'remove-journal', target: e.id, ok: true, ...(gone ? { note: `namespace ${e.netns} no longer exists` } : {}) });
  report.removed.journalEntries++;
  return true;
}

function emptyReport(dryRun: boolean): ReconcileReport {
  return {
    dryRun,
    scanned: 0,
    live: 0,
    kept: 0,
    found: [],
    removed: { stepsUndone: 0, tablesDeleted: 0, tablesRestored: 0, xdpDetached: 0, pinDirsRemoved: 0, queueRuleSets: 0, probeNamespaces: 0, journalEntries: 0 },
    errors: [],
  };
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
