/**
 * SmartProxy routes on the nftables engine, in a throwaway lab:
 * client -- proxy -- two backends. Provision, inspect, update atomically, deprovision.
 *
 *   sudo npx tsx examples/smartproxy-routes.ts
 */
import { createNfTablesRangeRoute, createNfTablesRoute, NFTablesManager } from '../src/integrations/smartproxy.js';
import { withLab } from '../src/lab/index.js';

await withLab('spexample', async (lab) => {
  const client = await lab.host('client');
  const proxy = await lab.host('proxy');
  const b1 = await lab.host('backend1');
  const b2 = await lab.host('backend2');
  await lab.link({ host: client, addrs: ['198.18.1.2/24'] }, { host: proxy, addrs: ['198.18.1.1/24'] });
  await lab.link({ host: proxy, addrs: ['198.18.2.1/24'] }, { host: b1, addrs: ['198.18.2.2/24'] });
  await lab.link({ host: proxy, addrs: ['198.18.3.1/24'] }, { host: b2, addrs: ['198.18.3.2/24'] });
  await lab.forwarding(proxy);
  await lab.route(client, 'default', '198.18.1.1');
  await lab.route(b1, 'default', '198.18.2.1');
  await lab.route(b2, 'default', '198.18.3.1');
  await lab.serve(b1, 'tcp', 80, 'backend1');
  await lab.serve(b2, 'tcp', 80, 'backend2');
  await lab.serve(b1, 'tcp', 81, '%peer');
  for (const p of [9001, 9002]) await lab.serve(b1, 'tcp', p);

  const m = new NFTablesManager({ tableName: 'smartproxy', netns: proxy.netns });
  const web = createNfTablesRoute('web', 8080, { host: ['198.18.2.2', '198.18.3.2'], port: 80 });
  const keep = createNfTablesRoute('keep-source', 8081, { host: '198.18.2.2', port: 81 }, { preserveSourceIP: true, ipAllowList: ['198.18.1.0/24'] });
  const range = createNfTablesRangeRoute('range', 9001, 9002, '198.18.2.2');
  for (const r of [web, keep, range]) {
    const p = await m.provisionRoute(r);
    if (p.err) throw p.val;
    console.log(`provisioned ${r.name} as ${p.val.routeId}`);
  }
  const ask = async (port: number) => (await lab.probe(client, 'tcp', '198.18.1.1', port, { timeoutMs: 800 })).reply || '(no answer)';
  console.log(`8080 (load-balanced): ${await ask(8080)}, ${await ask(8080)}`);
  console.log(`8081 (source kept, backend sees): ${await ask(8081)}`);
  console.log(`9002 (range, port preserved): ${await ask(9002)}`);

  const moved = createNfTablesRoute('web', 8080, { host: '198.18.3.2', port: 80 });
  const u = await m.updateRoute(web, moved);
  if (u.err) throw u.val;
  console.log(`after updateRoute (one transaction): 8080 → ${await ask(8080)}, ${await ask(8080)}`);

  const st = await m.getStatus();
  if (st.ok) for (const r of Object.values(st.val)) console.log(`status ${r.name}: ${r.packets} NATed flows' packets, ${r.forwarded.bytes} bytes forwarded, ${r.rules.length} rules`);

  await m.deprovisionRoute(range);
  console.log(`after deprovisionRoute(range): 9002 → ${await ask(9002)}`);
  await m.stop();
});
