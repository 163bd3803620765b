/**
 * Confirm-or-revert that does not need the applying process.
 *
 * When a plan is applied with `confirmWithinMs` (see the executor's
 * `ApplyOptions`), its journal entry stays, phase `awaiting-confirm`, and the
 * executor starts a small **detached watchdog process** (`watchdog-main.ts`,
 * shipped as `dist/confirm-watchdog.js`) through the host seam. The entry
 * names the watchdog (pid AND start time) and the deadline (CLOCK_MONOTONIC),
 * so it is held even after the applier is gone: `reconcile()` leaves it alone
 * while the watchdog lives and the deadline has not passed. At the deadline the
 * watchdog takes the namespace lock, re-reads the entry and, if it still awaits
 * confirmation, reverts it through reconcile's per-entry repair path (the same
 * code that repairs a crashed apply). Confirming removes the entry; the
 * watchdog notices within 100 ms and exits.
 *
 * Confirming from another process: {@link pendingConfirms} lists what waits,
 * {@link confirmApplied} confirms one by id (`netfence confirm [ID]`).
 *
 * The journal lives on tmpfs (`/run`): a reboot removes the entries together
 * with the watchdog and the kernel state they describe (nft tables, tc,
 * bpffs pins are not persistent), so nothing stays armed or half-applied.
 * @module
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NetfenceError, ValidationError } from '../errors.js';
import { currentHost, realHost, type SpawnedProcess } from '../host/host.js';
import { startDetached } from '../host/spawn.js';
import { Err, Ok, type Result } from '../result.js';
import { NetnsName } from '../validate.js';
import { isAlive, monotonicMs, processIdentity, readJournal, readJournalEntry, removeJournalEntry, type ApplyJournalEntry, type ProcessIdentity } from './journal.js';
import { tableKey } from './ownership.js';
import { withLock } from './preflight.js';

/** How often the watchdog looks at its entry (a confirm is noticed within this time). */
export const WATCHDOG_POLL_MS = 100;

/** Exit status of the watchdog: disarmed (confirmed, rolled back by someone else, or nothing to do). */
export const WATCHDOG_EXIT_DISARMED = 0;
/** Exit status of the watchdog: it reverted the plan at the deadline. */
export const WATCHDOG_EXIT_REVERTED = 10;
/** Exit status of the watchdog: the revert failed; the entry is kept for `reconcile()`. */
export const WATCHDOG_EXIT_REVERT_FAILED = 11;

/**
 * The command that runs the watchdog: `watchdog-main.ts` through tsx's loader
 * when running from sources, the `confirm-watchdog.js` entry of the build when
 * running from dist/ (tsup entry `confirm-watchdog: src/plan/watchdog-main.ts`).
 */
export function watchdogCommand(): string[] {
  const here = fileURLToPath(import.meta.url);
  const dir = dirname(here);
  if (here.endsWith('.ts')) {
    const require = createRequire(import.meta.url);
    return [process.execPath, '--import', pathToFileURL(require.resolve('tsx')).href, join(dir, 'watchdog-main.ts')];
  }
  for (const name of ['confirm-watchdog.js', 'confirm-watchdog.mjs', 'confirm-watchdog.cjs']) {
    const p = join(dir, name);
    if (existsSync(p)) return [process.execPath, p];
  }
  throw new NetfenceError('NO_WATCHDOG', `confirm watchdog entry not found next to ${here}`, {
    hint: 'the package build must include the entry `confirm-watchdog: src/plan/watchdog-main.ts`',
  });
}

/** A started watchdog. */
export interface ArmedWatchdog {
  /** Its process (the applier learns the outcome from its exit status while it lives). */
  process: SpawnedProcess;
  /** pid AND start time, as written into the journal entry. */
  identity: Pick<ProcessIdentity, 'pid' | 'startTime'>;
}

/** Whether `apply()` starts a watchdog by default: on the real host (a FakeHost's machine lives in this process's memory). */
export function watchdogByDefault(): boolean {
  return currentHost() === realHost;
}

/**
 * Start the detached watchdog for journal entry `entryId` and wait until it
 * says `ready` (it has loaded the repair path and read its entry).
 * @internal used by the executor
 */
export async function armWatchdog(entryId: string, timeoutMs = 30_000): Promise<Result<ArmedWatchdog, NetfenceError>> {
  let argv: string[];
  try {
    argv = [...watchdogCommand(), entryId];
  } catch (e) {
    return Err(e as NetfenceError);
  }
  const p = startDetached(argv);
  const ready = await new Promise<string | undefined>((resolve) => {
    let buf = '';
    const done = (why: string | undefined) => {
      clearTimeout(t);
      resolve(why);
    };
    const t = setTimeout(() => done(`it did not report ready within ${timeoutMs} ms`), timeoutMs);
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) done(buf.startsWith('ready') ? undefined : `it said: ${buf.trim().slice(0, 200)}`);
    });
    void p.exited.then((x) => done(`it exited (${x.error?.message ?? (x.signal ?? `status ${x.code}`)})`));
    if (!p.stdout) done('no output pipe');
  });
  p.stdout?.destroy();
  const identity = p.pid !== undefined ? processIdentity(p.pid) : undefined;
  if (ready !== undefined || !identity) {
    p.kill('SIGKILL');
    return Err(new NetfenceError('NO_WATCHDOG', `the confirm watchdog (${argv.slice(-2).join(' ')}) could not be started: ${ready ?? 'it is gone'}`));
  }
  return Ok({ process: p, identity: { pid: identity.pid, startTime: identity.startTime } });
}

/** A plan applied with a confirm deadline that is still waiting for confirmation. */
export interface PendingConfirm {
  /** The journal entry id: pass it to {@link confirmApplied}. */
  id: string;
  /** The plan's owner. */
  owner: string;
  /** Its network namespace (undefined: the machine's own). */
  netns: string | undefined;
  /** Its owned tables (`family name`). */
  tables: string[];
  /** The deadline (wall-clock ISO time). */
  deadline: string;
  /** Milliseconds left (0 or less: the deadline passed, the revert is due). */
  remainingMs: number;
  /** The process that applied it, and whether it still runs. */
  applier: { pid: number; alive: boolean };
  /** The watchdog that reverts it at the deadline, and whether it still runs (undefined: none was started). */
  watchdog: { pid: number; alive: boolean } | undefined;
}

function pendingOf(e: ApplyJournalEntry, now: number): PendingConfirm | undefined {
  if (e.phase !== 'awaiting-confirm' || !e.confirm) return undefined;
  const w = e.confirm.watchdog;
  return {
    id: e.id,
    owner: e.owner,
    netns: e.netns,
    tables: e.tables.map((t) => tableKey(t.table)),
    deadline: e.confirm.deadline,
    remainingMs: e.confirm.deadlineMonoMs - now,
    applier: { pid: e.pid, alive: isAlive(e) },
    watchdog: w ? { pid: w.pid, alive: isAlive(w) } : undefined,
  };
}

/**
 * Plans applied with a confirm deadline that wait for confirmation (read from
 * the journal; every namespace unless `netns` is given), oldest first.
 */
export function pendingConfirms(options: { netns?: string | undefined } = {}): PendingConfirm[] {
  const now = monotonicMs();
  return readJournal()
    .filter((e) => options.netns === undefined || e.netns === options.netns)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
    .flatMap((e) => pendingOf(e, now) ?? []);
}

/** What {@link confirmApplied} confirmed. */
export interface ConfirmedPlan extends PendingConfirm {
  /** Whether the watchdog had exited when confirmApplied returned (it notices within 100 ms). */
  watchdogExited: boolean;
}

/**
 * Confirm a plan applied with a confirm deadline, from any process: the
 * journal entry is removed under the namespace lock, so the watchdog (and the
 * applier's own timer, if it still runs) find nothing to revert; the watchdog
 * exits. Without `id`, the single pending plan (of `netns`, if given) is confirmed.
 *
 * Errors: `NOT_FOUND` (nothing awaits confirmation, or not this id),
 * `CONFIRM_AMBIGUOUS` (no id and several are pending), `CONFIRM_EXPIRED` (the
 * deadline passed: the plan is being or was reverted), `LOCK_TIMEOUT`.
 */
export async function confirmApplied(id?: string, options: { netns?: string | undefined } = {}): Promise<Result<ConfirmedPlan, NetfenceError>> {
  if (options.netns !== undefined && !NetnsName.safeParse(options.netns).success) return Err(new ValidationError('confirm options', [{ path: 'netns', message: 'invalid namespace name' }]));
  if (id !== undefined && !/^[\w.-]+\.json$/.test(id)) return Err(new ValidationError('confirm', [{ path: 'id', message: 'not a journal entry id (apply-<pid>-<start>-<n>.json)' }]));
  let target = id;
  if (target === undefined) {
    const all = pendingConfirms(options);
    const open = all.filter((p) => p.remainingMs > 0);
    if (open.length === 0) {
      const hint = all.length > 0 ? `${all.length} plan(s) passed their deadline and are being reverted` : undefined;
      return Err(new NetfenceError(all.length > 0 ? 'CONFIRM_EXPIRED' : 'NOT_FOUND', `nothing awaits confirmation${options.netns ? ` in namespace ${options.netns}` : ''}`, hint ? { hint } : {}));
    }
    if (open.length > 1) {
      return Err(new NetfenceError('CONFIRM_AMBIGUOUS', `${open.length} plans await confirmation: ${open.map((p) => `${p.id} (${p.owner}${p.netns ? ` in ${p.netns}` : ''})`).join(', ')}`, { hint: 'give the id of the one to confirm' }));
    }
    target = open[0]!.id;
  }
  const first = readJournalEntry(target);
  if (!first || first.phase !== 'awaiting-confirm' || !first.confirm) return Err(new NetfenceError('NOT_FOUND', `no plan awaits confirmation under id ${target}`, { hint: 'netfence confirm --json lists nothing? it was confirmed or reverted already' }));
  if (options.netns !== undefined && first.netns !== options.netns) return Err(new NetfenceError('NOT_FOUND', `${target} belongs to ${first.netns ? `namespace ${first.netns}` : "the machine's own namespace"}, not ${options.netns}`));
  const r = await withLock(
    first.netns,
    async (): Promise<Result<PendingConfirm, NetfenceError>> => {
      const e = readJournalEntry(target);
      const p = e ? pendingOf(e, monotonicMs()) : undefined;
      if (!e || !p) return Err(new NetfenceError('NOT_FOUND', `no plan awaits confirmation under id ${target} (it was confirmed or reverted meanwhile)`));
      if (p.remainingMs <= 0) return Err(new NetfenceError('CONFIRM_EXPIRED', `too late: the deadline of ${target} (${e.owner}) passed ${-p.remainingMs} ms ago; the plan is being or was reverted`, { hint: 'apply it again' }));
      removeJournalEntry(target);
      return Ok(p);
    },
    (e) => Err(e),
    `confirm ${first.owner}`,
  );
  if (r.err) return Err(r.val);
  const w = first.confirm.watchdog;
  let exited = !w || !isAlive(w);
  for (let waited = 0; !exited && waited < 3 * WATCHDOG_POLL_MS + 1000; waited += 20) {
    await new Promise((res) => setTimeout(res, 20));
    exited = !isAlive(w!);
  }
  return Ok({ ...r.val, watchdog: r.val.watchdog ? { ...r.val.watchdog, alive: !exited } : undefined, watchdogExited: exited });
}
