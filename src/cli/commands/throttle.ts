/**
 * `netfence throttle backends [--json] [--netns NAME]`: the Throttler's backend
 * table — priority, availability on this host and why, matches, limitations.
 */
import { parseArgs } from 'node:util';
import { ValidationError } from '../../errors.js';
import { PER_PROCESS_NOTE, Throttler } from '../../throttle/throttler.js';
import type { CliCommand } from './types.js';

const usage = `usage: netfence throttle backends [--json] [--netns NAME]

List the Throttler's backends, best first: whether each can be used here (and
why not), which directions and matches it handles and what it cannot do.

  --json         print the rows as JSON
  --netns NAME   decide for network namespace NAME (under /run/netns)

Exit code: 0 on success, 2 on invalid options.`;

/** `netfence throttle backends`. */
export const throttleBackendsCommand: CliCommand = {
  path: ['throttle', 'backends'],
  summary: 'list the bandwidth-limit backends, their availability here and why',
  usage,
  async run(args) {
    let values: { json?: boolean; netns?: string };
    try {
      ({ values } = parseArgs({ args, options: { json: { type: 'boolean' }, netns: { type: 'string' } }, strict: true, allowPositionals: false }));
    } catch (e) {
      console.error(`netfence throttle backends: ${(e as Error).message}\n\n${usage}`);
      return 2;
    }
    let t: Throttler;
    try {
      t = new Throttler(values.netns ? { netns: values.netns } : undefined);
    } catch (e) {
      if (e instanceof ValidationError) {
        console.error(e.message);
        return 2;
      }
      throw e;
    }
    const rows = await t.listBackends();
    if (values.json) {
      console.log(JSON.stringify({ backends: rows, note: PER_PROCESS_NOTE }, null, 2));
      return 0;
    }
    const table = rows.map((r) => [r.name, String(r.priority), r.directions.join('+'), r.kind, r.available ? 'yes' : 'no', r.reason]);
    const head = ['backend', 'prio', 'directions', 'kind', 'available', 'why'];
    const w = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ');
    console.log(line(head));
    for (const r of table) console.log(line(r));
    console.log('');
    for (const r of rows) {
      console.log(`${r.name}: matches ${r.matches}`);
      for (const l of r.limitations) console.log(`  - ${l}`);
    }
    console.log(`\nnote: ${PER_PROCESS_NOTE}`);
    return 0;
  },
};
