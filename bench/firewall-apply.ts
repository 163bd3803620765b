/**
 * Bench: Firewall compile + apply of 10,000 rules and a 200,000-element set
 * against raw `nft -j -f -` of the same JSON document, same run, same lab
 * namespace (issue 14). Figure id: `fw.apply.10k-rules-200k-set`.
 *
 * Ours: `new Firewall(...)` with the set and the rules declared from plain
 * inputs (strings prepared beforehand), then `apply()` — builder validation,
 * compile, plan validation, ownership probe, the nft batch, verification.
 * Baseline: the exact batch the executor sends (ownership marks + plan),
 * serialized beforehand, piped to one `nft -j -f -` process. Each side starts
 * from an empty namespace (the table is deleted between sides, untimed); one
 * untimed warm-up of each side; rounds alternate which side goes first;
 * medians are reported.
 *
 *   npx tsx bench/firewall-apply.ts [rounds]      (NETFENCE_NFT selects the nft)
 */
import { Firewall } from '../src/firewall/firewall.js';
import { nftDocument } from '../src/host/nft.js';
import { nftProgram, run } from '../src/host/run.js';
import { withLab } from '../src/lab/index.js';
import { planBatch } from '../src/plan/batch.js';
import { nftBatchFeatures } from '../src/plan/nft-features.js';
import { alternate, report } from './lib/harness.js';

const RULES = 10_000;
const ELEMENTS = 200_000;
const ROUNDS = Number(process.argv[2] ?? 9);
const TABLE = 'nf_bench';

function v6(i: number): string {
  return `fd00::${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
}

const elements: string[] = [];
for (let i = 0; i < ELEMENTS; i++) elements.push(v6(i));
const rules = Array.from({ length: RULES - 1 }, (_, i) => ({ id: `r${i}`, protocol: 'tcp' as const, dport: 1 + (i % 65000), saddr: `198.18.${(i >> 8) & 255}.${i & 255}`, action: 'accept' as const }));

/** The firewall of the figure, declared from plain inputs (what a caller writes). */
function bigFirewall(netns: string): Firewall {
  const fw = new Firewall({ table: TABLE, family: 'inet', netns })
    .set('big', { type: 'ipv6_addr', elements })
    .chain('input', { hook: 'input', priority: 0 })
    .rule('input', { id: 'big', saddr: '@big', action: 'drop' });
  for (const r of rules) fw.rule('input', r);
  return fw;
}

async function main(): Promise<void> {
  await withLab('fwapply', async (lab) => {
    const h = await lab.host('a');
    const clear = async (): Promise<void> => {
      await run(['nft', 'delete', 'table', 'inet', TABLE], { netns: h.netns, timeoutMs: 300_000 }); // absent: fine
    };
    // The baseline document: exactly the batch the executor sends for this plan.
    const plan = bigFirewall(h.netns).compile();
    if (plan.err) throw plan.val;
    const doc = nftDocument(planBatch(plan.val, await nftBatchFeatures()).commands);
    const timings: Record<string, number>[] = [];

    const ours = async (): Promise<number> => {
      await clear();
      const t = performance.now();
      const r = await bigFirewall(h.netns).apply();
      const ms = performance.now() - t;
      if (r.err) throw r.val;
      timings.push({ ...r.val.timings });
      return ms;
    };
    const raw = async (): Promise<number> => {
      await clear();
      const t = performance.now();
      const r = await run(['nft', '-j', '-f', '-'], { netns: h.netns, input: doc, timeoutMs: 300_000 });
      const ms = performance.now() - t;
      if (r.err) throw r.val;
      return ms;
    };
    // warm-up of both sides, untimed: page cache and the nft binary; the JIT of the builder and executor
    await raw();
    await ours();
    timings.length = 0;
    const a = await alternate(ROUNDS, ours, raw);
    await clear();
    const phases: Record<string, number> = {};
    for (const k of Object.keys(timings[0] ?? {})) phases[k] = [...timings.map((x) => x[k] ?? 0)].sort((p, q) => p - q)[Math.floor(timings.length / 2)] as number;
    report({
      id: 'fw.apply.10k-rules-200k-set',
      figure: 'Firewall compile + apply, 10,000 rules + 200,000-element set',
      ours: a.ours,
      baseline: a.baseline,
      baselineName: 'raw nft -j -f - of the same JSON',
      unit: 'ms',
      goal: { ratioMax: 1.1 },
      detail: { rounds: a.rounds, oursSamples: a.oursSamples.map(Math.round), baselineSamples: a.baselineSamples.map(Math.round), documentMB: +(doc.length / 1e6).toFixed(1), executorPhasesMedianMs: phases, nft: nftProgram().program },
    });
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
