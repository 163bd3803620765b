/**
 * Entry point of the confirm watchdog process (`node confirm-watchdog.js ID`),
 * started detached by the executor for a plan applied with `confirmWithinMs`
 * (see watchdog.ts). It loads the repair path, checks that its journal entry
 * exists, prints `ready` on its standard output (the applier waits for that
 * line, then closes the pipe), and holds the entry until it is confirmed or
 * reverted. Exit status: 0 disarmed, 10 reverted, 11 revert failed (the entry
 * stays for `reconcile()`), 2 bad arguments or no such entry.
 * @module
 */
import { appendFileSync } from 'node:fs';
import { readJournalEntry } from './journal.js';
import { runWatchdog } from './watchdog-run.js';
import { WATCHDOG_EXIT_DISARMED, WATCHDOG_EXIT_REVERT_FAILED, WATCHDOG_EXIT_REVERTED } from './watchdog.js';

const id = process.argv[2];
if (!id || !readJournalEntry(id)) {
  process.stdout.write(`no journal entry ${id ?? '(none given)'}\n`);
  process.exit(2);
}
// Nothing to say after "ready": the pipe's reader goes away with the applier.
process.stdout.write('ready\n');
process.stdout.on('error', () => undefined);
const debug = process.env.NETFENCE_WATCHDOG_LOG;
const log = debug
  ? (line: string) => {
      try {
        appendFileSync(debug, `${new Date().toISOString()} watchdog ${process.pid}: ${line}\n`);
      } catch {
        // a debugging aid only
      }
    }
  : undefined;
// no top-level await: the build also emits this entry as CommonJS
void runWatchdog(id, { log }).then(
  (r) => {
    if (log) log(`${r.outcome}${r.lateMs !== undefined ? ` late=${r.lateMs}ms` : ''}${r.errors.length ? ` errors: ${r.errors.join('; ')}` : ''}`);
    process.exit(r.outcome === 'reverted' ? WATCHDOG_EXIT_REVERTED : r.outcome === 'failed' ? WATCHDOG_EXIT_REVERT_FAILED : WATCHDOG_EXIT_DISARMED);
  },
  (e: unknown) => {
    if (log) log(`crashed: ${e instanceof Error ? e.stack : String(e)}`);
    process.exit(WATCHDOG_EXIT_REVERT_FAILED);
  },
);
