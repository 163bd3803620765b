import { describe, expect, it } from 'vitest';
import { detectCapabilities } from '../../src/capabilities/index.js';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';
import { apply, destroy } from '../../src/plan/executor.js';
import { nftBatchFeatures } from '../../src/plan/nft-features.js';
import { ownershipCommands, OwnershipError } from '../../src/plan/ownership.js';
import { emptyPlan, type Plan } from '../../src/plan/types.js';
import { run } from '../../src/host/run.js';
import { ApplyError } from '../../src/errors.js';
import type { Command } from '../../src/nft/schema/index.js';

const OURS = { family: 'inet' as const, name: 'nf_own' };

async function text(netns: string, argv: string[]): Promise<string> {
  const r = await run(['nft', ...argv], { netns });
  if (r.err) throw r.val;
  return r.val.stdout;
}

/** An iptables-nft table and a hand-made nft table, as another program would leave them. */
async function foreignTables(lab: Lab, h: LabHost): Promise<() => Promise<Record<string, string>>> {
  await lab.sh(h, ['iptables-nft', '-A', 'INPUT', '-s', '198.18.9.9', '-j', 'DROP']);
  await lab.sh(h, ['nft', 'add', 'table', 'inet', 'handmade']);
  await lab.sh(h, ['nft', 'add', 'set', 'inet', 'handmade', 'allow', '{ type ipv4_addr; flags interval; elements = { 198.18.7.0/24 }; }']);
  await lab.sh(h, ['nft', 'add', 'chain', 'inet', 'handmade', 'hm_fwd', '{ type filter hook forward priority 10; policy accept; }']);
  await lab.sh(h, ['nft', 'add', 'rule', 'inet', 'handmade', 'hm_fwd', 'ip', 'saddr', '@allow', 'accept', 'comment', '"hand written"']);
  return async () => ({
    iptables: await text(h.netns, ['list', 'table', 'ip', 'filter']),
    handmade: await text(h.netns, ['list', 'table', 'inet', 'handmade']),
    iptablesJson: await text(h.netns, ['-j', 'list', 'table', 'ip', 'filter']),
    handmadeJson: await text(h.netns, ['-j', 'list', 'table', 'inet', 'handmade']),
  });
}

function ourPlan(netns: string): Plan {
  const p = emptyPlan('test:ownership', netns);
  p.tables.push(OURS);
  p.nft.push(
    { add: { chain: { family: 'inet', table: OURS.name, name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'accept' } } },
    { add: { rule: { family: 'inet', table: OURS.name, chain: 'input', expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '198.18.8.8' } }, { drop: null }] } } },
  );
  return p;
}

describe('ownership: foreign tables are never touched', () => {
  it('keeps an iptables-nft table and a hand-made table byte-identical through apply, failed apply, rollback and destroy', async () => {
    await withLab('own', async (lab) => {
      const h = await lab.host('a');
      const snap = await foreignTables(lab, h);
      const before = await snap();
      expect(before.iptables).toContain('198.18.9.9');
      expect(before.handmade).toContain('hand written');

      // 1. apply
      const a = await apply(ourPlan(h.netns), { snapshot: 'always' });
      expect(a.ok, a.err ? a.val.message : '').toBe(true);
      expect(await text(h.netns, ['list', 'table', 'inet', OURS.name])).toContain('198.18.8.8');
      expect(await snap()).toEqual(before);

      // 2. failed apply (a step fails after the nft batch went in) → restored
      const p2 = ourPlan(h.netns);
      p2.nft.push({ add: { rule: { family: 'inet', table: OURS.name, chain: 'input', expr: [{ drop: null }] } } });
      p2.steps.push({ id: 'tc:bad', description: 'qdisc on a missing device', do: [{ kind: 'exec', argv: ['tc', 'qdisc', 'add', 'dev', 'nonexist0', 'root', 'htb'] }], undo: [] });
      const ours1 = await text(h.netns, ['list', 'table', 'inet', OURS.name]);
      const f = await apply(p2);
      expect(f.err).toBe(true);
      expect(f.err && f.val.phase).toBe('tc:bad');
      expect(f.err && f.val.restored).toBe(true);
      expect(await text(h.netns, ['list', 'table', 'inet', OURS.name])).toBe(ours1);
      expect(await snap()).toEqual(before);

      // 3. a plan that names a foreign table is refused, nothing applied
      for (const foreign of [{ family: 'ip' as const, name: 'filter' }, { family: 'inet' as const, name: 'handmade' }]) {
        const p3 = emptyPlan('test:ownership', h.netns);
        p3.tables.push(foreign);
        p3.nft.push({ add: { chain: { family: foreign.family, table: foreign.name, name: 'sneaky' } } });
        const r3 = await apply(p3, { snapshot: 'always' });
        expect(r3.err).toBe(true);
        expect(r3.err && r3.val.phase).toBe('ownership');
        expect(r3.err && (r3.val as ApplyError).cause).toBeInstanceOf(OwnershipError);
        expect(await snap()).toEqual(before);
      }
      // a plan whose commands touch a table it does not own is refused before any tool runs
      const p4 = ourPlan(h.netns);
      p4.nft.push({ add: { chain: { family: 'inet', table: 'handmade', name: 'sneaky' } } });
      const r4 = await apply(p4);
      expect(r4.err && r4.val.phase).toBe('validate');
      const p5 = ourPlan(h.netns);
      p5.nft.push({ flush: { ruleset: null } });
      expect((await apply(p5)).err).toBe(true);
      expect(await snap()).toEqual(before);

      // 4. rollback
      expect((await a.unwrap().rollback()).ok).toBe(true);
      expect(a.unwrap().state).toBe('rolled-back');
      expect(await text(h.netns, ['list', 'tables'])).not.toContain(OURS.name);
      expect(await snap()).toEqual(before);

      // 5. destroy: refuses foreign tables (nothing deleted), deletes ours
      const again = await apply(ourPlan(h.netns));
      expect(again.ok).toBe(true);
      const d1 = await destroy([OURS, { family: 'inet', name: 'handmade' }], { netns: h.netns, owner: 'test:ownership' });
      expect(d1.err).toBe(true);
      expect(d1.err && d1.val).toBeInstanceOf(OwnershipError);
      expect(await text(h.netns, ['list', 'tables'])).toContain(OURS.name);
      const d2 = await destroy([OURS], { netns: h.netns, owner: 'someone:else' });
      expect(d2.err && d2.val).toBeInstanceOf(OwnershipError);
      const d3 = await destroy([OURS, { family: 'inet', name: 'absent' }], { netns: h.netns, owner: 'test:ownership' });
      expect(d3.ok).toBe(true);
      expect(d3.unwrap().deleted).toEqual([OURS]);
      expect(await text(h.netns, ['list', 'tables'])).not.toContain(OURS.name);
      expect(await snap()).toEqual(before);
    });
  });

  it('another netfence owner cannot take over a table', async () => {
    await withLab('own2', async (lab) => {
      const h = await lab.host('a');
      expect((await apply(ourPlan(h.netns))).ok).toBe(true);
      const listing = await text(h.netns, ['list', 'table', 'inet', OURS.name]);
      const other = { ...ourPlan(h.netns), owner: 'test:intruder' };
      const r = await apply(other);
      expect(r.err && r.val.phase).toBe('ownership');
      expect(r.err && ((r.val.cause as OwnershipError).ownedBy)).toBe('test:ownership');
      expect(await text(h.netns, ['list', 'table', 'inet', OURS.name])).toBe(listing);
      expect((await destroy([OURS], { netns: h.netns, owner: 'test:ownership' })).ok).toBe(true);
    });
  });

  it('table comment netfence:<owner> where this nft keeps JSON table comments; a table marked by the counter alone (as nft 1.0.6 leaves it) stays ours', async () => {
    const report = await detectCapabilities();
    const jsonComments = report.nft.features.tableComment.detail?.json === true;
    // the executor's own probe agrees with the capability report
    const features = await nftBatchFeatures();
    expect(features.tableComment).toBe(jsonComments);
    expect(features.destroy).toBe(report.nft.features.destroy.available && report.nft.features.destroy.detail?.json === true);
    const tableObj = async (netns: string, name: string): Promise<Record<string, unknown>> => {
      const l = JSON.parse(await text(netns, ['-j', 'list', 'table', 'inet', name])) as { nftables: Record<string, Record<string, unknown>>[] };
      return l.nftables.find((o) => o.table)?.table ?? {};
    };
    // the table's own comment is the first line of its body (the mark counter has a comment too)
    const textComment = async (netns: string, name: string): Promise<boolean> =>
      new RegExp(`^table inet ${name} \\{\\n\\s*comment "netfence:test:ownership"\\n`).test(await text(netns, ['list', 'table', 'inet', name]));
    await withLab('own3', async (lab) => {
      const h = await lab.host('a');
      // 1. a new table: the comment is there exactly when the report says JSON keeps it (checked in the text listing, which every nft prints)
      expect((await apply(ourPlan(h.netns))).ok).toBe(true);
      expect(await textComment(h.netns, OURS.name)).toBe(jsonComments);
      if (jsonComments) expect((await tableObj(h.netns, OURS.name)).comment).toBe('netfence:test:ownership');
      // 2. a full replacement re-creates the table: it keeps the comment
      const full = ourPlan(h.netns);
      full.nft.unshift({ add: { table: OURS } }, { delete: { table: OURS } }, { add: { table: OURS } });
      expect((await apply(full)).ok).toBe(true);
      expect(await textComment(h.netns, OURS.name)).toBe(jsonComments);
      expect((await destroy([OURS], { netns: h.netns, owner: 'test:ownership' })).ok).toBe(true);

      // 3. a table as nft 1.0.6 leaves it: the counter mark and no comment
      const old = { family: 'inet' as const, name: 'nf_old' };
      const made = await run(['nft', '-j', '-f', '-'], { netns: h.netns, input: JSON.stringify({ nftables: ownershipCommands(old, 'test:ownership') }) });
      expect(made.ok).toBe(true);
      expect(await textComment(h.netns, old.name)).toBe(false);
      const p = ourPlan(h.netns);
      p.tables = [old];
      p.nft = p.nft.map((c) => JSON.parse(JSON.stringify(c).replaceAll(`"${OURS.name}"`, `"${old.name}"`)) as Command);
      const r = await apply(p);
      expect(r.ok, r.err ? r.val.message : '').toBe(true);
      expect(await text(h.netns, ['list', 'table', 'inet', old.name])).toContain('198.18.8.8');
      // another owner is still refused by the counter mark alone
      const intruder = await apply({ ...p, owner: 'test:intruder' });
      expect(intruder.err && intruder.val.phase).toBe('ownership');
      expect((await destroy([old], { netns: h.netns, owner: 'test:ownership' })).ok).toBe(true);
      expect(await text(h.netns, ['list', 'tables'])).not.toContain(old.name);
    });
  });
});
