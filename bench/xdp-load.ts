/**
 * bench/xdp-load: time to load 1,000,000 blocklist entries through
 * XdpBlocklist.add() (bpf(2) batched map updates from Node), against one
 * `bpftool map update` process per entry, measured on 1,000 entries in the
 * same run and extrapolated to 1,000,000. Prints the ratio.
 *
 * Run as root: npx tsx bench/xdp-load.ts
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { run } from '../src/host/run.js';
import { XdpBlocklist } from '../src/xdp/xdp-blocklist.js';
import { BlocklistMaps } from '../src/xdp/maps.js';
import { parseEntries } from '../src/xdp/entries.js';
import { ensureBpffs, PIN_ROOT } from '../src/xdp/loader.js';

const N = 1_000_000;
const BASE = 1_000;
// each map holds up to N + BASE entries (side A gets the API load, side B the kernel-only load)
const name = `bench_load_${process.pid}`;
const dir = join(PIN_ROOT, name);

function ip(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

async function main(): Promise<void> {
  (await ensureBpffs()).unwrap();
  // maps only: loading does not need an interface
  BlocklistMaps.create(dir, N + BASE, 0).close();
  const bl = new XdpBlocklist({ iface: 'lo', name });
  const entries = Array.from({ length: N }, (_, i) => ip(i));
  let events = 0;
  bl.on('progress', () => events++);
  const t0 = performance.now();
  (await bl.add(entries)).unwrap();
  const ours = (performance.now() - t0) / 1000;
  const count = (await bl.stats()).unwrap().entries;
  if (count !== N) throw new Error(`expected ${N} entries, found ${count}`);
  // the kernel part alone: the same entries, already parsed, into the other side
  const parsed = parseEntries(entries, 'entries', { dedupe: false }).unwrap();
  const maps = BlocklistMaps.open(dir);
  const t2 = performance.now();
  maps.upsert(1, parsed, 0n, 'add');
  const kernelOnly = (performance.now() - t2) / 1000;
  maps.close();

  // baseline: one bpftool process per entry
  const t1 = performance.now();
  for (let i = 0; i < BASE; i++) {
    const a = 0xc6120000 + i; // 198.18.x.y
    const key = [(a >>> 24) & 255, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].map(String);
    const value = new Array(24).fill('0');
    value[16] = '32';
    const r = await run(['bpftool', 'map', 'update', 'pinned', join(dir, 'nf_v4_a'), 'key', ...key, 'value', ...value]);
    if (r.err) throw r.val;
  }
  const base = (performance.now() - t1) / 1000;
  const baseExtrapolated = (base * N) / BASE;
  bl.close();
  console.log(`XdpBlocklist.add(): ${N.toLocaleString('en')} entries in ${ours.toFixed(3)} s (${Math.round(N / ours).toLocaleString('en')} entries/s, ${events} progress events)`);
  console.log(`  the batched bpf(2) map updates alone (same entries, pre-parsed, other side): ${kernelOnly.toFixed(3)} s`);
  console.log(`  load average during the run: ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} CPUs`);
  console.log(`bpftool map update per entry: ${BASE} entries in ${base.toFixed(2)} s -> ${baseExtrapolated.toFixed(0)} s for ${N.toLocaleString('en')} (extrapolated)`);
  console.log(`ratio: ${(baseExtrapolated / ours).toFixed(0)}x faster than one bpftool process per entry`);
}

try {
  await main();
} finally {
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  if (existsSync(PIN_ROOT) && readdirSync(PIN_ROOT).length === 0) rmSync(PIN_ROOT, { recursive: true, force: true });
}
