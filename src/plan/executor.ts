/**
 * The plan executor: `check`, `apply` (one transaction, verified, with
 * rollback), `AppliedPlan.rollback` / `confirm` (confirm-or-revert, like
 * iptables-apply) and `destroy`. It touches only the tables a plan owns and
 * refuses tables created by anybody else.
 * @module
 */
import { ApplyError, type CommandError, type NetfenceError, ValidationError } from '../errors.js';
import { currentHost } from '../host/host.js';
import { nftApply, type NftRenderer } from '../host/nft.js';
import { renderCommand } from '../nft/render.js';
import { Err, Ok, type Result } from '../result.js';
import { runStep } from './actions.js';
import { AppliedPlanImpl, restore, type Applied } from './applied.js';
import { buildBatch, mapNftError } from './batch.js';
import { faultAt } from './faults.js';
import { journalBegin, journalDisabledReason, monotonicMs, type ApplyJournalEntry } from './journal.js';
import { nftBatchFeatures } from './nft-features.js';
import { OwnershipError, probeOwnership, tableKey, type TableOwnership } from './ownership.js';
import { needsSnapshot, preflight, withLock } from './preflight.js';
import type { Plan, TableRef } from './types.js';
import { validatePlan } from './validate-plan.js';
import { armWatchdog, watchdogByDefault } from './watchdog.js';

export { planBatch, type PlanBatch } from './batch.js';
export { executorStats } from './preflight.js';
export { destroy, type DestroyOptions } from './destroy.js';
export { runAction } from './actions.js';

/** Options for {@link apply}. */
export interface ApplyOptions {
  /**
   * Called after the plan is applied and verified; resolve `false` (or throw)
   * to have everything restored. E.g. "can I still reach the database?".
   */
  healthCheck?: () => Promise<boolean>;
  /**
   * Revert by itself unless {@link AppliedPlan.confirm} (or `confirmApplied(id)`
   * from any process) is called within this many milliseconds (like
   * iptables-apply). The revert is armed OUTSIDE this process: a detached
   * watchdog process holds the plan's journal entry and reverts it at the
   * deadline even if this process was killed (see {@link ApplyOptions.watchdog}).
   * The deadline starts once the watchdog is armed, when `apply()` returns.
   * This process's own timer also reverts (whichever comes first wins, under
   * the namespace lock); with a watchdog it does not keep the process alive,
   * without one it does.
   */
  confirmWithinMs?: number;
  /**
   * With {@link ApplyOptions.confirmWithinMs}: start the detached watchdog
   * process that reverts at the deadline without this process. Default: `true`
   * on the real host, `false` on a FakeHost (its machine lives in this
   * process). With `true`, an apply whose watchdog cannot be armed (no
   * writable journal under /run, the watchdog entry missing from the build)
   * fails and is restored; `false` keeps only this process's timer (a killed
   * process then leaves the plan to `reconcile()`).
   */
  watchdog?: boolean;
  /**
   * When to list the owned tables before applying, so that they can be
   * restored exactly. `auto` (default): when the plan has non-nft steps, a
   * health check or a confirm timer, or replaces/flushes a whole table (so a
   * rollback can bring the previous table back) — a small incremental nft
   * batch is atomic by itself, so adding one element to a huge set does not
   * list the set. `always`: also for
   * pure nft plans, so that {@link AppliedPlan.rollback} can restore tables that
   * existed before. `never`: no listing; a failure can then only delete tables
   * that did not exist before.
   */
  snapshot?: 'auto' | 'always' | 'never';
  /** Called when the confirm timer expired and the plan was reverted (with how well that went). */
  onConfirmTimeout?: (error: ApplyError) => void;
  /** Renderer of nft commands for error messages (default: netfence's `renderCommand`). */
  render?: NftRenderer;
  /**
   * The plan holds only while this process lives (DpiBlocker: queue rules whose
   * readers are this process's workers): its journal entry stays, phase
   * `in-effect`, until {@link AppliedPlan.rollback}, so that `reconcile()` takes
   * the plan back after the process died.
   */
  whileAlive?: boolean;
  /**
   * Have nft echo what it committed (`nft -e`): {@link AppliedPlan.echo} then
   * holds each command of `plan.nft` as the kernel took it, with the handles
   * of added rules, chains and objects, so a caller can keep them instead of
   * listing the table later. For small plans (the echo repeats every element
   * of the batch). Ignored on a host that cannot echo (`echo` stays undefined).
   */
  echo?: boolean;
  /**
   * Where the host can, a small nft batch runs inside this process
   * (libnftables, no nft process; see host/libnftables.ts), synchronously:
   * the event loop waits for nft. `false` keeps it off the event loop — on
   * netfence's libnftables thread, or in an nft process where the host has no
   * usable library — for changes next to large tables that nft must read
   * first (SmartProxy route tables: a proxy's connections must not wait).
   * Default `true`.
   */
  inProcess?: boolean;
}

/** A plan that is in effect; take it back with {@link AppliedPlan.rollback}. */
export interface AppliedPlan {
  /** The plan that was applied. */
  readonly plan: Plan;
  /**
   * Its journal entry id while it awaits confirmation (or is held
   * `whileAlive`); another process confirms it with `confirmApplied(id)` /
   * `netfence confirm ID`. Undefined for a plan without an entry.
   */
  readonly id: string | undefined;
  /** With {@link ApplyOptions.confirmWithinMs}: when it reverts unless confirmed. */
  readonly confirmDeadline: Date | undefined;
  /** The pid of the detached watchdog holding the confirm deadline (undefined: none). */
  readonly watchdogPid: number | undefined;
  /**
   * Keep the plan: stops the confirm timer and disarms the watchdog (its entry
   * is removed; it exits). No effect once rolled back, or once the deadline
   * has passed (the revert is then due).
   */
  confirm(): void;
  /**
   * Take back everything it applied: steps undone in reverse, owned tables
   * restored to their pre-apply snapshot (or deleted when they did not exist).
   * Calling it again after success is a no-op.
   */
  rollback(): Promise<Result<void, ApplyError>>;
  /** `applied` (awaiting confirm or in effect), `confirmed`, or `rolled-back`. */
  readonly state: 'applied' | 'confirmed' | 'rolled-back';
  /** How long each phase took, in ms (nft, steps, verify, health-check, total). */
  readonly timings: Readonly<Record<string, number>>;
  /**
   * With {@link ApplyOptions.echo}: the commands of `plan.nft` as nft echoed
   * them after the commit (same order and length; added objects carry their
   * `handle`). Undefined without `echo` or on a host that cannot echo.
   */
  readonly echo: readonly unknown[] | undefined;
}

// ---------------------------------------------------------------------------
// Public API.

/**
 * Validate a plan and have the kernel check its nft part without committing
 * anything (`nft -c`). Also refuses plans that would touch a table that
 * exists but is not owned by `plan.owner`. Steps are validated, not run.
 */
export async function check(plan: Plan, options: { render?: NftRenderer } = {}): Promise<Result<void, NetfenceError>> {
  const v = validatePlan(plan);
  if (v.err) return Err(v.val);
  const [pf, features] = await Promise.all([preflight(plan.tables, plan.owner, plan.netns, false), nftBatchFeatures()]);
  if (pf.err) return Err(pf.val);
  const batch = buildBatch(plan, features);
  const r = await nftApply(batch.commands, { netns: plan.netns, check: true, render: options.render ?? renderCommand, what: 'nft check' });
  if (r.err) return Err(mapNftError(r.val, batch.offset, plan.nft.length));
  return Ok(undefined);
}

/**
 * Apply a plan as one transaction: snapshot the owned tables (when needed,
 * see {@link ApplyOptions.snapshot}), apply the nft part as a single
 * `nft -j -f -`, run the steps in order, verify by listing back, run the
 * health check. If a step, the verification or the health check fails, the
 * applied steps are undone in reverse and the owned tables are restored in one
 * nft transaction; the {@link ApplyError} says which phase failed and whether
 * the restore was complete. Nothing is touched when validation, ownership or
 * the nft batch fails (the batch is atomic).
 */
export async function apply(plan: Plan, options: ApplyOptions = {}): Promise<Result<AppliedPlan, ApplyError>> {
  const v = validatePlan(plan);
  if (v.err) return Err(new ApplyError('validate', `plan refused, nothing applied: ${v.val.message}`, { restored: true, cause: v.val }));
  if (options.confirmWithinMs !== undefined && !(Number.isFinite(options.confirmWithinMs) && options.confirmWithinMs >= 0 && options.confirmWithinMs <= 2 ** 31 - 1)) {
    const e = new ValidationError('apply options', [{ path: 'confirmWithinMs', message: 'must be a number of milliseconds from 0 to 2147483647' }]);
    return Err(new ApplyError('validate', e.message, { restored: true, cause: e }));
  }
  return withLock(plan.netns, () => applyLocked(plan, options), (e) => Err(new ApplyError('lock', `nothing applied: ${e.message}`, { restored: true, cause: e })), `apply ${plan.owner}`);
}

async function applyLocked(plan: Plan, options: ApplyOptions): Promise<Result<AppliedPlan, ApplyError>> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const mark = (k: string, since: number): number => {
    const now = performance.now();
    timings[k] = Math.round((now - since) * 100) / 100;
    return now;
  };
  const snap = needsSnapshot(plan, options);
  const [pf, features] = await Promise.all([preflight(plan.tables, plan.owner, plan.netns, snap), nftBatchFeatures()]);
  if (pf.err) {
    const phase = pf.val instanceof OwnershipError ? 'ownership' : 'snapshot';
    return Err(new ApplyError(phase, `nothing applied: ${pf.val.message}`, { restored: true, cause: pf.val }));
  }
  let t = mark('snapshot', t0);
  const applied: Applied = { plan, tables: pf.val.tables, nftApplied: false, steps: [], features };
  // Record the intent before touching the host, so reconcile() can repair a crash mid-apply.
  // A plain nft plan needs no entry: its batch is atomic by itself.
  if (plan.steps.length > 0 || options.healthCheck !== undefined || options.confirmWithinMs !== undefined || options.whileAlive) {
    applied.journal = journalBegin<ApplyJournalEntry>({
      kind: 'apply',
      owner: plan.owner,
      netns: plan.netns,
      tables: pf.val.tables.map((s) => ({ table: s.table, existed: s.existed, listing: s.listing })),
      steps: plan.steps,
      stepsStarted: 0,
      phase: 'prepared',
    });
  }

  const fail = async (phase: string, message: string, cause?: unknown): Promise<Result<AppliedPlan, ApplyError>> => {
    const r = await restore(applied);
    if (r.restored) applied.journal?.remove();
    const how = r.restored ? 'the previous state was restored' : `RESTORE INCOMPLETE (${r.errors.length} problem(s)): ${r.errors.map((e) => e.message.split('\n')[0]).join('; ')}`;
    return Err(new ApplyError(phase, `${message}; ${how}`, { restored: r.restored, restoreErrors: r.errors, cause }));
  };

  const batch = buildBatch(plan, features);
  if (batch.commands.length > 0) {
    // fault injection (tests): the kernel gets the batch plus one command it must reject
    const commands = faultAt('nft') ? [...batch.commands, { add: { chain: { family: 'inet', table: 'netfence_fault_injected', name: 'x' } } }] : batch.commands;
    const nftOptions = { netns: plan.netns, render: options.render ?? renderCommand, what: 'nft apply' };
    const host = currentHost();
    const special = (options.echo === true || options.inProcess === false) && host.nft.transact !== undefined;
    const r = special ? await host.nft.transact!(commands, { ...nftOptions, echo: options.echo, inProcess: options.inProcess }) : await nftApply(commands, nftOptions);
    if (special && options.echo && r.ok) {
      const echoed = r.val as unknown[];
      applied.echo = echoed.length === commands.length ? echoed.slice(batch.offset, batch.offset + plan.nft.length) : undefined;
    }
    if (r.err) {
      applied.journal?.remove();
      const e = mapNftError(r.val, batch.offset, plan.nft.length);
      const which = e.failure.failedIndex !== undefined ? ` (plan.nft[${e.failure.failedIndex}], shown below)` : ''; // the command text once: it is in e.message
      return Err(new ApplyError('nft', `nft rejected the batch${which}; nothing was applied (the batch is atomic)\n${e.message}`, { restored: true, cause: e }));
    }
    applied.nftApplied = true;
  }
  t = mark('nft', t);

  for (const [i, step] of plan.steps.entries()) {
    applied.journal?.update({ phase: 'steps', stepsStarted: i + 1 });
    const r = await runStep(step, plan.netns, i);
    // A step that failed on its first action changed nothing: do not undo it (its undo
    // might remove something that existed before). A partly done step is undone.
    if (r.done > 0 || !r.error) applied.steps.push(step);
    if (r.error) return fail(step.id, `step "${step.id}" (${step.description}) failed: ${r.error.message}`, r.error);
  }
  t = mark('steps', t);

  // Verify: each owned table is there with our mark (or gone, if the plan deletes it).
  // The committed batch itself adds every table and its mark (or deletes the table): a
  // pure nft plan without a snapshot is verified by its commit, and nothing after the
  // batch can fail. Steps act outside the batch, and with a snapshot a failure can still
  // be undone: there the kernel is asked again (netlink, ~0.1 ms per table).
  if (plan.steps.length > 0 || snap) {
    applied.journal?.update({ phase: 'verify' });
    if (faultAt('verify')) return fail('verify', 'verification failed: fault injected');
    const found = await Promise.all(plan.tables.map((tb) => probeOwnership(tb, plan.owner, plan.netns)));
    const wrong: string[] = [];
    for (let i = 0; i < plan.tables.length; i++) {
      const tb = plan.tables[i] as TableRef;
      const f = found[i] as Result<TableOwnership, CommandError>;
      if (f.err) return fail('verify', `could not verify table ${tableKey(tb)}: ${f.val.message}`, f.val);
      const want: TableOwnership = (batch.expectPresent.get(tableKey(tb)) ?? true) ? 'owned' : 'absent';
      if (f.val !== want) wrong.push(`${tableKey(tb)} is ${f.val === 'absent' ? 'missing' : f.val === 'owned' ? 'still there' : 'there without our mark'}`);
    }
    if (wrong.length) return fail('verify', `verification failed: ${wrong.join(', ')}`);
    t = mark('verify', t);
  }

  if (options.healthCheck) {
    applied.journal?.update({ phase: 'health-check' });
    let ok = false;
    let cause: unknown;
    try {
      ok = !faultAt('health-check') && (await options.healthCheck()) === true;
    } catch (e) {
      cause = e;
    }
    if (!ok) return fail('health-check', cause ? `health check threw: ${(cause as Error)?.message ?? String(cause)}` : 'health check returned false', cause);
    mark('health-check', t);
  }
  // With a confirm timer the entry stays until confirm() or rollback, held by a detached watchdog
  // that reverts it at the deadline even if this process dies (watchdog.ts).
  if (options.confirmWithinMs !== undefined) {
    applied.journal?.update({ phase: 'awaiting-confirm' });
    if (options.watchdog ?? watchdogByDefault()) {
      const id = applied.journal?.entry.id;
      const tw = performance.now();
      const w = id ? await armWatchdog(id) : undefined;
      mark('watchdog', tw);
      if (!w || w.err) {
        const why = w?.err ? w.val.message : `the journal is off (${journalDisabledReason() ?? 'no entry was written'})`;
        return fail('watchdog', `the confirm deadline could not be armed outside this process: ${why}`, w?.val);
      }
      applied.watchdog = w.val;
    }
    const deadlineMonoMs = monotonicMs() + options.confirmWithinMs;
    applied.journal?.update({
      confirm: { withinMs: options.confirmWithinMs, deadline: new Date(Date.now() + options.confirmWithinMs).toISOString(), deadlineMonoMs, watchdog: applied.watchdog?.identity },
    });
    applied.deadlineMonoMs = deadlineMonoMs;
  } else if (options.whileAlive) applied.journal?.update({ phase: 'in-effect' });
  else applied.journal?.remove();
  mark('total', t0);
  return Ok(new AppliedPlanImpl(applied, options, timings));
}
