/**
 * bench/xdp-add-file — figure `xdp.add-file-1m`: `netfence xdp add --file` of
 * 1,000,000 IPv4 addresses, the whole command (a new process: tsx start,
 * reading and checking the file, opening the pinned blocklist by name, the
 * load), against XdpBlocklist.add() of the same entries in-process (the
 * entries already in memory), into the same blocklist, cleared before each
 * run, applied to a veth in a lab namespace. Alternating rounds, medians.
 * Informational (no goal): the difference is the process, the file and the
 * per-line check with line numbers.
 *
 * Run as root: npx tsx bench/xdp-add-file.ts [ENTRIES]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLab } from '../src/lab/index.js';
import { run } from '../src/host/run.js';
import { XdpBlocklist } from '../src/xdp/xdp-blocklist.js';
import { alternate, median, report, timeMs } from './lib/harness.js';

const ENTRIES = Number(process.argv[2] ?? 1_000_000);
const ROUNDS = 2;

const ip = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

await withLab('xdpaddfile', async (lab) => {
  const a = await lab.host('a');
  const b = await lab.host('b');
  const l = await lab.link({ host: a, addrs: ['198.18.200.2/24'] }, { host: b, addrs: ['198.18.200.1/24'] });
  const list = Array.from({ length: ENTRIES }, (_, i) => ip(i));
  const dir = mkdtempSync(join(tmpdir(), 'netfence-bench-'));
  const file = join(dir, 'list.txt');
  writeFileSync(file, `# ${list.length} entries\n${list.join('\n')}\n`);
  const name = `bench_file_${process.pid}`;
  const bl = new XdpBlocklist({ iface: l.b, netns: b.netns, name, backend: 'xdp', maxEntries: ENTRIES });
  try {
    const at = (await bl.apply()).unwrap();
    const inner: number[] = [];
    const m = await alternate(
      ROUNDS,
      async () => {
        (await bl.clear()).unwrap();
        return timeMs(async () => {
          const r = (await run(['npx', 'tsx', 'src/cli/main.ts', 'xdp', 'add', '--file', file, '--name', name, '--netns', b.netns, '--quiet'], { timeoutMs: 600_000 })).unwrap();
          inner.push(Number(/ in ([\d.]+) s$/.exec(r.stdout.trim())?.[1] ?? NaN) * 1000);
        });
      },
      async () => {
        (await bl.clear()).unwrap();
        return timeMs(async () => (await bl.add(list)).unwrap());
      },
    );
    const st = (await bl.stats()).unwrap();
    if (st.entries !== list.length) throw new Error(`expected ${list.length} entries, the blocklist has ${st.entries}`);
    report({
      id: 'xdp.add-file-1m',
      figure: `netfence xdp add --file of ${ENTRIES.toLocaleString('en')} IPv4 addresses (whole command)`,
      ours: m.ours,
      baseline: m.baseline,
      baselineName: 'XdpBlocklist.add() in-process',
      unit: 'ms',
      goal: {},
      detail: {
        rounds: ROUNDS,
        oursSamples: m.oursSamples.map(Math.round),
        baselineSamples: m.baselineSamples.map(Math.round),
        addInsideCliMs: Math.round(median(inner)),
        backend: `${at.backend}${at.mode ? ` ${at.mode}` : ''}`,
        cpus: cpus().length,
        loadavg: loadavg()[0]?.toFixed(1),
      },
    });
  } finally {
    await bl.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
