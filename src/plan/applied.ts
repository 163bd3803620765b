/**
 * Taking a plan back: the record of what an apply did ({@link Applied}), the
 * restore (steps undone in reverse, owned tables put back in one nft
 * transaction) and the {@link AppliedPlan} handed to the caller (rollback,
 * confirm, the confirm timer, a watchdog's verdict).
 * @module
 */
import { ApplyError, NetfenceError } from '../errors.js';
import { nftApply } from '../host/nft.js';
import { Err, Ok, type Result } from '../result.js';
import { undoStep } from './actions.js';
import type { AppliedPlan, ApplyOptions } from './executor.js';
import { readJournalEntry, monotonicMs, type ApplyJournalEntry, type JournalHandle } from './journal.js';
import type { NftBatchFeatures } from './nft-features.js';
import { tableKey } from './ownership.js';
import { LONG_MS, withLock } from './preflight.js';
import { restoreCommands, type TableSnapshot } from './snapshot.js';
import type { Plan, Step } from './types.js';
import { WATCHDOG_EXIT_DISARMED, WATCHDOG_EXIT_REVERTED, type ArmedWatchdog } from './watchdog.js';

/** What an apply did, so that it can be taken back. */
export interface Applied {
  plan: Plan;
  tables: TableSnapshot[];
  nftApplied: boolean;
  /** Steps whose `do` ran (fully or partly), in order. */
  steps: Step[];
  /** The journal entry describing this apply (removed once complete or undone); see journal.ts. */
  journal?: JournalHandle<ApplyJournalEntry> | undefined;
  /** What the nft in use offers (destroy for the restore batch). */
  features: NftBatchFeatures;
  /** The detached watchdog holding the confirm deadline, if any. */
  watchdog?: ArmedWatchdog | undefined;
  /** The confirm deadline on CLOCK_MONOTONIC (ms), if any. */
  deadlineMonoMs?: number | undefined;
  /** With `ApplyOptions.echo`: the plan's commands as nft echoed them. */
  echo?: readonly unknown[] | undefined;
}

/** Undo steps in reverse, then put the owned tables back in one nft transaction. */
export async function restore(a: Applied): Promise<{ restored: boolean; errors: NetfenceError[] }> {
  const errors: NetfenceError[] = [];
  for (const s of [...a.steps].reverse()) errors.push(...(await undoStep(s, a.plan.netns)));
  a.steps = []; // never undo a step twice, even if the nft part must be retried
  if (a.nftApplied) {
    const { commands, unrestorable } = restoreCommands(a.tables, a.features);
    for (const t of unrestorable) {
      errors.push(
        new NetfenceError('NO_SNAPSHOT', `table ${tableKey(t)} existed before the apply but no snapshot was taken, so it was left as the plan made it`, {
          hint: "apply with { snapshot: 'always' } when the plan changes a table that already exists and you may need to roll it back",
        }),
      );
    }
    const r = await nftApply(commands, { netns: a.plan.netns, what: 'nft restore', timeoutMs: LONG_MS });
    if (r.err) errors.push(r.val);
  }
  return { restored: errors.length === 0, errors };
}

export class AppliedPlanImpl implements AppliedPlan {
  private st: 'applied' | 'confirmed' | 'rolled-back' = 'applied';
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<Result<void, ApplyError>> | undefined;

  constructor(
    private readonly applied: Applied,
    private readonly options: ApplyOptions,
    readonly timings: Readonly<Record<string, number>>,
  ) {
    if (options.confirmWithinMs !== undefined) {
      const left = applied.deadlineMonoMs !== undefined ? Math.max(0, applied.deadlineMonoMs - monotonicMs()) : options.confirmWithinMs;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.revert('confirm-timeout').then((r) => {
          if (r.err) options.onConfirmTimeout?.(r.val);
          else if (this.st === 'rolled-back') options.onConfirmTimeout?.(new ApplyError('confirm-timeout', `not confirmed within ${options.confirmWithinMs} ms; the plan was reverted`, { restored: true }));
          // else: confirmed from another process (confirmApplied) before the deadline
        });
      }, left);
      // The watchdog reverts without this process: its timer must not keep it alive (the CLI exits after applying).
      if (applied.watchdog) this.timer.unref();
    }
  }

  get echo(): readonly unknown[] | undefined {
    return this.applied.echo;
  }

  get plan(): Plan {
    return this.applied.plan;
  }

  get id(): string | undefined {
    const held = (this.options.confirmWithinMs !== undefined && this.st === 'applied') || (this.options.whileAlive && this.st !== 'rolled-back');
    return held ? this.applied.journal?.entry.id : undefined;
  }

  get confirmDeadline(): Date | undefined {
    const c = this.applied.journal?.entry.confirm;
    return c ? new Date(c.deadline) : undefined;
  }

  get watchdogPid(): number | undefined {
    return this.applied.watchdog?.identity.pid;
  }

  get state(): 'applied' | 'confirmed' | 'rolled-back' {
    return this.st;
  }

  confirm(): void {
    if (this.st !== 'applied' || this.pending) return;
    // Too late: the revert is due (this process's timer or the watchdog is about to take the plan back).
    if (this.applied.deadlineMonoMs !== undefined && monotonicMs() >= this.applied.deadlineMonoMs) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.st = 'confirmed';
    // Removing the entry disarms the watchdog: it notices within WATCHDOG_POLL_MS and exits.
    if (!this.options.whileAlive) this.applied.journal?.remove();
    else this.applied.journal?.update({ phase: 'in-effect', confirm: undefined });
  }

  rollback(): Promise<Result<void, ApplyError>> {
    return this.revert('rollback');
  }

  /**
   * With a watchdog, the entry may have been taken by another process: the
   * watchdog reverted it at the deadline, or `confirmApplied()` confirmed it.
   * The watchdog's exit status says which (it is this process's child).
   */
  private async takenElsewhere(): Promise<'reverted' | 'confirmed' | undefined> {
    const w = this.applied.watchdog;
    const id = this.applied.journal?.entry.id;
    if (!w || !id || this.st !== 'applied' || readJournalEntry(id)) return undefined;
    const exit = await Promise.race([w.process.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000).unref())]);
    if (exit?.code === WATCHDOG_EXIT_DISARMED) return 'confirmed';
    if (exit?.code === WATCHDOG_EXIT_REVERTED) return 'reverted';
    return undefined;
  }

  private revert(phase: string): Promise<Result<void, ApplyError>> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.st === 'rolled-back') return Promise.resolve(Ok(undefined));
    if (this.pending) return this.pending;
    const lockFailed = (e: NetfenceError): Result<void, ApplyError> => {
      this.pending = undefined;
      return Err(new ApplyError(phase, `nothing rolled back: ${e.message}`, { restored: false, cause: e }));
    };
    this.pending = withLock(this.applied.plan.netns, async () => {
      const elsewhere = await this.takenElsewhere();
      if (elsewhere === 'reverted' || (elsewhere === 'confirmed' && phase === 'confirm-timeout')) {
        // the watchdog reverted it (nothing left to do), or another process confirmed it (keep it)
        this.st = elsewhere === 'reverted' ? 'rolled-back' : 'confirmed';
        this.applied.steps = [];
        this.pending = undefined;
        return Ok(undefined);
      }
      const r = await restore(this.applied);
      if (r.restored) {
        this.applied.journal?.remove();
        this.st = 'rolled-back';
        this.pending = undefined;
        return Ok(undefined);
      }
      this.pending = undefined;
      const msg = `${phase === 'confirm-timeout' ? `not confirmed within ${this.options.confirmWithinMs} ms; ` : ''}rollback incomplete: ${r.errors.map((e) => e.message.split('\n')[0]).join('; ')}`;
      return Err(new ApplyError(phase, msg, { restored: false, restoreErrors: r.errors }));
    }, lockFailed, `${phase} ${this.applied.plan.owner}`);
    return this.pending;
  }
}
