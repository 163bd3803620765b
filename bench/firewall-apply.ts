/**
 * Bench: Firewall compile + apply vs raw `nft -j -f -` of the same JSON, and
 * the cost of adding one element to a 1k vs a 1M element set.
 *
 * Runs inside throwaway lab namespaces (never the machine's own).
 *   npx tsx bench/firewall-apply.ts
 * Figures (ratios measured in this run):
 *   1. (compile + apply through netfence) / (raw nft -j -f - of the same document),
 *      10,000 rules + a 200,000-element set;
 *   2. (add 1 element to a 1,000,000-element set) / (add 1 element to a 1,000-element set).
 */
import { Firewall } from '../src/firewall/firewall.js';
import { run } from '../src/host/run.js';
import { ownershipCommands } from '../src/plan/ownership.js';
import { withLab } from '../src/lab/index.js';

const RULES = 10_000;
const ELEMENTS = 200_000;

function v6(i: number): string {
  return `fd00::${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
}

function bigFirewall(netns: string): Firewall {
  const elements: string[] = [];
  for (let i = 0; i < ELEMENTS; i++) elements.push(v6(i));
  const fw = new Firewall({ table: 'nf_bench', family: 'inet', netns })
    .set('big', { type: 'ipv6_addr', elements })
    .chain('input', { hook: 'input', priority: 0 })
    .rule('input', { id: 'big', saddr: '@big', action: 'drop' });
  for (let i = 0; i < RULES - 1; i++) fw.rule('input', { id: `r${i}`, protocol: 'tcp', dport: 1 + (i % 65000), saddr: `198.18.${(i >> 8) & 255}.${i & 255}`, action: 'accept' });
  return fw;
}

async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  return [r, performance.now() - t];
}

async function main(): Promise<void> {
  await withLab('fwbench', async (lab) => {
    const a = await lab.host('a');
    const b = await lab.host('b');

    // 1. compile + apply through netfence (executor: ownership check, one nft batch, verify)
    const [applied, tNetfence] = await time(async () => {
      const fw = bigFirewall(a.netns);
      const r = await fw.apply();
      if (r.err) throw r.val;
      return fw;
    });
    // raw: the same JSON document (ownership marker + the plan) fed to nft once, through the same real pipe
    const plan = bigFirewall(b.netns).compile();
    if (plan.err) throw plan.val;
    const doc = JSON.stringify({ nftables: [...ownershipCommands({ family: 'inet', name: 'nf_bench' }, plan.val.owner), ...plan.val.nft] });
    const [raw, tRaw] = await time(() => run(['nft', '-j', '-f', '-'], { netns: b.netns, input: doc, timeoutMs: 300_000 }));
    if (raw.err) throw raw.val;
    console.log(`10,000 rules + 200,000-element set (document ${(doc.length / 1e6).toFixed(1)} MB)`);
    console.log(`  netfence compile+apply: ${tNetfence.toFixed(0)} ms   raw nft -j -f -: ${tRaw.toFixed(0)} ms   ratio: ${(tNetfence / tRaw).toFixed(2)}`);
    await applied.destroy();

    // 2. one element into a 1k set vs a 1M set: both sets live at once, measurements interleaved
    //    (the machine is shared, so noise hits both sizes alike); median of 9 each.
    const sizes = [1_000, 1_000_000] as const;
    const fws: Firewall[] = [];
    for (const n of sizes) {
      const elements: string[] = [];
      for (let i = 0; i < n; i++) elements.push(v6(i));
      const fw = new Firewall({ table: `nf_set${n}`, family: 'inet', netns: a.netns }).set('s', { type: 'ipv6_addr', elements });
      const r = await fw.apply();
      if (r.err) throw r.val;
      fws.push(fw);
    }
    const samples: number[][] = [[], []];
    const rawSamples: number[][] = [[], []];
    for (let k = 0; k < 9; k++) {
      for (let j = 0; j < 2; j++) {
        const n = sizes[j] as number;
        const [res, ms] = await time(() => (fws[j] as Firewall).addElements('s', [v6(n + 1 + k)]));
        if (res.err) throw res.val;
        (samples[j] as number[]).push(ms);
        const cmd = JSON.stringify({ nftables: [{ add: { element: { family: 'inet', table: `nf_set${n}`, name: 's', elem: [v6(n + 100 + k)] } } }] });
        const [raw2, ms2] = await time(() => run(['nft', '-j', '-f', '-'], { netns: a.netns, input: cmd }));
        if (raw2.err) throw raw2.val;
        (rawSamples[j] as number[]).push(ms2);
      }
    }
    const med = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)] as number;
    sizes.forEach((n, j) => {
      console.log(`add 1 element to a set of ${n.toLocaleString('en')}: netfence median ${med(samples[j] as number[]).toFixed(1)} ms, raw nft median ${med(rawSamples[j] as number[]).toFixed(1)} ms`);
    });
    console.log(`  ratio 1M / 1k (netfence addElements): ${(med(samples[1] as number[]) / med(samples[0] as number[])).toFixed(2)}   (raw nft: ${(med(rawSamples[1] as number[]) / med(rawSamples[0] as number[])).toFixed(2)})`);
    for (const fw of fws) await fw.destroy();
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
