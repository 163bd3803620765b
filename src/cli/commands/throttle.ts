/**
 * `netfence throttle backends [--json] [--netns NAME]`: the Throttler's backend
 * table — priority, availability on this host and why, matches, limitations.
 */
import { PER_PROCESS_NOTE, Throttler } from '../../throttle/throttler.js';
import { EXIT, fail, netnsExists, parseCommand, table, unknownNetns } from './common.js';
import type { CliCommand } from './types.js';

const usage = `usage: netfence throttle backends [--json] [--netns NAME]

List the Throttler's backends, best first: whether each can be used here (and
why not), which directions and matches it handles and what it cannot do.

  --json         print { backends: [...], note } as JSON on stdout
  --netns NAME   decide for network namespace NAME (under /run/netns)

Exit codes: 0 table printed (also when no backend is available) · 1 the
host could not be probed · 2 bad options (an unknown --netns).`;

/** `netfence throttle backends`. */
export const throttleBackendsCommand: CliCommand = {
  path: ['throttle', 'backends'],
  summary: 'list the bandwidth-limit backends, their availability here and why',
  usage,
  async run(args) {
    const p = parseCommand('throttle backends', usage, args, { json: { type: 'boolean' }, netns: { type: 'string' } });
    if (typeof p === 'number') return p;
    const values = p.values as { json?: boolean; netns?: string };
    if (!netnsExists(values.netns)) return unknownNetns('throttle backends', values.netns!);
    let t: Throttler;
    try {
      t = new Throttler(values.netns ? { netns: values.netns } : undefined);
    } catch (e) {
      return fail('throttle backends', e);
    }
    const rows = await t.listBackends();
    if (values.json) {
      console.log(JSON.stringify({ backends: rows, note: PER_PROCESS_NOTE }, null, 2));
      return EXIT.ok;
    }
    console.log(table(['backend', 'prio', 'directions', 'kind', 'available', 'why'], rows.map((r) => [r.name, r.priority, r.directions.join('+'), r.kind, r.available ? 'yes' : 'no', r.reason])));
    console.log('');
    for (const r of rows) {
      console.log(`${r.name}: matches ${r.matches}`);
      for (const l of r.limitations) console.log(`  - ${l}`);
    }
    console.log(`\nnote: ${PER_PROCESS_NOTE}`);
    return EXIT.ok;
  },
};
