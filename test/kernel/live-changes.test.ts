/**
 * Live changes at the cost of nft (issue 14), with real packets: a rule added
 * live is removed by the handle nft echoed; a handle that went stale behind the
 * Firewall's back (the rule replaced by hand) still removes the right rule;
 * element changes in-process take effect in the right namespace and refuse a
 * table that is not ours; a failed in-process batch is named like before; a
 * SmartProxy manager whose kept rules went stale (another manager changed the
 * table) still places and removes the right rules.
 */
import { describe, expect, it } from 'vitest';
import { Firewall } from '../../src/firewall/firewall.js';
import { nftApply, nftList, listingObjects } from '../../src/host/nft.js';
import { run } from '../../src/host/run.js';
import { NetfenceRouteManager, createNfTablesRoute } from '../../src/integrations/smartproxy.js';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';

type Rec = Record<string, unknown>;

async function pair(lab: Lab): Promise<{ client: LabHost; server: LabHost }> {
  const client = await lab.host('client');
  const server = await lab.host('server');
  await lab.link({ host: client, addrs: ['198.18.1.2/24'] }, { host: server, addrs: ['198.18.1.1/24'] });
  return { client, server };
}

async function rulesWith(netns: string, table: string, chain: string, comment: string): Promise<number[]> {
  const l = await nftList(['chain', 'inet', table, chain], { netns });
  return listingObjects(l.unwrap())
    .filter((o) => o.kind === 'rule' && o.value.comment === comment)
    .map((o) => Number((o.value as unknown as Rec).handle));
}

describe('live changes', () => {
  it('Firewall: addRule/removeRule by kept handle, a stale handle, elements in-process, ownership, a named failure', async () => {
    await withLab('live', async (lab) => {
      const { client, server } = await pair(lab);
      await lab.serve(server, 'tcp', 7001);
      const fw = new Firewall({ table: 'nf_live', family: 'inet', netns: server.netns })
        .set('blocked', { type: 'ipv4_addr' })
        .chain('input', { hook: 'input', priority: 0, policy: 'accept' })
        .rule('input', { id: 'blocked', saddr: '@blocked', action: 'drop' });
      (await fw.apply()).unwrap();
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 7001)).result).toBe('open');

      // a rule added live, removed by the handle nft echoed
      (await fw.addRule('input', { id: 'x', protocol: 'tcp', dport: 7001, action: 'drop' })).unwrap();
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 7001, { timeoutMs: 1200 })).result).toBe('timeout');
      expect(await rulesWith(server.netns, 'nf_live', 'input', 'nf:x')).toHaveLength(1);
      (await fw.removeRule('x')).unwrap();
      expect(await rulesWith(server.netns, 'nf_live', 'input', 'nf:x')).toEqual([]);
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 7001)).result).toBe('open');

      // the same rule replaced by hand (new handle): the kept handle is stale, removeRule still removes it
      (await fw.addRule('input', { id: 'y', protocol: 'tcp', dport: 7001, action: 'drop' })).unwrap();
      const [old] = await rulesWith(server.netns, 'nf_live', 'input', 'nf:y');
      const l = await nftList(['chain', 'inet', 'nf_live', 'input'], { netns: server.netns });
      const rule = listingObjects(l.unwrap()).find((o) => o.kind === 'rule' && o.value.comment === 'nf:y')!.value as unknown as Rec;
      const { handle: _h, ...body } = rule;
      (await nftApply([{ delete: { rule: { family: 'inet', table: 'nf_live', chain: 'input', handle: old } } }, { add: { rule: body } }], { netns: server.netns })).unwrap();
      const [now] = await rulesWith(server.netns, 'nf_live', 'input', 'nf:y');
      expect(now).not.toBe(old);
      (await fw.removeRule('y')).unwrap();
      expect(await rulesWith(server.netns, 'nf_live', 'input', 'nf:y')).toEqual([]);
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 7001)).result).toBe('open');

      // elements: the client's address blocked and unblocked in the server's namespace only
      (await fw.addElements('blocked', ['198.18.1.2'])).unwrap();
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 7001, { timeoutMs: 1200 })).result).toBe('timeout');
      const host = await run(['nft', '-j', 'list', 'tables']);
      expect(host.ok && host.val.stdout).not.toContain('nf_live');
      (await fw.deleteElements('blocked', ['198.18.1.2'])).unwrap();
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 7001)).result).toBe('open');

      // a failed batch is atomic and its command named (deleting an element that is not there)
      const bad = await fw.deleteElements('blocked', ['198.18.9.9']);
      expect(bad.err && bad.val.message).toMatch(/plan\.nft\[0\]/);

      // a table of the same name that is not ours: refused, untouched
      (await fw.destroy()).unwrap();
      (await nftApply([{ add: { table: { family: 'inet', name: 'nf_live' } } }, { add: { set: { family: 'inet', table: 'nf_live', name: 'blocked', type: 'ipv4_addr' } } }], { netns: server.netns })).unwrap();
      const refused = await fw.addElements('blocked', ['198.18.1.2']);
      expect(refused.err && refused.val.code).toBe('APPLY_FAILED');
      expect(refused.err && String((refused.val as { phase?: string }).phase)).toBe('ownership');
      const foreign = await nftList(['set', 'inet', 'nf_live', 'blocked'], { netns: server.netns });
      expect(JSON.stringify(foreign.unwrap())).not.toContain('198.18.1.2');
    });
  });

  it('SmartProxy: kept rules gone stale (another manager changed the table) still give the right rules', async () => {
    await withLab('livesp', async (lab) => {
      const { server } = await pair(lab);
      const route = (name: string, port: number, target = 80) => createNfTablesRoute(name, { host: '198.18.1.2', port: target }, { ports: port });
      const a = new NetfenceRouteManager({ tableName: 'nf_livesp', netns: server.netns });
      const b = new NetfenceRouteManager({ tableName: 'nf_livesp', netns: server.netns });
      (await a.syncRoutes([route('one', 8001), route('two', 8002)])).unwrap();
      // b (same owner) provisions and removes a route: a's kept handles are unchanged; then b removes a's rules by hand
      (await b.provisionRoute(route('three', 8003))).unwrap();
      const id = a.compile(route('two', 8002)).unwrap().id;
      const l = await nftList(['table', 'inet', 'nf_livesp'], { netns: server.netns });
      const mine = listingObjects(l.unwrap()).filter((o) => o.kind === 'rule' && String(o.value.comment ?? '').startsWith(`nf:${id}:`)).map((o) => o.value as unknown as Rec);
      expect(mine.length).toBeGreaterThan(0);
      // re-add route two's rules by hand with new handles: a's kept handles for them are stale
      (await nftApply([...mine.map((v) => ({ delete: { rule: { family: 'inet', table: 'nf_livesp', chain: v.chain, handle: v.handle } } })), ...mine.map((v) => { const { handle: _h, ...r } = v; return { add: { rule: r } }; })], { netns: server.netns })).unwrap();
      (await a.updateRoute(route('two', 8002), route('two', 8002, 81))).unwrap();
      const after = await nftList(['table', 'inet', 'nf_livesp'], { netns: server.netns });
      const rules = listingObjects(after.unwrap()).filter((o) => o.kind === 'rule' && String(o.value.comment ?? '').startsWith(`nf:${id}:`));
      expect(rules.length).toBe(mine.length); // the old ones gone, the new ones in
      expect(JSON.stringify(rules.map((o) => o.value))).toContain('81');
      (await a.destroy()).unwrap();
    });
  });
});
