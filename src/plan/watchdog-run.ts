/**
 * The confirm watchdog's logic (the process itself is `watchdog-main.ts`):
 * hold one journal entry until it is confirmed or its deadline passes, then
 * revert it through reconcile's per-entry repair path. Separate from the
 * entry point so that unit tests can drive it in-process on a FakeHost.
 * @module
 */
import { isAlive, monotonicMs, readJournalEntry } from './journal.js';
import { revertAwaitingConfirm, type ConfirmRevertOutcome } from './reconcile.js';
import { WATCHDOG_POLL_MS } from './watchdog.js';

/** How a watchdog ended. */
export interface WatchdogResult {
  /** `disarmed`: confirmed, rolled back or reverted by someone else (nothing to do); `reverted`: it reverted the plan; `failed`: the revert failed (the entry stays for reconcile()). */
  outcome: 'disarmed' | 'reverted' | 'failed';
  /** Milliseconds from the deadline to the end of the revert (reverted/failed only). */
  lateMs?: number | undefined;
  /** Problems of the last revert attempt. */
  errors: string[];
}

/** Options of {@link runWatchdog}. */
export interface WatchdogOptions {
  /** How often the entry is read (default {@link WATCHDOG_POLL_MS}). */
  pollMs?: number | undefined;
  /** Revert attempts before giving up (default 3; a lock timeout or a failed nft batch is retried). */
  attempts?: number | undefined;
  /** Progress messages (the process writes nothing: its output is closed). */
  log?: ((line: string) => void) | undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/**
 * Hold journal entry `id`: return `disarmed` as soon as it is gone or no
 * longer awaits confirmation; at its deadline (or at once, if the applier died
 * before writing one) revert it under the namespace lock.
 */
export async function runWatchdog(id: string, options: WatchdogOptions = {}): Promise<WatchdogResult> {
  const pollMs = options.pollMs ?? WATCHDOG_POLL_MS;
  const log = options.log ?? (() => undefined);
  let deadline: number | undefined;
  for (;;) {
    const e = readJournalEntry(id);
    if (!e || e.phase !== 'awaiting-confirm') {
      log(`entry ${id} ${e ? `is ${e.phase}` : 'is gone'}: disarmed`);
      return { outcome: 'disarmed', errors: [] };
    }
    if (e.confirm) {
      deadline = e.confirm.deadlineMonoMs;
      const left = deadline - monotonicMs();
      if (left <= 0) break;
      await sleep(Math.min(pollMs, left));
      continue;
    }
    // The applier is still arming us (it writes the deadline once we said ready).
    if (!isAlive(e)) {
      log(`applier ${e.pid} died before the deadline was written: reverting now`);
      break;
    }
    await sleep(pollMs);
  }
  const attempts = options.attempts ?? 3;
  let last: ConfirmRevertOutcome | undefined;
  const errors: string[] = [];
  for (let i = 0; i < attempts; i++) {
    const r = await revertAwaitingConfirm(id);
    if (r.err) {
      errors.push(r.val.message.split('\n')[0] ?? r.val.message);
      await sleep(500);
      continue;
    }
    last = r.val;
    const lateMs = deadline !== undefined ? monotonicMs() - deadline : undefined;
    if (last.outcome === 'nothing-to-do') return { outcome: 'disarmed', errors: [] };
    if (last.outcome === 'reverted') {
      log(`reverted ${id} ${lateMs ?? '?'} ms after the deadline`);
      return { outcome: 'reverted', lateMs, errors: last.report.errors };
    }
    errors.push(...last.report.errors);
    await sleep(500);
  }
  return { outcome: 'failed', lateMs: deadline !== undefined ? monotonicMs() - deadline : undefined, errors };
}
