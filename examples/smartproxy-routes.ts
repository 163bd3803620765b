/**
 * netfence/smartproxy as a drop-in for SmartProxy 21.x's NFTablesManager, in a
 * throwaway lab: client -- proxy -- two backends. Routes are built the way
 * SmartProxy builds them; the manager is constructed the way SmartProxy
 * constructs its own (`new NFTablesManager(smartProxy)`), netfence's options
 * second. Every outcome is checked (✔/✘); the example exits with status 1 on a ✘.
 *
 *   sudo npx tsx examples/smartproxy-routes.ts
 */
import { createNfTablesRoute, NFTablesManager, type IRouteConfig } from '../src/integrations/smartproxy.js';
import { withLab } from '../src/lab/index.js';
import { checkEqual as check } from './_check.js';

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

  // What SmartProxy hands its NFTablesManager: itself, with its settings.
  const routes: IRouteConfig[] = [
    // SmartProxy 21.x: action.targets; the higher-priority target is the one in force
    { name: 'web', match: { ports: 8080 }, action: { type: 'forward', forwardingEngine: 'nftables', targets: [{ host: '198.18.2.2', port: 80 }, { host: '198.18.3.2', port: 80, priority: 10 }] } },
    // route-level security with a glob, the source kept
    { ...createNfTablesRoute('keep-source', { host: '198.18.2.2', port: 81 }, { ports: 8081, preserveSourceIP: true }), security: { ipAllowList: ['198.18.1.*'] } },
    // a route for SmartProxy's own engine: not the manager's business
    { name: 'node-engine', match: { ports: 8443 }, action: { type: 'forward', targets: [{ host: '198.18.2.2', port: 443 }] } },
  ];
  const smartProxy = { settings: { routes, preserveSourceIP: false } };
  const nft = new NFTablesManager(smartProxy, { tableName: 'smartproxy', netns: proxy.netns });
  nft.on('error', (e) => console.log(`error event: ${e.message}`));

  // SmartProxy.start(): provision every nftables route
  for (const r of smartProxy.settings.routes) check(`provisionRoute(${r.name})`, await nft.provisionRoute(r), true);
  const ask = async (port: number) => {
    const p = await lab.probe(client, 'tcp', '198.18.1.1', port, { timeoutMs: 800 });
    return p.result === 'open' ? p.reply : p.result;
  };
  check('8080 → the target with priority 10', await ask(8080), 'backend2');
  check('8081 → backend sees the client', await ask(8081), '198.18.1.2');

  // a refused route: false, an 'error' event, and nothing applied
  const tls = createNfTablesRoute('tls-terminate', { host: '198.18.2.2', port: 80 }, { ports: 9443 });
  tls.action.tls = { mode: 'terminate', certificate: 'auto' };
  check('provisionRoute(tls terminate) is refused', await nft.provisionRoute(tls), false);
  check('9443 is not forwarded', await ask(9443), 'refused');

  // SmartProxy.updateRoutes(): one transaction, paired by name; unchanged routes untouched
  const next: IRouteConfig[] = [
    { name: 'web', match: { ports: 8080 }, action: { type: 'forward', forwardingEngine: 'nftables', targets: [{ host: ['198.18.2.2', '198.18.3.2'], port: 80 }] } },
    routes[1] as IRouteConfig,
  ];
  check('syncRoutes(next)', await nft.syncRoutes(next), true);
  const seen = new Set([await ask(8080), await ask(8080)]);
  check('8080 now load-balances over both backends', [...seen].sort(), ['backend1', 'backend2']);

  const status = await nft.getStatus();
  for (const s of Object.values(status)) console.log(`status ${s.netfence.name}: active=${s.active} rules=${s.ruleCount.total} connections=${s.metrics.forwardedConnections} bytes=${JSON.stringify(s.metrics.bytesForwarded)} targets=${JSON.stringify(s.netfence.addresses)}`);
  check('every route active', Object.values(status).map((s) => s.active), [true, true]);

  check('deprovisionRoute(keep-source)', await nft.deprovisionRoute(routes[1] as IRouteConfig), true);
  check('8081 after deprovision', await ask(8081), 'refused');
  await nft.stop();
});
