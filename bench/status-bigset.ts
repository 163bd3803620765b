/**
 * `readStatus()` next to a 1,000,000-element set: the whole status of the
 * namespace against `nft -j list set` of that one set, in the same run, in a
 * lab namespace.
 *
 * Figures (wall-clock, ms): readStatus() (terse ruleset listing + the set's
 * size from the kernel's counter where the kernel has NFTA_SET_COUNT, else a
 * netlink dump counted in place); the netlink dump forced (what kernels
 * without the counter pay); `nft -j list set` (the baseline: what counting by
 * listing costs). Reported through bench/lib/harness.ts as two informational figures
 * (no goal; one measurement each, the listing alone takes minutes on nft 1.0.x):
 * `status.bigset-1m.readstatus` and `status.bigset-1m.dump`, baseline the listing.
 *
 * Run (root): npx tsx bench/status-bigset.ts [elements]   (NETFENCE_NFT selects the nft)
 */
import { currentHost } from '../src/host/host.js';
import { nftApply } from '../src/host/nft.js';
import { nftProgram, run } from '../src/host/run.js';
import { withLab } from '../src/lab/index.js';
import { ownershipCommands } from '../src/plan/ownership.js';
import { readStatus } from '../src/status/index.js';
import { report } from './lib/harness.js';

const N = Number(process.argv[2] ?? 1_000_000);

async function time<T>(fn: () => Promise<T>): Promise<{ ms: number; val: T }> {
  const t0 = performance.now();
  const val = await fn();
  return { ms: performance.now() - t0, val };
}

function addr(i: number): string {
  return `fd00::${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}`; // fd00::/8: the lab's test range
}

async function main(): Promise<void> {
  await withLab('bigset', async (lab) => {
    const h = await lab.host('b');
    const ref = { family: 'inet' as const, name: 'bench_status' };
    const mk = await nftApply([...ownershipCommands(ref, 'firewall:bench'), { add: { set: { family: 'inet', table: ref.name, name: 'big', type: 'ipv6_addr', size: N * 2 } } }], { netns: h.netns });
    if (mk.err) throw mk.val;
    const lines: string[] = [];
    for (let i = 0; i < N; i += 10_000) {
      const chunk: string[] = [];
      for (let j = i; j < Math.min(N, i + 10_000); j++) chunk.push(addr(j));
      lines.push(`add element inet bench_status big { ${chunk.join(', ')} }`);
    }
    const fill = await time(() => lab.exec(h, ['nft', '-f', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: 600_000 }));
    if (fill.val.err) throw fill.val.val;
    console.log(`filled ${N.toLocaleString('en-US')} elements in ${fill.ms.toFixed(0)} ms (nft ${nftProgram().program})`);

    const status = await time(() => readStatus({ netns: h.netns }));
    if (status.val.err) throw status.val.val;
    const set = status.val.val.tables.find((t) => t.name === ref.name)?.sets.find((s) => s.name === 'big');
    console.log(`readStatus(): ${status.ms.toFixed(0)} ms, big = ${set?.elements} elements (${set?.countMethod})`);

    const count = currentHost().nft.countElements;
    if (!count) throw new Error('this host cannot count elements');
    const dump = await time(() => count('inet', ref.name, 'big', { netns: h.netns, method: 'dump', dumpLimit: N + 1 }));
    if (dump.val.err) throw dump.val.val;
    console.log(`netlink dump counted in place: ${dump.ms.toFixed(0)} ms, ${dump.val.val.elements} elements, ${(dump.val.val.bytes / 1e6).toFixed(1)} MB of replies`);

    const base = await time(() => run(['nft', '-j', 'list', 'set', 'inet', ref.name, 'big'], { netns: h.netns, timeoutMs: 900_000 }));
    if (base.val.err) throw base.val.val;
    const listed = JSON.parse(base.val.val.stdout) as { nftables: { set?: { elem?: unknown[] } }[] };
    const elems = listed.nftables.find((x) => x.set)?.set?.elem?.length;
    console.log(`baseline nft -j list set + JSON.parse: ${base.ms.toFixed(0)} ms, ${elems} elements, ${(base.val.val.stdout.length / 1e6).toFixed(1)} MB of JSON`);
    if (set?.elements !== N || dump.val.val.elements !== N || elems !== N) throw new Error('counts disagree');
    const k = N >= 1e6 && N % 1e6 === 0 ? `${N / 1e6}m` : String(N);
    const common = { baseline: base.ms, baselineName: 'nft -j list set + JSON.parse', unit: 'ms', goal: {}, detail: { elements: N, nft: nftProgram().program, listingMB: +(base.val.val.stdout.length / 1e6).toFixed(1) } };
    report({ id: `status.bigset-${k}.readstatus`, figure: `readStatus() next to a ${N.toLocaleString('en-US')}-element set`, ours: status.ms, ...common, detail: { ...common.detail, countMethod: set?.countMethod } });
    report({ id: `status.bigset-${k}.dump`, figure: `netlink dump counting a ${N.toLocaleString('en-US')}-element set`, ours: dump.ms, ...common, detail: { ...common.detail, replyMB: +(dump.val.val.bytes / 1e6).toFixed(1) } });
  });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
