/**
 * Reconcile's per-entry repair path (see reconcile.ts): wait for the tools a
 * dead process started, undo the entry's started steps in reverse, put its
 * owned tables back as the journal says they were (only tables carrying the
 * owner's mark), then remove the entry. Also the report types. Used by
 * `reconcile()` for every entry whose process is gone and by the confirm
 * watchdog at its deadline (`revertAwaitingConfirm`).
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';
import { hostFiles } from '../host/files.js';
import { nftApply } from '../host/nft.js';
import { NetnsName } from '../validate.js';
import { runAction } from './executor.js';
import { isXdpAction, xdpActionNeedsNetns } from './actions-xdp.js';
import { removeJournalEntry, type JournalEntry } from './journal.js';
import { probeOwnership, tableKey } from './ownership.js';
import { restoreCommands, type TableSnapshot } from './snapshot.js';
import { emptyPlan, type Step, type TableRef } from './types.js';
import { validatePlan } from './validate-plan.js';

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
export interface RepairContext {
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
export async function repairEntry(e: JournalEntry, ctx: RepairContext, report: ReconcileReport): Promise<boolean> {
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

/** A report with nothing found yet. */
export function emptyReport(dryRun: boolean): ReconcileReport {
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
