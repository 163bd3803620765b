/**
 * bench/xdp-add-file: `netfence xdp add --file` of 1,000,000 entries (a new
 * process: tsx start, reading and validating the file, opening the pinned
 * blocklist by name, the batched map load) against XdpBlocklist.add() of the
 * same entries in-process, into the same blocklist (cleared between runs),
 * attached to a veth in a lab namespace. Prints both times and the ratio.
 * The CLI's time is the wall time of the whole command; the library's is
 * the add() call alone (the entries already in memory).
 *
 * Run as root: npx tsx bench/xdp-add-file.ts [ENTRIES]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLab } from '../src/lab/index.js';
import { run } from '../src/host/run.js';
import { XdpBlocklist } from '../src/xdp/xdp-blocklist.js';

const ENTRIES = Number(process.argv[2] ?? 1_000_000);

/** `n` distinct entries: the 65,536 addresses of 198.19.0.0/16, then addresses of fd00:1::/32. */
function entries(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(i < 65_536 ? `198.19.${i >> 8}.${i & 255}` : `fd00:1:${(i >> 16).toString(16)}::${(i & 0xffff).toString(16)}`);
  return out;
}

await withLab('xdpaddfile', async (lab) => {
  const a = await lab.host('a');
  const b = await lab.host('b');
  const l = await lab.link({ host: a, addrs: ['198.18.200.2/24'] }, { host: b, addrs: ['198.18.200.1/24'] });
  const list = entries(ENTRIES);
  const dir = mkdtempSync(join(tmpdir(), 'netfence-bench-'));
  const file = join(dir, 'list.txt');
  writeFileSync(file, `# ${list.length} entries\n${list.join('\n')}\n`);
  const name = `bench${process.pid}`;
  const bl = new XdpBlocklist({ iface: l.b, netns: b.netns, name, maxEntries: ENTRIES });
  try {
    const at = (await bl.apply()).unwrap();
    console.log(`blocklist ${name}: ${at.backend}${at.mode ? ` (${at.mode})` : ''} on ${l.b}; ${list.length} entries; ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(1)}`);
    const inner: number[] = [];
    const cliRun = async (): Promise<number> => {
      const t0 = performance.now();
      const r = await run(['npx', 'tsx', 'src/cli/main.ts', 'xdp', 'add', '--file', file, '--name', name, '--netns', b.netns, '--quiet'], { timeoutMs: 1_800_000 });
      const ms = performance.now() - t0;
      if (r.err) throw r.val;
      console.log(`  cli: ${r.val.stdout.trim()}`);
      inner.push(Number(/ in ([\d.]+) s$/.exec(r.val.stdout.trim())?.[1] ?? NaN) * 1000);
      return ms;
    };
    const libRun = async (): Promise<number> => {
      const t0 = performance.now();
      const r = (await bl.add(list)).unwrap();
      const ms = performance.now() - t0;
      console.log(`  library: added ${r.added}`);
      return ms;
    };
    const cli: number[] = [];
    const lib: number[] = [];
    for (let round = 0; round < 2; round++) {
      (await bl.clear()).unwrap();
      lib.push(await libRun());
      (await bl.clear()).unwrap();
      cli.push(await cliRun());
    }
    const st = (await bl.stats()).unwrap();
    if (st.entries !== list.length) throw new Error(`expected ${list.length} entries after the CLI load, the blocklist has ${st.entries}`);
    const best = (xs: number[]) => Math.min(...xs);
    console.log(`xdp add --file (CLI process, ${list.length} entries): ${(best(cli) / 1000).toFixed(2)} s (runs ${cli.map((x) => (x / 1000).toFixed(2)).join(', ')})`);
    console.log(`  of which the add() inside the CLI:          ${(best(inner) / 1000).toFixed(2)} s (the rest: process start, reading and validating the file)`);
    console.log(`XdpBlocklist.add in-process:                  ${(best(lib) / 1000).toFixed(2)} s (runs ${lib.map((x) => (x / 1000).toFixed(2)).join(', ')})`);
    console.log(`ratio CLI / library: ${(best(cli) / best(lib)).toFixed(2)}x`);
  } finally {
    await bl.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
