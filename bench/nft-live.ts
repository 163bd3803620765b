/**
 * Live changes through `Firewall` against the same change as one raw nft
 * process (issue 14): add and delete one element of a 1,000-element and of a
 * 1,000,000-element set, add one rule and delete it by id. Both sides run in
 * the same lab namespace, on the same table, with the same nft program
 * (`NETFENCE_NFT`), through the same namespace wrapper (`nsenter`); rounds
 * alternate which side goes first and the medians are compared.
 *
 * The raw side is one `nft -j -f -` of the same JSON command; for rules,
 * `nft -e -j -f -` so that it knows the handle it deletes later (as netfence
 * does). netfence also checks ownership (netlink, under the namespace lock),
 * validates the plan, and names a failed command.
 *
 * Figures (ms; goal ratio ≤ 1.2): nft.add-element.1k, nft.delete-element.1k,
 * nft.add-element.1m, nft.delete-element.1m, nft.add-rule, nft.delete-rule.
 *
 * Run (root): npx tsx bench/nft-live.ts [rounds] [bigElements]   (NETFENCE_NFT selects the nft)
 */
import { Firewall } from '../src/firewall/index.js';
import { nftProgram, run } from '../src/host/run.js';
import { withLab, type Lab, type LabHost } from '../src/lab/index.js';
import type { RuleInput } from '../src/firewall/spec.js';
import { alternate, report } from './lib/harness.js';

const ROUNDS = Number(process.argv[2] ?? 21);
const BIG = Number(process.argv[3] ?? 1_000_000);
const RULES = 100;

const addr = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const nftDoc = (commands: unknown[]): string => JSON.stringify({ nftables: commands });

async function timed(fn: () => Promise<{ err: boolean; val?: unknown }>): Promise<number> {
  const t = performance.now();
  const r = await fn();
  const ms = performance.now() - t;
  if (r.err) throw r.val;
  return ms;
}

/** Fill `set` of `table` with `n` addresses from `from` (raw nft text, set-up only). */
async function fill(lab: Lab, h: LabHost, table: string, set: string, from: number, n: number): Promise<void> {
  const lines: string[] = [];
  for (let i = from; i < from + n; i += 10_000) {
    const chunk: string[] = [];
    for (let j = i; j < Math.min(from + n, i + 10_000); j++) chunk.push(addr(j));
    lines.push(`add element inet ${table} ${set} { ${chunk.join(', ')} }`);
  }
  const r = await lab.exec(h, ['nft', '-f', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: 600_000 });
  if (r.err) throw r.val;
}

/** add / delete one element, ours vs raw, on `set` of `fw`. */
async function elementFigures(h: LabHost, fw: Firewall, table: string, set: string, size: string, sizeWords: string, base: number): Promise<void> {
  let k = base;
  const raw = (verb: 'add' | 'delete', a: string) => run(['nft', '-j', '-f', '-'], { netns: h.netns, input: nftDoc([{ [verb]: { element: { family: 'inet', table, name: set, elem: [a] } } }]) });
  const pending: { ours: string[]; raw: string[] } = { ours: [], raw: [] };
  const add = await alternate(
    ROUNDS,
    async () => {
      const a = addr(k++);
      pending.ours.push(a);
      return timed(() => fw.addElements(set, [a]));
    },
    async () => {
      const a = addr(k++);
      pending.raw.push(a);
      return timed(() => raw('add', a));
    },
  );
  const del = await alternate(
    ROUNDS,
    async () => {
      const a = pending.ours.shift() as string;
      return timed(() => fw.deleteElements(set, [a]));
    },
    async () => {
      const a = pending.raw.shift() as string;
      return timed(() => raw('delete', a));
    },
  );
  const detail = (x: typeof add) => ({ rounds: ROUNDS, nft: nftProgram().program, oursSamples: x.oursSamples, baselineSamples: x.baselineSamples });
  report({ id: `nft.add-element.${size}`, figure: `Firewall.addElements: 1 element into a ${sizeWords}-element set`, ours: add.ours, baseline: add.baseline, baselineName: 'raw nft -j -f - process', unit: 'ms', goal: { ratioMax: 1.2 }, detail: detail(add) });
  report({ id: `nft.delete-element.${size}`, figure: `Firewall.deleteElements: 1 element from a ${sizeWords}-element set`, ours: del.ours, baseline: del.baseline, baselineName: 'raw nft -j -f - process', unit: 'ms', goal: { ratioMax: 1.2 }, detail: detail(del) });
}

async function main(): Promise<void> {
  await withLab('nftlive', async (lab) => {
    const h = await lab.host('live');

    // A firewall with a 1,000-element set and a chain of RULES rules (the rule figures run here too).
    const fw = new Firewall({ table: 'live_small', family: 'inet', netns: h.netns })
      .set('s', { type: 'ipv4_addr', elements: Array.from({ length: 1000 }, (_, i) => addr(i)) })
      .chain('input', { hook: 'input', priority: 0, policy: 'accept' });
    for (let i = 0; i < RULES; i++) fw.rule('input', { id: `base${i}`, protocol: 'tcp', dport: 20_000 + i, action: 'drop' });
    (await fw.apply()).unwrap();
    await elementFigures(h, fw, 'live_small', 's', '1k', '1,000', 1_000_000);

    // One rule: the exact command netfence sends for it, from a throwaway builder's compile.
    const spec = (id: string, port: number): RuleInput => ({ id, protocol: 'tcp', dport: port, action: 'drop' });
    const ruleJson = (id: string, port: number): unknown => {
      const p = new Firewall({ table: 'live_small', family: 'inet' }).chain('input', { hook: 'input', priority: 0, policy: 'accept' }).rule('input', spec(id, port)).compile();
      const cmd = p.unwrap().nft.find((c) => 'add' in c && 'rule' in (c.add as object));
      if (!cmd) throw new Error('no rule command compiled');
      return cmd;
    };
    let n = 0;
    const ours: string[] = [];
    const rawHandles: number[] = [];
    const addRule = await alternate(
      ROUNDS,
      async () => {
        const id = `live${n++}`;
        ours.push(id);
        return timed(() => fw.addRule('input', spec(id, 30_000 + n)));
      },
      async () => {
        const cmd = ruleJson(`raw${n++}`, 30_000 + n);
        const t = performance.now();
        const r = await run(['nft', '-e', '-j', '-f', '-'], { netns: h.netns, input: nftDoc([cmd]) });
        const ms = performance.now() - t;
        if (r.err) throw r.val;
        const echoed = JSON.parse(r.val.stdout) as { nftables: { add: { rule: { handle: number } } }[] };
        rawHandles.push(echoed.nftables[0]!.add.rule.handle);
        return ms;
      },
    );
    const delRule = await alternate(
      ROUNDS,
      async () => timed(() => fw.removeRule(ours.shift() as string)),
      async () => {
        const handle = rawHandles.shift() as number;
        return timed(() => run(['nft', '-j', '-f', '-'], { netns: h.netns, input: nftDoc([{ delete: { rule: { family: 'inet', table: 'live_small', chain: 'input', handle } } }]) }));
      },
    );
    const detail = (x: typeof addRule) => ({ rules: RULES, rounds: ROUNDS, nft: nftProgram().program, oursSamples: x.oursSamples, baselineSamples: x.baselineSamples });
    report({ id: 'nft.add-rule', figure: `Firewall.addRule: 1 rule into a chain of ${RULES}`, ours: addRule.ours, baseline: addRule.baseline, baselineName: 'raw nft -e -j -f - process', unit: 'ms', goal: { ratioMax: 1.2 }, detail: detail(addRule) });
    report({ id: 'nft.delete-rule', figure: `Firewall.removeRule: 1 rule by id from a chain of ${RULES}`, ours: delRule.ours, baseline: delRule.baseline, baselineName: 'raw nft -j -f - process (handle known)', unit: 'ms', goal: { ratioMax: 1.2 }, detail: detail(delRule) });
    (await fw.destroy()).unwrap();

    // A 1,000,000-element set (declared empty, filled by raw nft: set-up, not measured).
    const big = new Firewall({ table: 'live_big', family: 'inet', netns: h.netns }).set('big', { type: 'ipv4_addr', size: BIG * 2 }).chain('input', { hook: 'input', priority: 0, policy: 'accept' });
    (await big.apply()).unwrap();
    const t = performance.now();
    await fill(lab, h, 'live_big', 'big', 0, BIG);
    console.log(`filled ${BIG.toLocaleString('en-US')} elements in ${(performance.now() - t).toFixed(0)} ms (nft ${nftProgram().program})`);
    await elementFigures(h, big, 'live_big', 'big', '1m', BIG.toLocaleString('en-US'), 2_000_000);
    (await big.destroy()).unwrap();
  });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
