import { describe, expect, it } from 'vitest';
import { createNfTablesRangeRoute, createNfTablesRoute, NFTablesManager, type IRouteConfig } from '../../src/integrations/smartproxy.js';
import { nftList } from '../../src/host/nft.js';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';

/** client (198.18.1.2) -- proxy (198.18.1.1 | 198.18.2.1 | 198.18.3.1) -- server1 (198.18.2.2), server2 (198.18.3.2) */
async function topo(lab: Lab) {
  const client = await lab.host('client');
  const proxy = await lab.host('proxy');
  const s1 = await lab.host('s1');
  const s2 = await lab.host('s2');
  await lab.link({ host: client, addrs: ['198.18.1.2/24', 'fd00:1::2/64'] }, { host: proxy, addrs: ['198.18.1.1/24', 'fd00:1::1/64'] });
  await lab.link({ host: proxy, addrs: ['198.18.2.1/24', 'fd00:2::1/64'] }, { host: s1, addrs: ['198.18.2.2/24', 'fd00:2::2/64'] });
  await lab.link({ host: proxy, addrs: ['198.18.3.1/24', 'fd00:3::1/64'] }, { host: s2, addrs: ['198.18.3.2/24', 'fd00:3::2/64'] });
  await lab.forwarding(proxy);
  for (const [h, v4, v6] of [[client, '198.18.1.1', 'fd00:1::1'], [s1, '198.18.2.1', 'fd00:2::1'], [s2, '198.18.3.1', 'fd00:3::1']] as [LabHost, string, string][]) {
    await lab.route(h, 'default', v4);
    await lab.route(h, 'default', v6);
  }
  return { client, proxy, s1, s2 };
}

describe('SmartProxy NFTablesManager with real traffic', () => {
  it('forwards TCP and UDP, IPv4 and IPv6, port ranges (preserve / fixed), load-balances, masquerades or preserves the source', async () => {
    await withLab('sproutes', async (lab) => {
      const { client, proxy, s1, s2 } = await topo(lab);
      await lab.serve(s1, 'tcp', 80, '%peer');
      await lab.serve(s2, 'tcp', 80, 'server2');
      await lab.serve(s1, 'udp', 53, '%peer');
      await lab.serve(s1, 'tcp', 443, 'server1-443');
      for (const p of [7001, 7002]) await lab.serve(s1, 'tcp', p);
      const m = new NFTablesManager({ tableName: 'nf_sp', netns: proxy.netns });
      const routes: IRouteConfig[] = [
        createNfTablesRoute('web', 8080, { host: '198.18.2.2', port: 80 }),
        createNfTablesRoute('web-keep-src', 8081, { host: '198.18.2.2', port: 80 }, { preserveSourceIP: true }),
        createNfTablesRoute('dns', 5353, { host: '198.18.2.2', port: 53 }, { protocol: 'udp' }),
        createNfTablesRoute('both', 9443, { host: '198.18.2.2', port: 443 }, { protocol: 'all' }),
        createNfTablesRangeRoute('range', 7001, 7002, '198.18.2.2'),
        createNfTablesRoute('range-fixed', { from: 7101, to: 7102 }, { host: '198.18.2.2', port: 443 }),
        createNfTablesRoute('lb', [8090], { host: ['198.18.2.2', '198.18.3.2'], port: 80 }),
        createNfTablesRoute('web6', 8080, { host: 'fd00:2::2', port: 80 }),
      ];
      // web6 has the same ports as web but another name: a distinct id
      for (const r of routes) {
        const p = await m.provisionRoute(r);
        expect(p.err ? p.val.message : 'ok').toBe('ok');
      }
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8080)).reply).toBe('198.18.2.1'); // masqueraded
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081)).reply).toBe('198.18.1.2'); // source preserved
      expect((await lab.probe(client, 'udp', '198.18.1.1', 5353)).reply).toBe('198.18.2.1');
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 9443)).reply).toBe('server1-443');
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 7002)).reply).toBe('ok 7002');
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 7101)).reply).toBe('server1-443');
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 7102)).reply).toBe('server1-443');
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add((await lab.probe(client, 'tcp', '198.18.1.1', 8090)).reply);
      expect([...seen].sort()).toEqual(['198.18.2.1', 'server2']); // server1 answers the (masqueraded) peer address
      expect((await lab.probe(client, 'tcp', 'fd00:1::1', 8080)).reply).toBe('fd00:2::1');
      // not forwarded: other ports, and UDP on a TCP-only route
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8082)).result).toBe('refused');
      expect((await lab.probe(client, 'udp', '198.18.1.1', 8080)).result).toBe('refused');
      // forwarding to the same port on another host is not hijacked (only local destinations are)
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8080)).result).toBe('refused');
      const st = await m.getStatus();
      expect(st.ok).toBe(true);
      if (st.ok) {
        const web = Object.values(st.val).find((r) => r.name === 'web');
        expect(web?.packets).toBeGreaterThan(0);
        expect(web?.forwarded.bytes).toBeGreaterThan(0);
        expect(web?.rules.map((r) => r.comment.split(':').pop())).toEqual(['claim', 'dnat', 'dnat-local', 'masq', 'count']);
      }
      expect((await m.deprovisionRoute(routes[0] as IRouteConfig)).ok).toBe(true);
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8080)).result).toBe('refused');
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081)).reply).toBe('198.18.1.2'); // others untouched
      expect((await m.stop()).ok).toBe(true);
      const l = await nftList(['tables'], { netns: proxy.netns });
      expect(JSON.stringify(l.ok ? l.val : '')).not.toContain('nf_sp');
    });
  });

  it('allow and block lists become sets; maxRate limits', async () => {
    await withLab('spsec', async (lab) => {
      const { client, proxy, s1 } = await topo(lab);
      await lab.serve(s1, 'tcp', 80, 'hello');
      await lab.serve(s1, 'tcp', 81, '%bytes:400000');
      const m = new NFTablesManager({ tableName: 'nf_sp', netns: proxy.netns });
      const blocked = createNfTablesRoute('blocked', 8080, { host: '198.18.2.2', port: 80 }, { ipBlockList: ['198.18.1.0/24', 'fd00:9::/64'] });
      const allowed = createNfTablesRoute('allowed', 8081, { host: '198.18.2.2', port: 80 }, { ipAllowList: ['198.18.1.2'] });
      const notAllowed = createNfTablesRoute('not-allowed', 8082, { host: '198.18.2.2', port: 80 }, { ipAllowList: ['198.18.99.0/24'] });
      const slow = createNfTablesRoute('slow', 8083, { host: '198.18.2.2', port: 81 }, { maxRate: '1mbps' });
      const fast = createNfTablesRoute('fast', 8084, { host: '198.18.2.2', port: 81 });
      for (const r of [blocked, allowed, notAllowed, slow, fast]) expect((await m.provisionRoute(r)).ok).toBe(true);
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8080, { timeoutMs: 1000 })).result).toBe('timeout');
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081)).reply).toBe('hello');
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8082, { timeoutMs: 1000 })).result).toBe('timeout');
      const sets = await nftList(['sets', 'table', 'inet', 'nf_sp'], { netns: proxy.netns });
      const setsText = JSON.stringify(sets.ok ? sets.val : (await nftList(['table', 'inet', 'nf_sp'], { netns: proxy.netns })).val);
      expect(setsText).toContain('198.18.1.0');
      const download = async (port: number) => {
        const code = `const t=Date.now();let n=0;const s=require('net').connect(${port},'198.18.1.1');s.on('data',d=>n+=d.length);s.on('end',()=>{console.log(JSON.stringify({n,ms:Date.now()-t}));process.exit(0)});s.on('error',e=>{console.log(JSON.stringify({n,ms:-1,e:e.code}));process.exit(0)});setTimeout(()=>{console.log(JSON.stringify({n,ms:Date.now()-t}));process.exit(0)},20000)`;
        const r = await lab.sh(client, ['node', '-e', code], { timeoutMs: 30000 });
        return JSON.parse(r.stdout) as { n: number; ms: number };
      };
      const f = await download(8084);
      const s = await download(8083);
      console.log(`400 kB unlimited: ${f.ms} ms; with maxRate 1mbps (125 kB/s): ${s.ms} ms`);
      expect(f.n).toBe(400000);
      expect(s.n).toBe(400000);
      expect(s.ms).toBeGreaterThan(1500); // >= ~3.2 s at 125 kB/s, minus the initial burst
      expect(s.ms).toBeGreaterThan(f.ms * 3);
      expect((await m.stop()).ok).toBe(true);
    });
  });

  it('updateRoute is atomic, and established connections through unchanged routes are not disturbed', async () => {
    await withLab('spupd', async (lab) => {
      const { client, proxy, s1, s2 } = await topo(lab);
      await lab.serve(s1, 'tcp', 80, 'server1');
      await lab.serve(s2, 'tcp', 80, 'server2');
      await lab.serve(s1, 'tcp', 90, '%echo');
      const m = new NFTablesManager({ tableName: 'nf_sp', netns: proxy.netns });
      const echo = createNfTablesRoute('echo', 9090, { host: '198.18.2.2', port: 90 });
      const a = createNfTablesRoute('web', 8080, { host: '198.18.2.2', port: 80 });
      const b = createNfTablesRoute('web', 8080, { host: '198.18.3.2', port: 80 });
      expect((await m.provisionRoute(echo)).ok).toBe(true);
      expect((await m.provisionRoute(a)).ok).toBe(true);
      // a long-lived connection through the echo route
      const code = `const s=require('net').connect(9090,'198.18.1.1');let b='';s.on('data',d=>{b+=d;if(b==='ab'){console.log('ab');process.exit(0)}});s.on('error',e=>{console.log('error '+e.code);process.exit(0)});s.write('a');setTimeout(()=>s.write('b'),2500);setTimeout(()=>{console.log('timeout '+b);process.exit(0)},6000)`;
      const longLived = lab.sh(client, ['node', '-e', code], { timeoutMs: 10000 });
      // probes during updates back and forth: each lands on server1 or server2, never nowhere
      let stop = false;
      const outcomes: string[] = [];
      const prober = (async () => {
        while (!stop) {
          const p = await lab.probe(client, 'tcp', '198.18.1.1', 8080, { timeoutMs: 1500 });
          outcomes.push(p.result === 'open' ? p.reply : p.result);
        }
      })();
      let cur = a;
      for (let i = 0; i < 6; i++) {
        const next = cur === a ? b : a;
        const u = await m.updateRoute(cur, next);
        expect(u.err ? u.val.message : 'ok').toBe('ok');
        cur = next;
      }
      stop = true;
      await prober;
      console.log(`probes during 6 route updates: ${outcomes.length} → ${JSON.stringify([...new Set(outcomes)])}`);
      expect(outcomes.length).toBeGreaterThan(0);
      expect(outcomes.every((o) => o === 'server1' || o === 'server2')).toBe(true);
      expect((await longLived).stdout.trim()).toBe('ab');
      // the last update (i = 5) went b → a
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8080)).reply).toBe('server1');
      expect((await m.stop()).ok).toBe(true);
    });
  });

  it('overlapping routes: the higher priority answers, and its source/security settings apply, not the loser\'s; updateRoute swaps them', async () => {
    await withLab('spprio', async (lab) => {
      const { client, proxy, s1, s2 } = await topo(lab);
      await lab.serve(s1, 'tcp', 80, '%peer');
      await lab.serve(s2, 'tcp', 80, '%peer');
      const m = new NFTablesManager({ tableName: 'nf_sp', netns: proxy.netns });
      // A → server1 (masqueraded: server1 sees 198.18.2.1); B → server2 keeping the source (server2 sees 198.18.1.2)
      const a1 = createNfTablesRoute('prio-a', 8080, { host: '198.18.2.2', port: 80 }, { priority: 1 });
      const b10 = createNfTablesRoute('prio-b', 8080, { host: '198.18.3.2', port: 80 }, { priority: 10, preserveSourceIP: true });
      const ok = (r: { err: boolean; val: unknown }) => (r.err ? (r.val as Error).message : 'ok');
      expect(ok(await m.provisionRoute(a1))).toBe('ok');
      expect(ok(await m.provisionRoute(b10))).toBe('ok'); // provisioned last, but inserted first
      const reply = async () => {
        const p = await lab.probe(client, 'tcp', '198.18.1.1', 8080, { timeoutMs: 1000 });
        return p.result === 'open' ? p.reply : p.result;
      };
      // B wins, and A's masquerade does not apply to B's connections
      expect(await reply()).toBe('198.18.1.2');
      // swap: B down to 0 → A answers
      const b0 = createNfTablesRoute('prio-b', 8080, { host: '198.18.3.2', port: 80 }, { priority: 0, preserveSourceIP: true, ipBlockList: ['198.18.1.0/24'] });
      expect(ok(await m.updateRoute(b10, b0))).toBe('ok');
      expect(await reply()).toBe('198.18.2.1'); // A wins; B's block list does not apply to A's traffic
      // swap back: A down to -1 → B answers, and now its block list applies
      const aLow = createNfTablesRoute('prio-a', 8080, { host: '198.18.2.2', port: 80 }, { priority: -1 });
      expect(ok(await m.updateRoute(a1, aLow))).toBe('ok');
      expect(await reply()).toBe('timeout');
      const b5 = createNfTablesRoute('prio-b', 8080, { host: '198.18.3.2', port: 80 }, { priority: 5, preserveSourceIP: true });
      expect(ok(await m.updateRoute(b0, b5))).toBe('ok');
      expect(await reply()).toBe('198.18.1.2');
      expect((await m.stop()).ok).toBe(true);
    });
  });

  it('refuses useAdvancedNAT: true with a clear error and changes nothing', async () => {
    await withLab('spadv', async (lab) => {
      const { proxy } = await topo(lab);
      const m = new NFTablesManager({ tableName: 'nf_sp', netns: proxy.netns });
      const r = await m.provisionRoute(createNfTablesRoute('adv', 8080, { host: '198.18.2.2', port: 80 }, { useAdvancedNAT: true }));
      expect(r.err && r.val.message).toMatch(/action\.nftables\.useAdvancedNAT: is not supported/);
      const l = await nftList(['tables'], { netns: proxy.netns });
      expect(JSON.stringify(l.ok ? l.val : '')).not.toContain('nf_sp');
    });
  });

  it('refuses routes that cannot be kernel rules, with a clear error, and changes nothing', async () => {
    await withLab('spbad', async (lab) => {
      const { proxy } = await topo(lab);
      const m = new NFTablesManager({ tableName: 'nf_sp', netns: proxy.netns });
      const fnHost: IRouteConfig = { name: 'fn', match: { ports: 80 }, action: { type: 'forward', forwardingEngine: 'nftables', target: { host: () => 'localhost', port: 80 } } };
      const fnPort: IRouteConfig = { name: 'fnp', match: { ports: 80 }, action: { type: 'forward', forwardingEngine: 'nftables', target: { host: '198.18.2.2', port: () => 80 } } };
      const named = createNfTablesRoute('dns-name', 80, { host: 'backend.example', port: 80 });
      const r1 = await m.provisionRoute(fnHost);
      expect(r1.err && r1.val.message).toMatch(/action\.target\.host: a function cannot be compiled/);
      const r2 = await m.provisionRoute(fnPort);
      expect(r2.err && r2.val.message).toMatch(/action\.target\.port: a function cannot be compiled/);
      const r3 = await m.provisionRoute(named);
      expect(r3.err && r3.val.message).toMatch(/not an IP address/);
      const l = await nftList(['tables'], { netns: proxy.netns });
      expect(JSON.stringify(l.ok ? l.val : '')).not.toContain('nf_sp');
    });
  });
});
