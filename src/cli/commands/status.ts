/**
 * `netfence status [--netns NS] [--json]`: everything netfence owns in a
 * namespace, read from the kernel and the journal (src/status: readStatus).
 * This file only renders.
 */
import { readStatus, type HostStatus, type SetStatus } from '../../status/index.js';
import { formatRate } from '../../throttle/rate.js';
import { EXIT, netnsExists, parseCommand, printError, table, unknownNetns } from './common.js';
import type { CliCommand } from './types.js';

const USAGE = `usage: netfence status [--netns NS] [--json]

Everything netfence owns in a network namespace, read from the kernel and the
journal (not from any process's memory): nft tables with their owner, chains,
rules, sets with element counts and counters; Throttler limits; XDP programs
and blocklists; DpiBlocker steering and NFQUEUE statistics; journal entries
and locks. Set sizes are counted without listing the sets.

options:
  --netns NS   read the network namespace NS (/run/netns/NS); default: this one
  --json       print the status as one JSON object (the HostStatus type)
  -h, --help   this text

exit codes:
  0  the status was read (parts that could not be read are listed as warnings)
  1  the namespace could not be read (nft missing, not root)
  2  invalid arguments, or no such namespace`;

const n = (x: number | undefined): string => (x === undefined ? '?' : x.toLocaleString('en-US'));
const bytes = (b: number): string => {
  for (const [u, m] of [['GB', 1e9], ['MB', 1e6], ['kB', 1e3]] as const) if (b >= m) return `${+(b / m).toFixed(1)} ${u}`;
  return `${b} B`;
};

/** The readable screen of a {@link HostStatus}. */
export function renderStatus(s: HostStatus): string {
  const out: string[] = [];
  /** A titled table; `always` shows `(none)` when there are no rows, else an empty section is left out. */
  const rows = (title: string, header: string[], body: (string | number)[][], always = true) => {
    if (!body.length && !always) return;
    const text = body.length ? table(header, body).split('\n').map((l) => `  ${l}`).join('\n') : '  (none)';
    out.push(`${title}\n${text}\n`);
  };
  const sum = (xs: (number | undefined)[]) => xs.reduce<number | undefined>((a, x) => (a === undefined || x === undefined ? undefined : a + x), 0);
  /** Elements of sets, `≥` when a dump stopped at its limit (kernels without the element counter). */
  const elems = (sets: SetStatus[]) => `${sets.some((x) => x.elementsAtLeast) ? '≥' : ''}${n(sum(sets.map((x) => x.elements)))}`;
  const queues = (q: [number, number] | undefined) => (q ? (q[0] === q[1] ? String(q[0]) : `${q[0]}-${q[1]}`) : '?');
  out.push(`netfence status of ${s.netns === undefined ? 'this network namespace' : `network namespace ${s.netns}`} (nft ${s.nftVersion ?? '?'}, read in ${s.tookMs} ms)\n`);

  rows(`nft tables (${s.tables.length})`, ['table', 'owner', 'chains', 'rules', 'sets', 'elements', 'counters'], s.tables.map((t) => [`${t.family} ${t.name}`, t.owner, t.chains.length, t.rules, t.sets.length, elems(t.sets), t.counters.length]));
  rows('base chains', ['table', 'chain', 'hook', 'prio', 'policy', 'device', 'rules'], s.tables.flatMap((t) => t.chains.filter((c) => c.hook !== undefined).map((c) => [`${t.family} ${t.name}`, c.name, c.hook ?? '', c.priority ?? '', c.policy ?? '', c.device ?? '', c.rules])), false);
  rows('sets and maps', ['table', 'set', 'type', 'flags', 'elements', 'counted by'], s.tables.flatMap((t) => t.sets.map((x) => [`${t.family} ${t.name}`, x.name, x.kind === 'map' ? `${x.type} : ${x.map ?? '?'}` : x.type, x.flags.join(','), elems([x]), x.countMethod ?? (x.countError ? 'error' : '')])), false);
  rows('counters', ['table', 'counter', 'comment', 'packets', 'bytes'], s.tables.flatMap((t) => t.counters.map((c) => [`${t.family} ${t.name}`, c.name, c.comment ?? '', n(c.packets), bytes(c.bytes)])), false);
  rows(
    `Throttler limits (${s.limits.length})`,
    ['limit', 'interface', 'direction', 'backend', 'rate', 'bytes', 'packets', 'drops', 'quota'],
    s.limits.map((l) => [`l${l.id}`, l.interface ?? '?', l.direction ?? '?', l.backend, l.rateBps === undefined ? '-' : formatRate(l.rateBps), bytes(l.bytes), n(l.packets), n(l.drops), l.quotaBytes === undefined ? '-' : `${bytes(l.quotaUsed ?? 0)} / ${bytes(l.quotaBytes)}`]),
  );
  rows(`XDP programs (${s.xdp.programs.length})`, ['interface', 'mode', 'program id', 'name', 'blocklist'], s.xdp.programs.map((p) => [p.interface, p.mode, p.programId, p.programName, p.blocklist ?? '-']));
  rows(
    `XDP blocklists (${s.xdp.blocklists.length})`,
    ['blocklist', 'backend', 'interfaces', 'entries', 'dropped pkts', 'dropped', 'passed pkts'],
    s.xdp.blocklists.map((b) => [b.name, b.backend, b.interfaces.join(',') || '-', b.error ? `error: ${b.error.slice(0, 40)}` : n(b.entries), n(b.dropped.packets), bytes(b.dropped.bytes), n(b.passed.packets)]),
  );
  rows(
    `DPI steering (${s.dpi.steering.length})`,
    ['table', 'form', 'owner', 'chains', 'rules', 'queues', 'steered pkts'],
    s.dpi.steering.map((x) => [x.table, x.form, x.owner ?? '-', x.chains.join(','), x.rules, queues(x.queues), x.packets === undefined ? '-' : n(x.packets)]),
  );
  rows(`NFQUEUE queues (${s.dpi.queues.length})`, ['queue', 'portid', 'waiting', 'queued', 'dropped', 'user dropped'], s.dpi.queues.map((q) => [q.queue, q.portid, n(q.waiting), n(q.queued), n(q.dropped), n(q.userDropped)]));
  rows(`journal (${s.journal.length})`, ['entry', 'owner', 'pid', 'alive', 'phase', 'tables', 'steps'], s.journal.map((j) => [j.id, j.owner, j.pid, j.alive ? 'yes' : 'NO', j.phase, j.tables.join(', '), `${j.stepsStarted}/${j.steps}`]));
  rows(`locks (${s.locks.length})`, ['lock', 'held', 'pid', 'what'], s.locks.map((l) => [l.path, l.held ? 'held' : 'free', l.pid ?? '-', l.what ?? '-']));
  if (s.warnings.length) out.push(`warnings (${s.warnings.length})\n${s.warnings.map((w) => `  ${w}`).join('\n')}\n`);
  return out.join('\n').trimEnd();
}

export const statusCommands: CliCommand[] = [
  {
    path: ['status'],
    summary: 'what netfence owns in a namespace: tables, sets, limits, XDP, DPI, journal, locks',
    usage: USAGE,
    async run(args) {
      const p = parseCommand('status', USAGE, args, { netns: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
      if (typeof p === 'number') return p;
      if (p.values.help) {
        console.log(USAGE);
        return EXIT.ok;
      }
      if (p.values.netns !== undefined && netnsExists(p.values.netns) === false) return unknownNetns('status', p.values.netns);
      const r = await readStatus(p.values.netns === undefined ? {} : { netns: p.values.netns });
      if (r.err) {
        if (r.val.code === 'VALIDATION') {
          printError('status', r.val, `\n${USAGE}`);
          return EXIT.usage;
        }
        printError('status', r.val, 'run as root (nft needs CAP_NET_ADMIN) with nftables installed (apt-get install nftables)');
        return EXIT.failed;
      }
      console.log(p.values.json ? JSON.stringify(r.val, null, 2) : renderStatus(r.val));
      return EXIT.ok;
    },
  },
];
