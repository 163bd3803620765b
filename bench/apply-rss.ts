/**
 * Bench: Node's peak RSS while a Firewall with a 1,000,000-element set is
 * applied (issue 14). Figure id: `fw.apply.rss-1m`, goal ≤ 200 MiB.
 *
 * Each side is a fresh plain Node process running this file bundled with
 * esbuild (netfence's sources in one ES module, packages external: what a
 * user runs, without the TypeScript loader's ~35 MiB), in a lab namespace,
 * that first builds the same input — 1,000,000 distinct IPv6 addresses in
 * fd00::/8 as strings, what a caller holds — and then:
 * - ours: `new Firewall(...).set('big', { type: 'ipv6_addr', elements }).apply()`;
 * - baseline: writes the libnftables JSON document of the same set by hand
 *   (one `JSON.stringify`) and pipes it to one raw `nft -j -f -`.
 * The figure is the process's VmHWM (peak resident set) in MiB, read from
 * /proc/self/status after the apply; the input's own cost (RSS after building
 * it) is in the detail. Rounds alternate the order; medians are reported.
 *
 *   npx tsx bench/apply-rss.ts [rounds] [elements]   (NETFENCE_NFT selects the nft)
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Firewall } from '../src/firewall/firewall.js';
import { nftProgram, run } from '../src/host/run.js';
import { withLab } from '../src/lab/index.js';
import { alternate, median, report } from './lib/harness.js';

const TABLE = 'nf_rss';
const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
const mib = (k: number): number => Math.round((k / 1024) * 10) / 10;

/** Child: build the input, apply it one way, print what memory it took. */
async function child(mode: string, netns: string, n: number): Promise<void> {
  const startKiB = kib('VmRSS');
  const elements: string[] = new Array<string>(n);
  for (let i = 0; i < n; i++) elements[i] = `fd00::${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
  const inputKiB = kib('VmRSS');
  const t = performance.now();
  if (mode === 'ours') {
    const r = await new Firewall({ table: TABLE, family: 'inet', netns }).set('big', { type: 'ipv6_addr', elements }).apply();
    if (r.err) throw r.val;
  } else {
    const doc = JSON.stringify({ nftables: [{ add: { table: { family: 'inet', name: TABLE } } }, { add: { set: { family: 'inet', table: TABLE, name: 'big', type: 'ipv6_addr', elem: elements } } }] });
    const r = await run(['nft', '-j', '-f', '-'], { netns, input: doc, timeoutMs: 600_000 });
    if (r.err) throw r.val;
  }
  const ms = performance.now() - t;
  console.log(JSON.stringify({ hwmKiB: kib('VmHWM'), startKiB, inputKiB, ms: Math.round(ms), n: elements.length }));
}

/** This file bundled into node_modules/.cache (so its packages resolve from node_modules). */
async function bundle(): Promise<string> {
  const here = fileURLToPath(import.meta.url);
  const outfile = join(dirname(here), '..', 'node_modules', '.cache', 'netfence-bench', 'apply-rss.mjs');
  const { build } = await import('esbuild');
  await build({ entryPoints: [here], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' });
  return outfile;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3);
  const n = Number(process.argv[3] ?? 1_000_000);
  const self = await bundle();
  await withLab('applyrss', async (lab) => {
    const h = await lab.host('a');
    const details: Record<string, { hwmKiB: number; inputKiB: number; startKiB: number; ms: number }[]> = { ours: [], raw: [] };
    const side = (mode: 'ours' | 'raw') => async (): Promise<number> => {
      await run(['nft', 'delete', 'table', 'inet', TABLE], { netns: h.netns, timeoutMs: 600_000 }); // absent: fine
      const r = await run([process.execPath, self, '--child', mode, h.netns, String(n)], { timeoutMs: 600_000, what: `apply-rss child (${mode})` });
      if (r.err) throw r.val;
      const out = JSON.parse(r.val.stdout.trim().split('\n').pop() ?? '') as { hwmKiB: number; inputKiB: number; startKiB: number; ms: number };
      details[mode]?.push(out);
      return mib(out.hwmKiB);
    };
    const a = await alternate(rounds, side('ours'), side('raw'));
    await run(['nft', 'delete', 'table', 'inet', TABLE], { netns: h.netns, timeoutMs: 600_000 });
    const med = (mode: string, k: 'inputKiB' | 'startKiB' | 'ms') => median((details[mode] ?? []).map((d) => d[k]));
    report({
      id: 'fw.apply.rss-1m',
      figure: `Node peak RSS applying a ${n.toLocaleString('en-US')}-element set`,
      ours: a.ours,
      baseline: a.baseline,
      baselineName: 'Node piping the same JSON (one string) to raw nft',
      unit: 'MiB',
      goal: { oursMax: 200 },
      detail: {
        rounds: a.rounds,
        oursSamples: a.oursSamples,
        baselineSamples: a.baselineSamples,
        rssAtStartMiB: mib(med('ours', 'startKiB')),
        rssWithInputMiB: mib(med('ours', 'inputKiB')),
        applyMs: { ours: med('ours', 'ms'), raw: med('raw', 'ms') },
        nft: nftProgram().program,
      },
    });
  });
}

if (process.argv[2] === '--child') {
  child(process.argv[3] as string, process.argv[4] as string, Number(process.argv[5])).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
