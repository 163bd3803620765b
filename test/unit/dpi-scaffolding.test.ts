/**
 * DpiBlocker on the plan (no kernel): host facts in, one plan out. The
 * xtables form carries the step whose undo removes what iptables-nft created
 * (an `nft-prune` action the executor runs inside the namespace lock), the
 * plan passes validation, and the prune decides from a listing exactly what
 * may go.
 */
import { describe, expect, it } from 'vitest';
import { DpiBlocker } from '../../src/dpi/dpi-blocker.js';
import { scaffoldingStep } from '../../src/dpi/scaffolding.js';
import { compileSteering } from '../../src/dpi/steering.js';
import { UnsupportedError, ValidationError } from '../../src/errors.js';
import { pruneCommands, type NftPruneAction } from '../../src/plan/nft-prune.js';
import { validatePlan } from '../../src/plan/validate-plan.js';

const caps = (queue: boolean, nfqueue: boolean) => ({
  nft: { features: { queue: queue ? { available: true } : { available: false, reason: 'no CONFIG_NFT_QUEUE' } } },
  iptables: { nfqueue: nfqueue ? { available: true } : { available: false, reason: 'no xt_NFQUEUE' } },
}) as never;

describe('DpiBlocker.compile with host facts', () => {
  it('the capability report chooses the form; neither form is an UnsupportedError; auto without a report is refused', () => {
    const b = new DpiBlocker({ queues: [5, 1] });
    const nft = b.compile({ capabilities: caps(true, true) });
    expect(nft.ok && nft.val.steering).toBe('nft');
    const xt = b.compile({ capabilities: caps(false, true) });
    expect(xt.ok && xt.val.steering).toBe('xtables');
    const none = b.compile({ capabilities: caps(false, false) });
    expect(none.err && none.val).toBeInstanceOf(UnsupportedError);
    expect(none.err && none.val.message).toMatch(/no CONFIG_NFT_QUEUE.*no xt_NFQUEUE/);
    const blind = b.compile({});
    expect(blind.err && blind.val).toBeInstanceOf(ValidationError);
    // a forced option wins over the report; an explicit fact wins over the option
    expect(new DpiBlocker({ nftQueue: false }).compile({ capabilities: caps(true, true) }).unwrap().steering).toBe('xtables');
    expect(new DpiBlocker({ nftQueue: false }).compile({ nftQueue: true }).unwrap().steering).toBe('nft');
  });

  it('xtables form: the scaffolding step comes first (undone last) and prunes only what did not exist; the plan validates', () => {
    const b = new DpiBlocker({ queues: [5, 1], nftQueue: false });
    const c = b.compile({ xtablesFilter: [{ family: 'ip', table: true, chains: ['FORWARD'] }, { family: 'ip6', table: false, chains: [] }] }).unwrap();
    expect(c.plan.steps.map((s) => s.id)).toEqual(['dpi:xtables-scaffolding', 'dpi:dpi:xtables:ipv4', 'dpi:dpi:xtables:ipv6']);
    const step = c.plan.steps[0]!;
    expect(step.do).toEqual([]);
    expect(step.undo).toEqual([
      { kind: 'nft-prune', family: 'ip', table: 'filter', chains: ['INPUT', 'OUTPUT'], deleteTable: false },
      { kind: 'nft-prune', family: 'ip6', table: 'filter', chains: ['INPUT', 'FORWARD', 'OUTPUT'], deleteTable: true },
    ]);
    expect(validatePlan(c.plan).ok).toBe(true);
    // everything existed: nothing to prune, no step; no facts: no step either (nothing is removed blindly)
    const all = ['INPUT', 'FORWARD', 'OUTPUT'];
    expect(scaffoldingStep([{ family: 'ip', table: true, chains: all }])).toBeUndefined();
    expect(b.compile(false).unwrap().plan.steps.map((s) => s.id)).toEqual(['dpi:dpi:xtables:ipv4', 'dpi:dpi:xtables:ipv6']);
    // the nft form never gets it
    expect(b.compile({ nftQueue: true, xtablesFilter: [{ family: 'ip', table: false, chains: [] }] }).unwrap().plan.steps.map((s) => s.id)).toEqual(['dpi:dpi:ct-acct']);
  });

  it('a malformed prune action is refused by plan validation', () => {
    const c = new DpiBlocker({ nftQueue: false }).compile({ xtablesFilter: [{ family: 'ip', table: false, chains: [] }] }).unwrap();
    const bad = structuredClone(c.plan);
    (bad.steps[0]!.undo[0] as { table: string }).table = 'filter; flush ruleset';
    expect(validatePlan(bad).err).toBe(true);
  });

  it('one default for the steered packets (24), in the steering schema, for the blocker and compileSteering alike', () => {
    const text = JSON.stringify(new DpiBlocker({ queues: [5, 1] }).compile(false).unwrap().plan.steps);
    expect(text).toContain('--connbytes 0:24 ');
    const s = compileSteering({ queues: [5, 1], failOpen: true, nftQueue: false }).unwrap();
    expect(JSON.stringify(s.steps)).toContain('--connbytes 0:24 ');
  });

  it('blockTtlMs, the deprecated blockTtl (seconds) converted once, never both', async () => {
    const adds: (number | undefined)[] = [];
    const blocklist = { add: async (_e: string[], o?: { ttl?: number }) => (adds.push(o?.ttl), (await import('../../src/result.js')).Ok(undefined)) };
    type Feed = { onWorkerEvent(queue: number, data: unknown): void };
    const det = { kind: 'detection', transport: 'tcp', family: 4, client: { addr: '198.18.2.2', port: 1 }, server: { addr: '198.18.1.2', port: 2 }, reason: 'x', peers: true, atPacket: 1, monitored: false };
    for (const o of [{ blockTtlMs: 90_000 }, { blockTtl: 90 }, {}]) (new DpiBlocker({ blocklist, ...o }) as unknown as Feed).onWorkerEvent(1, det);
    await new Promise((r) => setTimeout(r, 10));
    expect(adds).toEqual([90, 90, 3600]);
    expect(() => new DpiBlocker({ blockTtl: 1, blockTtlMs: 1000 })).toThrow(/not both/);
  });
});

describe('nft-prune: what may go, decided from the listing', () => {
  const a = (o: Partial<NftPruneAction> = {}): NftPruneAction => ({ kind: 'nft-prune', family: 'ip', table: 'filter', chains: ['INPUT', 'FORWARD', 'OUTPUT'], deleteTable: true, ...o });
  const listing = (...objs: unknown[]) => ({ nftables: [{ metainfo: { json_schema_version: 1 } }, { table: { family: 'ip', name: 'filter', handle: 1 } }, ...objs] });
  const chain = (name: string) => ({ chain: { family: 'ip', table: 'filter', name, handle: 2 } });
  const rule = (chainName: string, expr: unknown[] = [{ accept: null }]) => ({ rule: { family: 'ip', table: 'filter', chain: chainName, handle: 3, expr } });

  it('deletes the table when it holds nothing but empty listed chains', () => {
    expect(pruneCommands(a(), listing(chain('INPUT'), chain('FORWARD')))).toEqual([{ delete: { table: { family: 'ip', name: 'filter' } } }]);
    expect(pruneCommands(a(), listing())).toEqual([{ delete: { table: { family: 'ip', name: 'filter' } } }]);
  });

  it('a rule, a foreign chain or a set keeps the table; only empty, unreferenced listed chains go', () => {
    expect(pruneCommands(a(), listing(chain('INPUT'), chain('FORWARD'), rule('FORWARD')))).toEqual([{ delete: { chain: { family: 'ip', table: 'filter', name: 'INPUT' } } }]);
    expect(pruneCommands(a(), listing(chain('INPUT'), chain('MINE')))).toEqual([{ delete: { chain: { family: 'ip', table: 'filter', name: 'INPUT' } } }]);
    expect(pruneCommands(a(), listing(chain('OUTPUT'), { set: { family: 'ip', table: 'filter', name: 's' } }))).toEqual([{ delete: { chain: { family: 'ip', table: 'filter', name: 'OUTPUT' } } }]);
    // a chain something jumps to stays (even an empty one)
    expect(pruneCommands(a({ chains: ['OUTPUT'] }), listing(chain('OUTPUT'), chain('X'), rule('X', [{ jump: { target: 'OUTPUT' } }])))).toEqual([]);
  });

  it('without deleteTable only chains go; chains not listed are never touched', () => {
    expect(pruneCommands(a({ deleteTable: false, chains: ['INPUT'] }), listing(chain('INPUT'), chain('FORWARD')))).toEqual([{ delete: { chain: { family: 'ip', table: 'filter', name: 'INPUT' } } }]);
    expect(pruneCommands(a({ deleteTable: false, chains: [] }), listing(chain('INPUT')))).toEqual([]);
  });
});
