/**
 * `netfence metrics [--netns NS] [--json]`: every counter of what netfence
 * owns in a namespace, read from the kernel (src/metrics: netnsMetrics), in
 * the Prometheus text format. This file only renders.
 */
import { netnsMetrics } from '../../metrics/netns.js';
import { toPrometheusText } from '../../metrics/text.js';
import { EXIT, fail, netnsExists, parseCommand, printError, unknownNetns } from './common.js';
import type { CliCommand } from './types.js';

const USAGE = `usage: netfence metrics [--netns NS] [--json] [--max-entries N] [--max-set-elements N]

Every counter of what netfence owns in a network namespace, read from the
kernel (what every process put there), in the Prometheus text exposition
format 0.0.4: rule and named counters and set sizes of owned nft tables
(netfence_nft_*), Throttler limits (netfence_throttle_*), XDP blocklists
running there, totals and per entry (netfence_xdp_*), DpiBlocker steering and
the kernel's NFQUEUE statistics (netfence_dpi_steered_*, netfence_nfqueue_*).
DpiBlocker verdicts and detections live in the blocker's process: export
them from the app (metricsOf(dpi), registerPromClient).

options:
  --netns NS              read the network namespace NS (/run/netns/NS); default: this one
  --json                  print { netns, families, warnings } as JSON instead
  --max-entries N         per-entry series only for blocklists of at most N entries (default 1000; 0: none)
  --max-set-elements N    sum set element counters only in tables whose sets hold at most
                          N elements together (default 10000; 0: never)
  -h, --help              this text

Parts that could not be read are named on stderr ("warning: ..."); the rest is printed.

exit codes:
  0  the metrics were read (warnings, if any, on stderr)
  1  the namespace could not be read (nft missing, not root)
  2  invalid arguments, or no such namespace`;

function count(name: string, v: string | undefined): number | undefined | string {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > 1e9) return `--${name} takes a whole number (got ${JSON.stringify(v)})`;
  return Number(v);
}

export const metricsCommands: CliCommand[] = [
  {
    path: ['metrics'],
    summary: 'every counter netfence owns in a namespace, in the Prometheus text format',
    usage: USAGE,
    async run(args) {
      const p = parseCommand('metrics', USAGE, args, {
        netns: { type: 'string' },
        json: { type: 'boolean' },
        'max-entries': { type: 'string' },
        'max-set-elements': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      });
      if (typeof p === 'number') return p;
      if (p.values.help) {
        console.log(USAGE);
        return EXIT.ok;
      }
      const maxEntries = count('max-entries', p.values['max-entries']);
      const maxSetElements = count('max-set-elements', p.values['max-set-elements']);
      for (const c of [maxEntries, maxSetElements]) {
        if (typeof c === 'string') {
          printError('metrics', c, `\n${USAGE}`);
          return EXIT.usage;
        }
      }
      const netns = p.values.netns;
      if (netns !== undefined && netnsExists(netns) === false) return unknownNetns('metrics', netns);
      const m = await netnsMetrics({ netns, maxEntries: maxEntries as number | undefined, maxSetElements: maxSetElements as number | undefined });
      if (m.err) return fail('metrics', m.val);
      for (const w of m.val.warnings) console.error(`netfence metrics: warning: ${w}`);
      if (p.values.json) console.log(JSON.stringify(m.val, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v), 2));
      else process.stdout.write(toPrometheusText(m.val.families));
      return EXIT.ok;
    },
  },
];
