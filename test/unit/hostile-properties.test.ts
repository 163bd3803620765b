/**
 * Hostile input, property-based: every builder gets NETFENCE_HOSTILE_CASES
 * (default 10,000) random and adversarial inputs. Each case must end as a
 * typed error naming a field of the input, or as a plan that passes the plan
 * validator, the strict emit schema for nft JSON and an independent scan for
 * strings that must never reach a tool. No other exception may escape.
 * The processes run on a FakeHost: every argv and stdin that would reach a
 * tool is recorded and scanned too (and nothing runs on this machine).
 */
import './fake-setup.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeHost } from '../../src/host/fake.js';
import { setHost, withHost } from '../../src/host/host.js';
import { validatePlan } from '../../src/plan/validate-plan.js';
import { parseDocument } from '../../src/nft/parse.js';
import type { NftBlocklist } from '../../src/xdp/nft-backend.js';
import { dpiHarness, errorProblems, fcParams, firewallHarness, HOSTILE_CASES, smartproxyHarness, throttlerHarness, vmHarness, xdpHarness, type Harness, type Outcome } from '../lab/arbitraries.js';
import { scanInvocation, scanPlan, type Finding } from '../lab/injection-corpus.js';

/** NftBlocklist.setup against a FakeHost (every process it would start is recorded, nothing runs): the commands it sends. */
const setupCache = new Map<string, unknown[]>();
async function setupCommands(nb: NftBlocklist, md: boolean, comment: string): Promise<unknown[]> {
  const key = JSON.stringify([nb.table, nb.iface, nb.netns, md, comment]);
  const hit = setupCache.get(key);
  if (hit) return structuredClone(hit);
  const cmds = await setupCommandsUncached(nb, md, comment);
  setupCache.set(key, cmds);
  return structuredClone(cmds);
}
async function setupCommandsUncached(nb: NftBlocklist, md: boolean, comment: string): Promise<unknown[]> {
  const fake = new FakeHost({ netns: nb.netns ? [nb.netns] : [], links: { [nb.netns ?? '']: [{ ifname: nb.iface }] } });
  // setup(matchDestination[, comment]): the comment argument goes away as the nft fallback moves onto the executor
  const setup = nb.setup.bind(nb) as (md: boolean, comment?: string) => Promise<{ err: boolean; val: unknown }>;
  const r = await withHost(fake, () => setup(md, comment));
  if (r.err) throw r.val;
  if (fake.calls.length === 0) throw new Error('NftBlocklist.setup started no process');
  for (const c of fake.calls) {
    const f = scanInvocation(c.argv, c.input);
    if (f.length) throw new Error(`XdpBlocklist sent unvalidated input to a tool: ${JSON.stringify(f)}`);
  }
  return fake.committedBatches({ netns: nb.netns })[0] ?? [];
}

interface Tally {
  cases: number;
  plans: number;
  typedReturned: number;
  typedThrown: number;
  byCode: Record<string, number>;
}
const tallies: Record<string, Tally> = {};

function checkPlanOutcome(h: Harness, plan: unknown): string[] {
  const out: string[] = [];
  const v = validatePlan(plan);
  if (v.err) out.push(`plan validator refused the plan: ${v.val.message}`);
  const nft = (plan as { nft: unknown[] }).nft;
  if (nft.length) {
    const d = parseDocument({ nftables: nft }, { mode: 'emit' });
    if (d.err) out.push(`emit schema refused the nft JSON: ${d.val.message.slice(0, 2000)}`);
  }
  const f: Finding[] = scanPlan(plan);
  if (f.length) out.push(`forbidden strings in the ${h.name} plan: ${JSON.stringify(f.slice(0, 5))}`);
  return out;
}

async function runHarness(h: Harness): Promise<Tally> {
  const t: Tally = { cases: 0, plans: 0, typedReturned: 0, typedThrown: 0, byCode: {} };
  tallies[h.name] = t;
  const check = (input: unknown, o: Outcome): void => {
      if (o.kind === 'plan') {
        t.plans++;
        const p = checkPlanOutcome(h, o.plan);
        if (p.length) throw new Error(p.join('\n'));
      } else {
        if (o.thrown) t.typedThrown++;
        else t.typedReturned++;
        t.byCode[o.error.constructor.name] = (t.byCode[o.error.constructor.name] ?? 0) + 1;
        const p = errorProblems(h, o.error, input);
        if (p.length) throw new Error(`${p.join('\n')}\nerror: ${o.error.message.slice(0, 1500)}`);
      }
  };
  if (h.async)
    await fc.assert(
      fc.asyncProperty(h.arb, async (input) => {
        t.cases++;
        check(input, await h.run(input));
      }),
      fcParams(),
    );
  else
    fc.assert(
      fc.property(h.arb, (input) => {
        t.cases++;
        check(input, h.run(input) as Outcome);
      }),
      fcParams(),
    );
  return t;
}

/** Every process any builder would start outside the FakeHost above lands here (and fails): none may. */
const guard = new FakeHost();
beforeAll(() => setHost(guard));
afterAll(() => setHost(undefined));

describe(`hostile input: ${HOSTILE_CASES} property cases per builder`, () => {
  afterAll(() => {
    // the figures of the report
    console.log(`hostile property tally (cases, plans, typed errors returned/thrown, by class):\n${Object.entries(tallies)
      .map(([n, t]) => `  ${n}: ${t.cases} cases, ${t.plans} plans, ${t.typedReturned + t.typedThrown} typed errors (${t.typedReturned} returned, ${t.typedThrown} thrown) ${JSON.stringify(t.byCode)}`)
      .join('\n')}`);
  });

  const harnesses: Harness[] = [firewallHarness, vmHarness, smartproxyHarness, throttlerHarness, xdpHarness(setupCommands), dpiHarness(true), dpiHarness(false)];
  for (const h of harnesses) {
    it(`${h.name}: every case is a typed error naming a field, or a clean plan`, async () => {
      const t = await runHarness(h);
      expect(t.cases).toBe(HOSTILE_CASES);
      // both outcomes must really occur, or the generator is not doing its job
      expect(t.plans).toBeGreaterThan(HOSTILE_CASES / 20);
      expect(t.typedReturned + t.typedThrown).toBeGreaterThan(HOSTILE_CASES / 20);
      expect(guard.calls.map((c) => c.argv.join(' '))).toEqual([]);
    });
  }
});
