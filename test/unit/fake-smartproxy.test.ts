/**
 * SmartProxy integration orchestration on a FakeHost: NetfenceRouteManager
 * and NFTablesManager provision, order, update, sync and remove routes; each
 * change is one committed nft batch; the route rules in the fake kernel are
 * placed by priority; stop/destroy leave nothing behind.
 */
import './fake-setup.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { createNfTablesRoute, NetfenceRouteManager, NFTablesManager, type IRouteConfig } from '../../src/integrations/smartproxy.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';

const NS = 'sp-fake';
const T = (host: string | string[], port: number | 'preserve' = 80) => ({ host, port });

/** Route ids of the rules in a chain of the fake kernel, in rule order. */
function routeOrder(fake: FakeHost, chain: string, table = 'nf_sp'): string[] {
  const rules = fake.nftOf(NS).rules('inet', table, chain) ?? [];
  const ids: string[] = [];
  for (const r of rules) {
    const id = /^nf:([^:]+):/.exec(r.comment ?? '')?.[1];
    if (id && ids[ids.length - 1] !== id) ids.push(id);
  }
  return ids;
}
const chainsWithRules = (fake: FakeHost, table = 'nf_sp'): string[] => [...(fake.nftOf(NS).table('inet', table)?.chains.values() ?? [])].filter((c) => c.rules.length).map((c) => c.name);

let fake: FakeHost;
beforeEach(() => {
  clearNftBatchFeatures();
  fake = new FakeHost({ netns: [NS] });
});

describe('SmartProxy route managers on a FakeHost', () => {
  it('NetfenceRouteManager: provision (one batch each), priority order, update in place, deprovision, destroy', async () => {
    const m = new NetfenceRouteManager({ tableName: 'nf_sp', netns: NS });
    const low = createNfTablesRoute('low', T('198.18.2.2'), { ports: 8080 });
    const high: IRouteConfig = { ...createNfTablesRoute('high', T('198.18.3.2'), { ports: 8081 }), priority: 100 };
    const mid: IRouteConfig = { ...createNfTablesRoute('mid', T('198.18.2.3'), { ports: 8082 }), priority: 50 };
    await withHost(fake, async () => {
      const before = fake.committedBatches({ netns: NS }).length;
      const a = await m.provisionRoute(low);
      expect(a.err ? a.val.message : 'ok').toBe('ok');
      expect((await m.provisionRoute(high)).ok).toBe(true);
      expect((await m.provisionRoute(mid)).ok).toBe(true);
      expect(fake.committedBatches({ netns: NS }).length - before).toBe(3);
      const chains = chainsWithRules(fake);
      expect(chains.length).toBeGreaterThan(0);
      const ids = (await m.getStatus()).unwrap();
      const byName: Record<string, string> = Object.fromEntries(Object.values(ids).map((s) => [s.name ?? '', s.routeId]));
      // every chain holding route rules lists them by priority: high, mid, low
      // provisioned low, high, mid: every chain holding route rules lists them by priority (insert before the lower one)
      const nameOf = Object.fromEntries(Object.entries(byName).map(([n, id]) => [id, n]));
      for (const c of chains) expect(routeOrder(fake, c).map((id) => nameOf[id] ?? id), c).toEqual(['high', 'mid', 'low']);
      // update: the low route gets another target; the others are not touched
      const highRules = JSON.stringify(fake.nftOf(NS).rules('inet', 'nf_sp', chains[0]!)!.filter((r) => r.comment?.includes(byName.high!)));
      expect((await m.updateRoute(low, createNfTablesRoute('low', T('198.18.2.9'), { ports: 8080 }))).ok).toBe(true);
      expect(JSON.stringify(fake.nftOf(NS).rules('inet', 'nf_sp', chains[0]!)!.filter((r) => r.comment?.includes(byName.high!)))).toBe(highRules);
      expect(JSON.stringify(fake.nftOf(NS).list('table', { family: 'inet', name: 'nf_sp' }))).toContain('198.18.2.9');
      expect(JSON.stringify(fake.nftOf(NS).list('table', { family: 'inet', name: 'nf_sp' }))).not.toContain('198.18.2.2');
      // deprovision removes exactly that route's rules
      expect((await m.deprovisionRoute(mid)).ok).toBe(true);
      const s = (await m.getStatus()).unwrap();
      expect(Object.values(s).map((x) => x.name).sort()).toEqual(['high', 'low']);
      expect(JSON.stringify(fake.nftOf(NS).list('table', { family: 'inet', name: 'nf_sp' }))).not.toContain('198.18.2.3');
      expect((await m.destroy()).ok).toBe(true);
    });
    expect(fake.nftOf(NS).state.tables.size).toBe(0);
  });

  it('NFTablesManager (SmartProxy contract): booleans, syncRoutes in one transaction, an error event for a refused route, stop', async () => {
    const smartProxy = { settings: { routes: [] as IRouteConfig[], preserveSourceIP: false } };
    const m = new NFTablesManager(smartProxy, { tableName: 'nf_sp', netns: NS });
    const errors: unknown[] = [];
    m.on('error', (e) => errors.push(e));
    await withHost(fake, async () => {
      const routes = [createNfTablesRoute('a', T('198.18.2.2'), { ports: 8080 }), createNfTablesRoute('b', T('198.18.2.3'), { ports: 8081, protocol: 'udp' }), createNfTablesRoute('c', T('fd00:2::2'), { ports: 8082 })];
      const before = fake.committedBatches({ netns: NS }).length;
      expect(await m.syncRoutes(routes)).toBe(true);
      expect(fake.committedBatches({ netns: NS }).length - before).toBe(1);
      expect(Object.keys(await m.getStatus())).toHaveLength(3);
      // sync again without b: one more transaction, b gone
      expect(await m.syncRoutes([routes[0]!, routes[2]!])).toBe(true);
      expect(Object.keys(await m.getStatus())).toHaveLength(2);
      expect(JSON.stringify(fake.nftOf(NS).list('ruleset', null))).not.toContain('198.18.2.3');
      // the kernel refuses the next batch (injected): false, an 'error' event, and the ruleset is unchanged
      const kept = JSON.stringify(fake.nftOf(NS).list('ruleset', null));
      fake.failNftBatch(1);
      expect(await m.provisionRoute(createNfTablesRoute('d', T('198.18.2.4'), { ports: 8083 }))).toBe(false);
      expect(errors.length).toBe(1);
      expect(JSON.stringify(fake.nftOf(NS).list('ruleset', null))).toBe(kept);
      await m.stop();
    });
    expect(fake.nftOf(NS).state.tables.size).toBe(0);
  });

  it('a loopback target with routeLocalnet sets route_localnet in the namespace and destroy restores it', async () => {
    const m = new NetfenceRouteManager({ tableName: 'nf_sp', netns: NS, routeLocalnet: true });
    await withHost(fake, async () => {
      const r = await m.provisionRoute(createNfTablesRoute('local', T('127.0.0.1', 8080), { ports: 80 }));
      expect(r.err ? r.val.message : 'ok').toBe('ok');
      expect(fake.ns(NS).sysctl.get('net.ipv4.conf.all.route_localnet')).toBe('1');
      expect((await m.destroy()).ok).toBe(true);
    });
    expect(fake.ns(NS).sysctl.get('net.ipv4.conf.all.route_localnet')).toBe('0');
    // the host's own namespace was never touched
    expect(fake.ns().sysctl.get('net.ipv4.conf.all.route_localnet')).toBe('0');
    expect(fake.calls.filter((c) => c.argv[0] === 'sysctl').every((c) => c.netns === NS)).toBe(true);
  });
});
