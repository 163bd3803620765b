/**
 * `netfence reconcile [--netns NAME] [--dry-run] [--json] [--detach-persistent-xdp]`:
 * find what a dead netfence process left behind and remove it.
 */
import { reconcile } from '../../plan/reconcile.js';
import { EXIT, fail, parseCommand } from './common.js';
import type { CliCommand } from './types.js';

const usage = `usage: netfence reconcile [--netns NAME] [--dry-run] [--json] [--detach-persistent-xdp]

Read netfence's intent journal (/run/netfence/journal) and repair what processes
that died left behind: half-applied plans are undone (steps in reverse, owned
tables back to their previous state), interrupted XDP attaches are detached and
their pins unlinked, DpiBlocker steering rules without a reader are removed.
Entries of running processes and anything without a journal entry or an
ownership mark are never touched.

  --netns NAME               only entries of network namespace NAME
  --dry-run                  print what would be done, change nothing
  --json                     print the report as JSON (the ReconcileReport type) on stdout
  --detach-persistent-xdp    also detach completed XdpBlocklists whose process is gone

--netns may name a namespace that no longer exists: its entries are then
dropped. Run as root (the journal and the repairs need it).

Exit codes: 0 done (also when nothing was found) · 1 something could not be
repaired (the errors are listed) · 2 bad options.`;

/** `netfence reconcile`. */
export const reconcileCommand: CliCommand = {
  path: ['reconcile'],
  summary: 'remove what a dead netfence process left behind (half-applied plans, XDP pins, queue rules)',
  usage,
  async run(args) {
    const p = parseCommand('reconcile', usage, args, { netns: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, 'detach-persistent-xdp': { type: 'boolean' } });
    if (typeof p === 'number') return p;
    const values = p.values as { netns?: string; 'dry-run'?: boolean; json?: boolean; 'detach-persistent-xdp'?: boolean };
    const r = await reconcile({ netns: values.netns, dryRun: values['dry-run'], detachPersistentXdp: values['detach-persistent-xdp'] });
    if (r.err) return fail('reconcile', r.val);
    const rep = r.val;
    if (values.json) console.log(JSON.stringify(rep, null, 2));
    else {
      const verb = rep.dryRun ? 'would remove' : 'removed';
      console.log(`journal entries: ${rep.scanned} (${rep.live} of live processes, ${rep.kept} kept, ${rep.found.length} of dead processes)`);
      for (const f of rep.found) {
        console.log(`- ${f.kind} ${f.owner} (pid ${f.pid}${f.netns ? `, netns ${f.netns}` : ''}, died in ${f.phase})`);
        for (const a of f.actions) console.log(`    ${a.ok ? (rep.dryRun ? 'would' : 'done') : 'FAILED'} ${a.kind} ${a.target}${a.note ? ` — ${a.note}` : ''}`);
      }
      const m = rep.removed;
      console.log(`${verb}: ${m.stepsUndone} step(s) undone, ${m.tablesDeleted} table(s) deleted, ${m.tablesRestored} restored, ${m.xdpDetached} XDP program(s) detached, ${m.pinDirsRemoved} pin dir(s), ${m.queueRuleSets} queue rule set(s), ${m.probeNamespaces} probe namespace(s)`);
      for (const e of rep.errors) console.error(`error: ${e}`);
    }
    return rep.errors.length ? EXIT.failed : EXIT.ok;
  },
};
