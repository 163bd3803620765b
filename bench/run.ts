/**
 * `npm run bench`: every bench in one go, one table (issue 14).
 *
 *   npx tsx bench/run.ts [--only <substring>] [--compare <old results.json>]
 *                        [--out <path>] [--timeout <seconds per bench>] [--list]
 *   npx tsx bench/run.ts --show <results.json> [--compare <old results.json>]
 *
 * Runs every bench/*.ts (not bench/lib/**, not this file, not scratch files named `_*.ts`,
 * not a helper script another bench starts, such as xdp-sender.ts) one after another,
 * each as its own child process (`node --import tsx bench/<name>.ts`, no stdin, output
 * piped), each once the CPUs are idle (see `settle()`: the kernel frees the previous
 * bench's namespaces after it is gone). Each readable line is
 * passed on prefixed by the bench's name; the `BENCH-JSON {…}` lines (bench/lib/harness.ts
 * `report()`) are collected into one table — figure, ours, baseline, ratio, goal, held,
 * limit — and written as JSON to bench/results.json (or --out), with the commit, kernel,
 * nft and node versions and the machine's load. `--compare` prints, per figure id, the
 * ratio of an older results.json next to this run's and the change; `--show` prints the
 * table of an earlier run without running anything.
 *
 * Exit status: non-zero only when a bench failed (non-zero exit, signal, timeout, lab
 * namespaces left behind — the runner removes them); a missed goal is a result, not an
 * error. A bench that prints no BENCH-JSON line is listed as "no figures".
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { createInterface } from 'node:readline';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../src/host/run.js';
import { LAB_PREFIX, leftoverLabNamespaces } from '../src/lab/index.js';
import { startProcess } from '../src/host/spawn.js';
import { compareTable, FigureLine, resultsTable, tally, type BenchRun, type RunFigure, type RunResults } from './lib/results.js';
import { benchScripts } from './lib/scripts.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const SELF = basename(fileURLToPath(import.meta.url));

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

/**
 * Lab namespaces a bench process left behind (killed, or a bug): their names carry the
 * creating process's pid (`nflab-<tag>-<pid base 36><6 hex>-<host>`), so only this
 * bench's are matched. They are deleted, and the bench is reported as failed.
 */
async function removeLeftLabs(pid: number): Promise<string[]> {
  const ours = new RegExp(`^${LAB_PREFIX}[a-z0-9]{1,12}-${pid.toString(36)}[0-9a-f]{6}-`, 'i');
  const left = (await leftoverLabNamespaces()).filter((n) => ours.test(n));
  for (const n of left) await run(['ip', 'netns', 'del', n]);
  return left;
}

interface Outcome {
  run: BenchRun;
  figures: RunFigure[];
}

/** Busy and total jiffies of all CPUs (first line of /proc/stat). */
function cpuJiffies(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/**
 * Wait until the machine is idle (CPUs ≥ 90% idle over two 0.5-s windows in a row, at most 60 s): the
 * kernel frees the previous bench's namespaces (a million-element set, XDP maps) in its own workers after
 * the bench process is gone, and that work would be charged to the next bench's figures. Returns the
 * seconds waited and whether it settled.
 */
async function settle(): Promise<{ seconds: number; settled: boolean }> {
  const t0 = performance.now();
  let quiet = 0;
  while (performance.now() - t0 < 60_000) {
    const a = cpuJiffies();
    await new Promise((r) => setTimeout(r, 500));
    const b = cpuJiffies();
    const busy = b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
    quiet = busy <= 0.1 ? quiet + 1 : 0;
    if (quiet >= 2) return { seconds: Math.round((performance.now() - t0) / 100) / 10, settled: true };
  }
  return { seconds: 60, settled: false };
}

/** Run one bench as a child process; pass its lines on, collect its figures. */
async function runBench(file: string, timeoutMs: number): Promise<Outcome> {
  const bench = file.replace(/\.ts$/, '');
  const s = await settle();
  console.log(s.settled ? `\n(settled: the CPUs were idle after ${s.seconds} s)` : '\n(not settled: the CPUs were still busy after 60 s; going on)');
  const load1AtStart = loadavg()[0] ?? 0;
  const t0 = performance.now();
  const figures: RunFigure[] = [];
  const bad: string[] = [];
  console.log(`\n=== ${bench} (load ${load1AtStart.toFixed(2)}) ===`);
  const child = startProcess([process.execPath, '--import', 'tsx', join(HERE, file)], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  const lines = (stream: NodeJS.ReadableStream | null, onLine: (l: string) => void): Promise<void> =>
    new Promise((done) => {
      if (!stream) return done();
      const rl = createInterface({ input: stream, crlfDelay: Infinity });
      rl.on('line', onLine);
      rl.once('close', () => done());
    });
  const out = lines(child.stdout, (l) => {
    if (!l.startsWith('BENCH-JSON ')) return void console.log(`[${bench}] ${l}`);
    try {
      const f = FigureLine.parse(JSON.parse(l.slice('BENCH-JSON '.length)));
      figures.push({ ...(f as unknown as RunFigure), bench });
    } catch (e) {
      bad.push(String(e instanceof Error ? e.message.split('\n')[0] : e));
      console.log(`[${bench}] unreadable BENCH-JSON line: ${l.slice(0, 200)}`);
    }
  });
  const err = lines(child.stderr, (l) => console.error(`[${bench}] ${l}`));
  // On time out: SIGTERM first (withLab removes its namespaces on SIGTERM), SIGKILL 20 s later.
  let timedOut = false;
  let kill: NodeJS.Timeout | undefined;
  const term = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
  }, timeoutMs);
  const exit = await child.exited;
  clearTimeout(term);
  if (kill) clearTimeout(kill);
  await Promise.all([out, err]);
  const left = child.pid === undefined ? [] : await removeLeftLabs(child.pid);
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  const reasons = [
    timedOut ? `timed out after ${timeoutMs / 1000} s` : undefined,
    exit.error ? `could not start: ${exit.error.message}` : exit.signal ? `killed by ${exit.signal}` : exit.code !== 0 ? `exit code ${exit.code}` : undefined,
    bad.length ? `unreadable BENCH-JSON: ${bad[0]}` : undefined,
    left.length ? `left ${left.length} lab namespace(s) behind (removed by the runner): ${left.join(', ')}` : undefined,
  ].filter((x): x is string => x !== undefined);
  const reason = reasons.length ? reasons.join('; ') : undefined;
  const status = reason ? 'failed' : 'ok';
  console.log(`=== ${bench}: ${status}${reason ? ` (${reason})` : ''}, ${figures.length} figure(s), ${seconds} s ===`);
  return { run: { bench, status, figures: figures.length, seconds, load1AtStart, ...(reason ? { reason } : {}) }, figures };
}

async function textOf(argv: string[]): Promise<string> {
  const r = await run(argv, { timeoutMs: 10_000 });
  return r.ok ? r.val.stdout.trim() : `unknown (${argv.join(' ')} failed)`;
}

async function main(): Promise<number> {
  const only = option('only');
  const comparePath = option('compare');
  const outPath = resolve(option('out') ?? join(HERE, 'results.json'));
  const timeoutMs = Number(option('timeout') ?? 360) * 1000;
  if (!(timeoutMs > 0)) throw new Error('--timeout takes a number of seconds');
  const old = comparePath ? (JSON.parse(readFileSync(comparePath, 'utf8')) as RunResults) : undefined;
  const showPath = option('show');
  if (showPath) {
    // Print the table of an earlier run (and --compare) without running anything.
    const shown = JSON.parse(readFileSync(showPath, 'utf8')) as RunResults;
    console.log(`${shown.commit}, ${shown.date}, kernel ${shown.kernel}, ${shown.nftVersion}, node ${shown.node}\n`);
    console.log(resultsTable(shown));
    if (old) console.log(`\ncompared with ${comparePath} (${old.commit}, ${old.date}):\n\n${compareTable(old, shown)}`);
    console.log(`\n${shown.held} held, ${shown.missed} missed`);
    return 0;
  }
  const scripts = benchScripts(HERE, SELF).filter((f) => only === undefined || f.includes(only));
  if (scripts.length === 0) throw new Error(`no bench matches --only ${only}`);
  if (process.argv.includes('--list')) {
    console.log(scripts.map((f) => f.replace(/\.ts$/, '')).join('\n'));
    return 0;
  }
  const loadAtStart = loadavg();
  const commit = await textOf(['git', '-C', ROOT, 'rev-parse', 'HEAD']);
  const dirty = (await textOf(['git', '-C', ROOT, 'status', '--porcelain', '--untracked-files=no'])).length > 0;
  const nftVersion = await textOf(['nft', '--version']);
  console.log(`benches: ${scripts.join(', ')}`);
  const benches: BenchRun[] = [];
  const figures: RunFigure[] = [];
  for (const file of scripts) {
    const o = await runBench(file, timeoutMs);
    benches.push(o.run);
    figures.push(...o.figures);
  }
  const results: RunResults = {
    commit: dirty ? `${commit} (with uncommitted changes)` : commit,
    date: new Date().toISOString(),
    kernel: release(),
    nftVersion,
    node: process.version,
    machine: { cpus: cpus().length, loadAtStart, loadAtEnd: loadavg() },
    benches,
    figures,
    failedBenches: benches.filter((b) => b.status === 'failed').map((b) => b.bench),
    noFigures: benches.filter((b) => b.status === 'ok' && b.figures === 0).map((b) => b.bench),
    ...tally(figures),
  };
  writeFileSync(outPath, `${JSON.stringify(results, null, 2)}\n`);
  const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  console.log(`\nnetfence benches — ${results.commit}, kernel ${results.kernel}, ${nftVersion}, node ${results.node}, ${results.machine.cpus} CPUs, load ${load(loadAtStart)} -> ${load(results.machine.loadAtEnd)}\n`);
  console.log(resultsTable(results));
  if (old) {
    console.log(`\ncompared with ${comparePath} (${old.commit}, ${old.date}):\n`);
    console.log(compareTable(old, results));
  }
  const failed = results.failedBenches.length;
  console.log(
    `\n${results.held} held, ${results.missed} missed${results.informational ? `, ${results.informational} without a goal` : ''}, ${figures.length} figure(s) from ${benches.length} bench(es)` +
      `${results.noFigures.length ? `; no figures: ${results.noFigures.join(', ')}` : ''}${failed ? `; FAILED: ${results.failedBenches.join(', ')}` : ''}` +
      `\nwritten to ${existsSync(outPath) ? outPath : '(not written)'}`,
  );
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
