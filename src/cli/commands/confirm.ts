/**
 * `netfence confirm [ID] [--netns NS] [--list] [--json]`: keep a plan applied
 * with a confirm deadline (`netfence apply FILE --confirm SECONDS`, or
 * `apply(plan, { confirmWithinMs })` in a program), from any process.
 */
import { NetfenceError } from '../../errors.js';
import { confirmApplied, pendingConfirms, type PendingConfirm } from '../../plan/watchdog.js';
import { EXIT, fail, parseCommand, printError, table } from './common.js';
import type { CliCommand } from './types.js';

const usage = `usage: netfence confirm [ID] [--netns NAME] [--list] [--json]

Keep a plan that was applied with a confirm deadline (netfence apply FILE
--confirm SECONDS): without confirmation a detached watchdog process reverts it
at the deadline, even when the process that applied it is gone. With no ID the
single plan awaiting confirmation (in --netns NAME, if given) is confirmed.

  ID             the plan's id (printed by apply; apply-<pid>-<start>-<n>.json)
  --netns NAME   only plans applied in network namespace NAME
  --list         list the plans awaiting confirmation, confirm nothing
  --json         print the result as JSON on stdout

Run as root (the journal in /run/netfence and the namespace lock need it).

Exit codes: 0 confirmed (or listed) · 1 failed on the host (e.g. the namespace
lock could not be taken) · 2 bad options, or several plans await confirmation
and no ID was given · 3 nothing to confirm: no such plan, or its deadline passed
(it is being or was reverted).`;

function rows(list: PendingConfirm[]): (string | number)[][] {
  return list.map((p) => [
    p.id,
    p.owner,
    p.netns ?? '(host)',
    p.remainingMs > 0 ? `${(p.remainingMs / 1000).toFixed(1)} s` : 'passed',
    p.watchdog ? `${p.watchdog.pid}${p.watchdog.alive ? '' : ' (gone)'}` : 'none',
    p.tables.join(', '),
  ]);
}

const header = ['ID', 'OWNER', 'NETNS', 'LEFT', 'WATCHDOG', 'TABLES'];

/** `netfence confirm`. */
export const confirmCommands: CliCommand[] = [
  {
    path: ['confirm'],
    summary: 'keep a plan applied with --confirm (else its watchdog reverts it at the deadline)',
    usage,
    async run(args) {
      const p = parseCommand('confirm', usage, args, { netns: { type: 'string' }, list: { type: 'boolean' }, json: { type: 'boolean' } }, { max: 1 });
      if (typeof p === 'number') return p;
      const values = p.values as { netns?: string; list?: boolean; json?: boolean };
      if (values.list) {
        const list = pendingConfirms({ netns: values.netns });
        if (values.json) console.log(JSON.stringify(list, null, 2));
        else console.log(list.length ? table(header, rows(list)) : 'nothing awaits confirmation');
        return EXIT.ok;
      }
      const r = await confirmApplied(p.positionals[0], { netns: values.netns });
      if (r.err) {
        const code = r.val instanceof NetfenceError ? r.val.code : undefined;
        if (code === 'NOT_FOUND' || code === 'CONFIRM_EXPIRED') {
          printError('confirm', r.val, code === 'CONFIRM_EXPIRED' ? 'Too late to keep it: apply it again (and confirm in time).' : 'See what waits with `netfence confirm --list`.');
          if (values.json) console.log(JSON.stringify({ confirmed: false, code, message: r.val.message.split('\n')[0] }));
          return EXIT.notConfirmed;
        }
        if (code === 'CONFIRM_AMBIGUOUS') {
          printError('confirm', r.val, 'Give the ID of the plan to keep (`netfence confirm --list` shows them).');
          return EXIT.usage;
        }
        return fail('confirm', r.val);
      }
      const c = r.val;
      if (values.json) console.log(JSON.stringify({ confirmed: true, ...c }, null, 2));
      else {
        console.log(`confirmed ${c.id} (${c.owner}${c.netns ? ` in ${c.netns}` : ''}, ${(c.remainingMs / 1000).toFixed(1)} s before its deadline); it stays in effect`);
        console.log(c.watchdog ? `watchdog ${c.watchdog.pid} ${c.watchdogExited ? 'exited' : 'still running (it exits on its next look at the journal)'}` : 'no watchdog was running');
      }
      return EXIT.ok;
    },
  },
];
