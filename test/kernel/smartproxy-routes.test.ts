/**
 * netfence/smartproxy against real packets, with routes built the way
 * SmartProxy 21.x builds them. Topology (each a lab namespace):
 *
 *   client  (198.18.1.2, fd00:1::2) ─┐
 *   client2 (198.18.4.2, fd00:4::2) ─┤ proxy ├─ s1 (198.18.2.2, fd00:2::2)
 *                                             └─ s2 (198.18.3.2, fd00:3::2)
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createNfTablesRangeRoute, createNfTablesRoute, createNfTablesTerminateRoute, NetfenceRouteManager, NFTablesManager, type IRouteConfig } from '../../src/integrations/smartproxy.js';
import { detectCapabilities } from '../../src/capabilities/index.js';
import { UnsupportedError } from '../../src/errors.js';
import { decideFastPath as decideFlowtable } from '../../src/firewall/flowtable.js';
import { nftList, nftStats } from '../../src/host/nft.js';
import { libraryFor } from '../../src/host/libnftables.js';
import { nftProgram, run, wrapNetns } from '../../src/host/run.js';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';

const T = (host: string | string[], port: number | 'preserve' = 80) => ({ host, port });

async function topo(lab: Lab) {
  const client = await lab.host('client');
  const client2 = await lab.host('client2');
  const proxy = await lab.host('proxy');
  const s1 = await lab.host('s1');
  const s2 = await lab.host('s2');
  await lab.link({ host: client, addrs: ['198.18.1.2/24', 'fd00:1::2/64'] }, { host: proxy, addrs: ['198.18.1.1/24', 'fd00:1::1/64'] });
  await lab.link({ host: client2, addrs: ['198.18.4.2/24', 'fd00:4::2/64'] }, { host: proxy, addrs: ['198.18.4.1/24', 'fd00:4::1/64'] });
  await lab.link({ host: proxy, addrs: ['198.18.2.1/24', 'fd00:2::1/64'] }, { host: s1, addrs: ['198.18.2.2/24', 'fd00:2::2/64'] });
  await lab.link({ host: proxy, addrs: ['198.18.3.1/24', 'fd00:3::1/64'] }, { host: s2, addrs: ['198.18.3.2/24', 'fd00:3::2/64'] });
  await lab.forwarding(proxy);
  for (const [h, v4, v6] of [[client, '198.18.1.1', 'fd00:1::1'], [client2, '198.18.4.1', 'fd00:4::1'], [s1, '198.18.2.1', 'fd00:2::1'], [s2, '198.18.3.1', 'fd00:3::1']] as [LabHost, string, string][]) {
    await lab.route(h, 'default', v4);
    await lab.route(h, 'default', v6);
  }
  return { client, client2, proxy, s1, s2 };
}

const tables = async (netns: string) => JSON.stringify((await nftList(['tables'], { netns })).val ?? '');

/** What a TCP/UDP probe got: the reply, or how it failed (a silence of `timeoutMs` is `timeout`; 3 s leaves room for an emulated VM). */
async function ask(lab: Lab, h: LabHost, proto: 'tcp' | 'udp', addr: string, port: number, timeoutMs = 3000): Promise<string> {
  const p = await lab.probe(h, proto, addr, port, { timeoutMs });
  return p.result === 'open' ? p.reply : p.result;
}

describe('SmartProxy 21.x routes on NFTablesManager (drop-in) with real traffic', () => {
  it('several targets, both route shapes, TCP/UDP/all (probed over UDP too), IPv4/IPv6, ranges, round robin and ip-hash, source kept or masqueraded; status; deprovision; stop', async () => {
    await withLab('sp21', async (lab) => {
      const { client, client2, proxy, s1, s2 } = await topo(lab);
      for (const [h, p, r] of [[s1, 80, '%peer'], [s2, 80, 'server2'], [s1, 443, 'server1-443'], [s1, 7001, undefined], [s1, 7002, undefined]] as const) await lab.serve(h, 'tcp', p, r);
      await lab.serve(s1, 'udp', 53, '%peer');
      await lab.serve(s1, 'udp', 443, 'udp-443');
      const smartProxy = { settings: { routes: [] as IRouteConfig[], preserveSourceIP: false } };
      const m = new NFTablesManager(smartProxy, { tableName: 'nf_sp', netns: proxy.netns });
      const web: IRouteConfig = { name: 'web', description: 'two targets', tags: ['t'], match: { ports: 8080 }, action: { type: 'forward', forwardingEngine: 'nftables', targets: [T('198.18.2.2'), { ...T('198.18.3.2'), priority: 10 }] } };
      const plan: IRouteConfig = { name: 'plan-shape', match: { ports: 8070 }, action: { type: 'forward', forwardingEngine: 'nftables', target: T('198.18.2.2') } };
      const routes: IRouteConfig[] = [
        web,
        plan,
        createNfTablesRoute('keep-src', T('198.18.2.2'), { ports: 8081, preserveSourceIP: true }),
        createNfTablesRoute('dns', T('198.18.2.2', 53), { ports: 5353, protocol: 'udp' }),
        createNfTablesRoute('both', T('198.18.2.2', 443), { ports: 9443, protocol: 'all' }),
        createNfTablesRangeRoute('range', 7001, 7002, '198.18.2.2'),
        createNfTablesRoute('range-fixed', T('198.18.2.2', 443), { ports: [{ from: 7101, to: 7102 }] }),
        createNfTablesRoute('rr', T(['198.18.2.2', '198.18.3.2']), { ports: [8090] }),
        { ...createNfTablesRoute('hash', T(['198.18.2.2', '198.18.3.2']), { ports: 8091 }), action: { ...createNfTablesRoute('hash', T(['198.18.2.2', '198.18.3.2'])).action, loadBalancing: { algorithm: 'ip-hash' } } },
        createNfTablesRoute('web6', T('fd00:2::2'), { ports: 8080 }),
        createNfTablesRoute('passthrough', T('198.18.2.2', 443), { ports: 8443, useTls: true }),
        createNfTablesRoute('own-table', T('198.18.2.2', 443), { ports: 8444, tableName: 'nf_sp_own' }),
        { name: 'not-nftables', match: { ports: 8099 }, action: { type: 'forward', targets: [T('198.18.2.2')] } },
      ];
      for (const r of routes) expect(await m.provisionRoute(r), r.name).toBe(true);
      expect(m.isRouteProvisioned(web)).toBe(true);
      expect(m.isRouteProvisioned(routes.at(-1) as IRouteConfig)).toBe(false); // SmartProxy's own engine: not ours
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8080)).toBe('server2'); // the higher-priority target
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8070)).toBe('198.18.2.1'); // plan shape, masqueraded
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8081)).toBe('198.18.1.2'); // source preserved
      expect(await ask(lab, client, 'udp', '198.18.1.1', 5353)).toBe('198.18.2.1');
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 9443)).toBe('server1-443');
      expect(await ask(lab, client, 'udp', '198.18.1.1', 9443)).toBe('udp-443'); // protocol 'all' over UDP
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 7002)).toBe('ok 7002');
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 7102)).toBe('server1-443');
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add(await ask(lab, client, 'tcp', '198.18.1.1', 8090));
      expect([...seen].sort()).toEqual(['198.18.2.1', 'server2']);
      // ip-hash: one client always lands on the same target
      const h1 = new Set<string>();
      for (let i = 0; i < 4; i++) h1.add(await ask(lab, client, 'tcp', '198.18.1.1', 8091));
      expect(h1.size).toBe(1);
      expect(['198.18.2.1', 'server2']).toContain(await ask(lab, client2, 'tcp', '198.18.4.1', 8091));
      expect(await ask(lab, client, 'tcp', 'fd00:1::1', 8080)).toBe('fd00:2::1');
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8443)).toBe('server1-443'); // tls passthrough: bytes forwarded untouched
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8444)).toBe('server1-443'); // action.nftables.tableName
      expect(await tables(proxy.netns)).toContain('nf_sp_own');
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8082)).toBe('refused');
      expect(await ask(lab, client, 'udp', '198.18.1.1', 8080)).toBe('refused'); // TCP-only route
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8099)).toBe('refused'); // the node-engine route has no kernel rules
      const st = await m.getStatus();
      const sw = Object.values(st).find((s) => s.netfence.name === 'web');
      expect(sw?.active).toBe(true);
      expect(sw?.ruleCount.total).toBe(sw?.ruleCount.added);
      expect(sw?.tablesConfigured).toEqual([{ family: 'inet', tableName: 'nf_sp' }]);
      expect(sw?.metrics.forwardedConnections).toBe(1);
      expect(sw?.metrics.bytesForwarded?.sent).toBeGreaterThan(0);
      expect(sw?.metrics.bytesForwarded?.received).toBeGreaterThan(0);
      expect(sw?.netfence.addresses).toEqual({ ipv4: ['198.18.3.2'], ipv6: [] });
      expect(sw?.netfence.targetIndex).toBe(1);
      expect(await m.deprovisionRoute(web)).toBe(true);
      expect(m.isRouteProvisioned(web)).toBe(false);
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8080)).toBe('refused');
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8081)).toBe('198.18.1.2'); // others untouched
      await m.stop();
      expect(await tables(proxy.netns)).not.toContain('nf_sp');
      expect(await tables(proxy.netns)).not.toContain('nf_sp_own');
    });
  });

  it('security at route and action level, both names: allow and block lists (glob, CIDR, range; IPv4 and IPv6), clients on the proxy itself too; match.clientIp', async () => {
    await withLab('spsec', async (lab) => {
      const { client, client2, proxy, s1, s2 } = await topo(lab);
      await lab.serve(s1, 'tcp', 80, 'hello');
      await lab.serve(s2, 'tcp', 80, 'server2');
      const m = new NFTablesManager({ preserveSourceIP: false }, { tableName: 'nf_sp', netns: proxy.netns });
      const legacy: IRouteConfig = { name: 'legacy', match: { ports: 8085 }, action: { type: 'forward', forwardingEngine: 'nftables', target: T('198.18.2.2'), security: { allowedIps: ['198.18.4.2'], blockedIps: [] } } };
      const routes: IRouteConfig[] = [
        createNfTablesRoute('allow-glob4', T('198.18.2.2'), { ports: 8081, ipAllowList: ['198.18.1.*'] }),
        createNfTablesRoute('block-cidr4', T('198.18.2.2'), { ports: 8082, ipBlockList: ['198.18.4.0/24'] }),
        createNfTablesRoute('allow-glob6', T('fd00:2::2'), { ports: 8083, ipAllowList: ['fd00:1:*'] }),
        createNfTablesRoute('block-cidr6', T('fd00:2::2'), { ports: 8084, ipBlockList: ['fd00:4::/64'] }),
        legacy,
        createNfTablesRoute('block-range', T('198.18.2.2'), { ports: 8086, ipBlockList: ['198.18.4.1-198.18.4.5'] }),
        { ...createNfTablesRoute('vip', T('198.18.3.2'), { ports: 8087, priority: 10 }), match: { ports: 8087, clientIp: ['198.18.4.*'] } },
        createNfTablesRoute('everyone', T('198.18.2.2'), { ports: 8087 }),
        createNfTablesRoute('inline-sets', T('198.18.2.2'), { ports: 8088, ipAllowList: ['198.18.1.0/24', '198.18.9.*'], useIPSets: false }),
      ];
      for (const r of routes) expect(await m.provisionRoute(r), r.name).toBe(true);
      const both = async (port: number, v6 = false) => [await ask(lab, client, 'tcp', v6 ? 'fd00:1::1' : '198.18.1.1', port), await ask(lab, client2, 'tcp', v6 ? 'fd00:4::1' : '198.18.4.1', port)];
      expect(await both(8081)).toEqual(['hello', 'timeout']);
      expect(await both(8082)).toEqual(['hello', 'timeout']);
      expect(await both(8083, true)).toEqual(['hello', 'timeout']);
      expect(await both(8084, true)).toEqual(['hello', 'timeout']);
      expect(await both(8085)).toEqual(['timeout', 'hello']);
      expect(await both(8086)).toEqual(['hello', 'timeout']);
      expect(await both(8087)).toEqual(['hello', 'server2']); // clientIp partitions one port between two routes
      expect(await both(8088)).toEqual(['hello', 'timeout']); // useIPSets: false (inline sets)
      // a client on the proxy itself (source 198.18.1.1) is filtered too: outside legacy's allow list
      const local = await lab.probe(proxy, 'tcp', '198.18.1.1', 8085, { timeoutMs: 1000 });
      expect(local.result).not.toBe('open');
      expect(await ask(lab, proxy, 'tcp', '198.18.1.1', 8082)).toBe('hello'); // 198.18.1.1 is not blocked there
      const sets = JSON.stringify((await nftList(['table', 'inet', 'nf_sp'], { netns: proxy.netns })).val ?? '');
      expect(sets).toContain('198.18.1.0');
      await m.stop();
    });
  });

  it('a refused field leaves nothing applied: provision, update and sync refuse as a whole, the kernel is unchanged', async () => {
    await withLab('sprefuse', async (lab) => {
      const { client, proxy, s1 } = await topo(lab);
      await lab.serve(s1, 'tcp', 80, 'hello');
      const errors: string[] = [];
      const fresh = new NFTablesManager({}, { tableName: 'nf_sp', netns: proxy.netns, logger: { error: (e: string) => errors.push(e) } });
      const refused: IRouteConfig[] = [
        createNfTablesRoute('adv', T('198.18.2.2'), { ports: 8080, useAdvancedNAT: true }),
        createNfTablesTerminateRoute('tls', T('198.18.2.2'), { ports: 8080 }),
        { ...createNfTablesRoute('maxconn', T('198.18.2.2'), { ports: 8080 }), security: { maxConnections: 5 } },
        { name: 'fn', match: { ports: 8080 }, action: { type: 'forward', forwardingEngine: 'nftables', targets: [{ host: () => 'x', port: 80 }] } },
        createNfTablesRoute('unresolvable', T('no-such-host.invalid'), { ports: 8080 }),
      ];
      for (const r of refused) expect(await fresh.provisionRoute(r), r.name).toBe(false);
      expect(errors.join('\n')).toMatch(/useAdvancedNAT[\s\S]*action\.tls\.mode[\s\S]*security\.maxConnections[\s\S]*action\.targets\.0\.host: a function[\s\S]*did not resolve/);
      expect(await tables(proxy.netns)).not.toContain('nf_sp');
      const good = createNfTablesRoute('good', T('198.18.2.2'), { ports: 8080 });
      expect(await fresh.provisionRoute(good)).toBe(true);
      const before = JSON.stringify((await nftList(['table', 'inet', 'nf_sp'], { netns: proxy.netns })).val);
      const changed = createNfTablesRoute('good', T('198.18.2.2'), { ports: 8080, ipBlockList: ['198.18.1.0/24'] });
      expect(await fresh.updateRoute(good, { ...changed, headers: { request: { a: 'b' } } })).toBe(false);
      expect(await fresh.syncRoutes([changed, refused[0] as IRouteConfig])).toBe(false);
      expect(JSON.stringify((await nftList(['table', 'inet', 'nf_sp'], { netns: proxy.netns })).val)).toBe(before);
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8080)).toBe('hello');
      await fresh.stop();
    });
  });

  it('syncRoutes under a running TCP stream: one transaction adds, updates and removes; the stream and an unchanged route never stop', async () => {
    await withLab('spsync', async (lab) => {
      const { client, proxy, s1, s2 } = await topo(lab);
      await lab.serve(s1, 'tcp', 80, 'server1');
      await lab.serve(s2, 'tcp', 80, 'server2');
      await lab.serve(s1, 'tcp', 90, '%echo');
      const m = new NFTablesManager({}, { tableName: 'nf_sp', netns: proxy.netns });
      const stream = createNfTablesRoute('stream', T('198.18.2.2', 90), { ports: 9090 });
      const stable = createNfTablesRoute('stable', T('198.18.2.2'), { ports: 8080 });
      const a = createNfTablesRoute('moving', T('198.18.2.2'), { ports: 8081 });
      const b = createNfTablesRoute('moving', T('198.18.3.2'), { ports: 8081, ipAllowList: ['198.18.1.0/24'] });
      const extra = (i: number) => createNfTablesRoute(`extra${i}`, T('198.18.3.2'), { ports: 8100 + i });
      expect(await m.syncRoutes([stream, stable, a])).toBe(true);
      // a stream of numbered lines echoed back, every 50 ms, for 6 s: counts replies and the largest gap
      const code = `const s=require('net').connect(9090,'198.18.1.1');let n=0,got=0,last=Date.now(),gap=0,buf='';s.on('data',d=>{buf+=d;const l=buf.split('\\n');buf=l.pop();for(const x of l){if(Number(x)===got)got++;const t=Date.now();gap=Math.max(gap,t-last);last=t}});s.on('error',e=>{console.log(JSON.stringify({error:e.code,got,gap}));process.exit(0)});const i=setInterval(()=>s.write((n++)+'\\n'),50);setTimeout(()=>{clearInterval(i);setTimeout(()=>{console.log(JSON.stringify({sent:n,got,gap}));process.exit(0)},500)},6000)`;
      const streaming = lab.sh(client, ['node', '-e', code], { timeoutMs: 60_000 });
      let stop = false;
      const outcomes: string[] = [];
      const prober = (async () => {
        while (!stop) outcomes.push(await ask(lab, client, 'tcp', '198.18.1.1', 8080, 1500));
      })();
      const handlesOf = async () => JSON.stringify(Object.values(await m.getStatus()).filter((s) => ['stream', 'stable'].includes(s.netfence.name ?? '')).map((s) => s.netfence.rules));
      const fixed = await handlesOf();
      const steps: IRouteConfig[][] = [
        [stream, stable, b, extra(1), extra(2)],
        [stream, stable, a, extra(2), extra(3)],
        [stream, stable, b],
        [stream, stable, a, extra(1)],
      ];
      for (const set of steps) expect(await m.syncRoutes(set)).toBe(true);
      expect(await handlesOf()).toBe(fixed); // the unchanged routes' rules were never touched
      stop = true;
      await prober;
      const res = JSON.parse((await streaming).stdout) as { sent: number; got: number; gap: number; error?: string };
      console.log(`stream through 4 syncRoutes: ${JSON.stringify(res)}; probes of the unchanged route: ${outcomes.length} → ${JSON.stringify([...new Set(outcomes)])}`);
      expect(res.error).toBeUndefined();
      expect(res.got).toBe(res.sent);
      expect(outcomes.length).toBeGreaterThan(0);
      expect(outcomes.every((o) => o === 'server1')).toBe(true);
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8081)).toBe('server1'); // the last sync went back to a
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8101)).toBe('server2');
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8102)).toBe('refused'); // removed
      expect(m.isRouteProvisioned(extra(2))).toBe(false);
      await m.stop();
    });
  });

  it('maxRate holds the route within ±10% (iperf3 through the route)', async () => {
    await withLab('sprate', async (lab) => {
      const { client, proxy, s1 } = await topo(lab);
      const m = new NFTablesManager({}, { tableName: 'nf_sp', netns: proxy.netns });
      const rate = 20e6;
      expect(await m.provisionRoute(createNfTablesRoute('slow', T('198.18.2.2', 5201), { ports: 5201, maxRate: '20mbps' }))).toBe(true);
      expect(await m.provisionRoute(createNfTablesRoute('fast', T('198.18.2.2', 5202), { ports: 5202 }))).toBe(true);
      const measure = async (port: number, reverse: boolean) => {
        const server = run(['iperf3', '-s', '-1', '-B', '198.18.2.2', '-p', String(port)], { netns: s1.netns, timeoutMs: 30_000 });
        await new Promise((r) => setTimeout(r, 300));
        const c = await run(['iperf3', '-c', '198.18.1.1', '-p', String(port), '-t', '4', '-O', '2', '-J', ...(reverse ? ['-R'] : [])], { netns: client.netns, timeoutMs: 30_000 });
        await server;
        const out = JSON.parse(c.ok ? c.val.stdout : c.val.failure.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
        return out.end?.sum_received?.bits_per_second ?? 0;
      };
      const up = await measure(5201, false);
      const down = await measure(5201, true);
      const free = await measure(5202, false);
      console.log(`maxRate 20mbps: upload ${(up / 1e6).toFixed(2)} Mbit/s, download ${(down / 1e6).toFixed(2)} Mbit/s; unlimited ${(free / 1e6).toFixed(0)} Mbit/s`);
      for (const v of [up, down]) {
        expect(v / rate).toBeGreaterThan(0.9);
        expect(v / rate).toBeLessThan(1.1);
      }
      expect(free).toBeGreaterThan(rate * 3);
      await m.stop();
    });
  });

  it("the plan's scenario: a server on localhost:4000, route 5000 → localhost:4000; a client on the same host gets the reply; remote clients only with route_localnet", async () => {
    await withLab('splocal', async (lab) => {
      const { client, proxy } = await topo(lab);
      const [file, ...args] = wrapNetns([process.execPath, '-e', `require('net').createServer(c=>c.end('from-4000')).listen(4000,'localhost',()=>console.log('ready'))`], proxy.netns) as [string, ...string[]];
      const server = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve, reject) => {
          server.stdout.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
          server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
        });
        const route = createNfTablesRoute('test-nftables', { host: 'localhost', port: 4000 }, { ports: 5000, protocol: 'tcp' });
        const connect = `const s=require('net').connect(5000,'localhost');let b='';s.on('data',d=>b+=d);s.on('end',()=>{console.log(b);process.exit(0)});s.on('error',e=>{console.log('error '+e.code);process.exit(0)})`;
        const m = new NFTablesManager({ settings: {} }, { tableName: 'nf_sp', netns: proxy.netns });
        expect(await m.provisionRoute(route)).toBe(true);
        expect((await lab.sh(proxy, ['node', '-e', connect], { timeoutMs: 60_000 })).stdout.trim()).toBe('from-4000');
        const st = Object.values(await m.getStatus())[0];
        expect(st?.netfence.addresses.ipv4).toEqual(['127.0.0.1']);
        expect(st?.netfence.remoteClients).toBe('rejected');
        expect(await ask(lab, client, 'tcp', '198.18.1.1', 5000)).toBe('refused'); // a clear refusal, not silence
        await m.stop();
        const lnet = new NFTablesManager({}, { tableName: 'nf_sp', netns: proxy.netns, routeLocalnet: true });
        expect(await lnet.provisionRoute(route)).toBe(true);
        expect(await ask(lab, client, 'tcp', '198.18.1.1', 5000)).toBe('from-4000');
        expect((await lab.sh(proxy, ['sysctl', '-n', 'net.ipv4.conf.all.route_localnet'])).stdout.trim()).toBe('1');
        await lnet.stop();
        expect((await lab.sh(proxy, ['sysctl', '-n', 'net.ipv4.conf.all.route_localnet'])).stdout.trim()).toBe('0');
      } finally {
        server.kill('SIGKILL');
      }
    });
  });
});

describe('fastPath (netfence option): flowtable offload decided by the capability report', () => {
  it("'required' offloads the routes' connections where the kernel has flowtables and refuses clearly where it does not; 'auto' records the decision", async () => {
    await withLab('spfast', async (lab) => {
      const { client, proxy, s1 } = await topo(lab);
      await lab.serve(s1, 'tcp', 80, 'hello');
      await lab.serve(s1, 'tcp', 90, '%echo');
      const report = await detectCapabilities({ netns: proxy.netns });
      const expected = decideFlowtable(report, 'required', { name: 'sp_fastpath', devices: ['eth0'], priority: 1001 });
      console.log(`flowtable capability: ${JSON.stringify(report.nft.features.flowtable)}`);
      const web = createNfTablesRoute('web', T('198.18.2.2'), { ports: 8080 });
      const slow = createNfTablesRoute('slow', T('198.18.2.2'), { ports: 8081, maxRate: '50mbps' });
      const req = new NFTablesManager({}, { tableName: 'nf_sp', netns: proxy.netns, fastPath: 'required' });
      const errors: unknown[] = [];
      req.on('error', (e) => errors.push(e));
      if (!expected.ok) {
        expect(await req.provisionRoute(web)).toBe(false);
        expect(errors[0]).toBeInstanceOf(UnsupportedError);
        expect(String((errors[0] as Error).message)).toContain('nft.features.flowtable');
        expect(await tables(proxy.netns)).not.toContain('nf_sp');
        const auto = new NFTablesManager({}, { tableName: 'nf_sp', netns: proxy.netns, fastPath: 'auto' });
        expect(await auto.provisionRoute(web)).toBe(true);
        expect(await ask(lab, client, 'tcp', '198.18.1.1', 8080)).toBe('hello');
        const d = Object.values(await auto.getStatus())[0]?.netfence.decisions ?? [];
        expect(d.some((x) => x.subject.endsWith('fastPath') && x.chosen === 'none')).toBe(true);
        await auto.stop();
        return;
      }
      expect(await req.provisionRoute(web)).toBe(true);
      expect(await req.provisionRoute(slow)).toBe(true);
      const listing = JSON.stringify((await nftList(['table', 'inet', 'nf_sp'], { netns: proxy.netns })).val);
      expect(listing).toContain('"flowtable"');
      expect(listing).toContain('nf:' + Object.keys(await req.getStatus())[0] + ':offload');
      const code = `const s=require('net').connect(9090,'198.18.1.1');let n=0,got=0,buf='';s.on('data',d=>{buf+=d;const l=buf.split('\\n');buf=l.pop();got+=l.length});s.on('error',e=>{console.log(JSON.stringify({error:e.code}));process.exit(0)});const i=setInterval(()=>s.write((n++)+'\\n'),50);setTimeout(()=>{clearInterval(i);setTimeout(()=>{console.log(JSON.stringify({sent:n,got}));process.exit(0)},500)},4000)`;
      expect(await req.provisionRoute(createNfTablesRoute('stream', T('198.18.2.2', 90), { ports: 9090 }))).toBe(true);
      const streaming = lab.sh(client, ['node', '-e', code], { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 1500));
      expect(await req.syncRoutes([web, slow, createNfTablesRoute('stream', T('198.18.2.2', 90), { ports: 9090 }), createNfTablesRoute('new', T('198.18.2.2'), { ports: 8082 })])).toBe(true);
      const res = JSON.parse((await streaming).stdout) as { sent: number; got: number; error?: string };
      expect(res.error).toBeUndefined();
      expect(res.got).toBe(res.sent);
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8082)).toBe('hello');
      const st = Object.values(await req.getStatus());
      expect(st.find((x) => x.netfence.name === 'slow')?.netfence.decisions.some((d) => d.chosen === 'not offloaded')).toBe(true);
      expect(st.find((x) => x.netfence.name === 'web')?.netfence.decisions.some((d) => d.chosen === 'offloaded')).toBe(true);
      await req.stop();
    });
  });
});

describe('NetfenceRouteManager (Result API) with real traffic', () => {
  it('updateRoute is atomic, and established connections through unchanged routes are not disturbed', async () => {
    await withLab('spupd', async (lab) => {
      const { client, proxy, s1, s2 } = await topo(lab);
      await lab.serve(s1, 'tcp', 80, 'server1');
      await lab.serve(s2, 'tcp', 80, 'server2');
      await lab.serve(s1, 'tcp', 90, '%echo');
      const m = new NetfenceRouteManager({ tableName: 'nf_sp', netns: proxy.netns });
      const echo = createNfTablesRoute('echo', T('198.18.2.2', 90), { ports: 9090 });
      const a = createNfTablesRoute('web', T('198.18.2.2'), { ports: 8080 });
      const b = createNfTablesRoute('web', T('198.18.3.2'), { ports: 8080 });
      expect((await m.provisionRoute(echo)).ok).toBe(true);
      expect((await m.provisionRoute(a)).ok).toBe(true);
      const code = `const s=require('net').connect(9090,'198.18.1.1');let b='';s.on('data',d=>{b+=d;if(b==='ab'){console.log('ab');process.exit(0)}});s.on('error',e=>{console.log('error '+e.code);process.exit(0)});s.write('a');setTimeout(()=>s.write('b'),2500);setTimeout(()=>{console.log('timeout '+b);process.exit(0)},6000)`;
      const longLived = lab.sh(client, ['node', '-e', code], { timeoutMs: 60_000 });
      let stop = false;
      const outcomes: string[] = [];
      const prober = (async () => {
        while (!stop) outcomes.push(await ask(lab, client, 'tcp', '198.18.1.1', 8080, 1500));
      })();
      let cur = a;
      const before = { ...nftStats };
      for (let i = 0; i < 6; i++) {
        const next = cur === a ? b : a;
        const u = await m.updateRoute(cur, next);
        expect(u.err ? u.val.message : 'ok').toBe('ok');
        cur = next;
      }
      // off the event loop: where the host's nft has its library, each change ran on the libnftables thread (no nft process)
      const onThread = libraryFor(nftProgram().program) !== undefined && process.env.NETFENCE_LIBNFTABLES !== 'off';
      expect(nftStats.threadApplies - before.threadApplies).toBe(onThread ? 6 : 0);
      expect(nftStats.applies - before.applies).toBe(6);
      stop = true;
      await prober;
      expect(outcomes.length).toBeGreaterThan(0);
      expect(outcomes.every((o) => o === 'server1' || o === 'server2')).toBe(true);
      expect((await longLived).stdout.trim()).toBe('ab');
      expect(await ask(lab, client, 'tcp', '198.18.1.1', 8080)).toBe('server1');
      expect((await m.destroy()).ok).toBe(true);
    });
  });

  it("overlapping routes: the higher priority answers and its settings apply, not the loser's; disabled routes forward nothing", async () => {
    await withLab('spprio', async (lab) => {
      const { client, proxy, s1, s2 } = await topo(lab);
      await lab.serve(s1, 'tcp', 80, '%peer');
      await lab.serve(s2, 'tcp', 80, '%peer');
      const m = new NetfenceRouteManager({ tableName: 'nf_sp', netns: proxy.netns });
      const a1 = createNfTablesRoute('prio-a', T('198.18.2.2'), { ports: 8080, priority: 1 });
      const b10 = createNfTablesRoute('prio-b', T('198.18.3.2'), { ports: 8080, priority: 10, preserveSourceIP: true });
      const ok = (r: { err: boolean; val: unknown }) => (r.err ? (r.val as Error).message : 'ok');
      expect(ok(await m.provisionRoute(a1))).toBe('ok');
      expect(ok(await m.provisionRoute(b10))).toBe('ok');
      const reply = () => ask(lab, client, 'tcp', '198.18.1.1', 8080);
      expect(await reply()).toBe('198.18.1.2');
      const b0 = createNfTablesRoute('prio-b', T('198.18.3.2'), { ports: 8080, priority: 0, preserveSourceIP: true, ipBlockList: ['198.18.1.0/24'] });
      expect(ok(await m.updateRoute(b10, b0))).toBe('ok');
      expect(await reply()).toBe('198.18.2.1');
      const aLow = createNfTablesRoute('prio-a', T('198.18.2.2'), { ports: 8080, priority: -1 });
      expect(ok(await m.updateRoute(a1, aLow))).toBe('ok');
      expect(await reply()).toBe('timeout');
      // prio-b disabled: its rules go, prio-a answers
      expect(ok(await m.provisionRoute({ ...b0, enabled: false }))).toBe('ok');
      expect(m.isRouteProvisioned(b0)).toBe(false);
      expect(await reply()).toBe('198.18.2.1');
      expect((await m.stop()).ok).toBe(true); // the deprecated alias of destroy() still removes everything
    });
  });
});
