/**
 * Type test (compiled by `tsc --noEmit`, never run): routes typed with
 * SmartProxy 21.x's types (./smartproxy-21.d.ts) and a caller shaped like
 * SmartProxy compile against `netfence/smartproxy` (mapped to the sources by
 * tsconfig `paths`). `npm test` runs it in its typecheck step.
 */
import { createNfTablesRoute, createNfTablesTerminateRoute, NFTablesManager, NetfenceRouteManager } from 'netfence/smartproxy';
import type { IRouteConfig, INFTablesManagerLike, ISmartProxyOptions, NfTablesStatus } from './smartproxy-21.js';

// Routes as SmartProxy users write them.
const routes: IRouteConfig[] = [
  {
    name: 'web',
    match: { ports: [8080, 8081], domains: '*' },
    action: {
      type: 'forward',
      targets: [
        { host: ['198.18.2.2', '198.18.3.2'], port: 80, priority: 1 },
        { host: (ctx) => (ctx.clientIp.startsWith('198.18.1.') ? '198.18.2.2' : '198.18.3.2'), port: (ctx) => ctx.port, match: { ports: [8081] } },
      ],
      forwardingEngine: 'nftables',
      nftables: { protocol: 'tcp', preserveSourceIP: false, maxRate: '100mbps', priority: 5, useIPSets: true, useAdvancedNAT: false },
      loadBalancing: { algorithm: 'round-robin' },
      tls: { mode: 'passthrough' },
    },
    security: { ipAllowList: ['198.18.*'], ipBlockList: ['198.18.9.0/24'], maxConnections: 100 },
    priority: 10,
    tags: ['edge'],
    enabled: true,
  },
  {
    name: 'api',
    match: { ports: [{ from: 9000, to: 9010 }], domains: ['api.example'], path: '/v1/*', clientIp: ['198.18.1.*'], headers: { 'x-a': /b/ } },
    action: { type: 'forward', targets: [{ host: 'backend.internal', port: 'preserve' }], websocket: { enabled: true }, advanced: { timeout: 5 } },
    headers: { request: { 'x-forwarded-by': 'smartproxy' } },
  },
  { name: 'sock', match: { ports: 7000 }, action: { type: 'socket-handler', socketHandler: (socket) => void socket.end() } },
];

// netfence's helpers build routes SmartProxy's types accept, and take SmartProxy's arguments.
const built: IRouteConfig[] = [
  createNfTablesRoute('test-nftables', { host: 'localhost', port: 4000 }, { ports: 5000, protocol: 'tcp' }),
  createNfTablesTerminateRoute('secure.example', { host: '198.18.2.2', port: 8443 }, { certificate: 'auto' }),
];

/** A caller shaped like SmartProxy: it hands itself to the manager and uses it as SmartProxy does. */
class SmartProxyShaped {
  public settings: ISmartProxyOptions;
  private nftablesManager: INFTablesManagerLike;

  constructor(settings: ISmartProxyOptions) {
    this.settings = settings;
    this.nftablesManager = new NFTablesManager(this, { netns: 'edge', tableName: 'smartproxy' });
  }

  async start(): Promise<void> {
    for (const route of this.settings.routes) {
      if (route.action.forwardingEngine === 'nftables') {
        const ok: boolean = await this.nftablesManager.provisionRoute(route);
        if (!ok) throw new Error(`route ${route.name} refused`);
      }
    }
  }

  async updateRoutes(newRoutes: IRouteConfig[]): Promise<void> {
    const old = this.settings.routes.filter((r) => r.action.forwardingEngine === 'nftables');
    const next = newRoutes.filter((r) => r.action.forwardingEngine === 'nftables');
    for (const o of old) {
      const n = next.find((r) => r.name === o.name);
      if (!n) await this.nftablesManager.deprovisionRoute(o);
      else await this.nftablesManager.updateRoute(o, n);
    }
    for (const n of next) if (!old.find((r) => r.name === n.name)) await this.nftablesManager.provisionRoute(n);
    this.settings.routes = newRoutes;
  }

  isProvisioned(route: IRouteConfig): boolean {
    return this.nftablesManager.isRouteProvisioned(route);
  }

  async getNfTablesStatus(): Promise<Record<string, NfTablesStatus>> {
    return this.nftablesManager.getStatus();
  }

  async stop(): Promise<void> {
    await this.nftablesManager.stop();
  }
}

// The whole set in one transaction, and the Result API for netfence users.
async function drive(): Promise<void> {
  const sp = new SmartProxyShaped({ routes: [...routes, ...built], preserveSourceIP: true });
  await sp.start();
  const m = new NFTablesManager(sp.settings, { netns: 'edge' });
  const synced: boolean = await m.syncRoutes(sp.settings.routes);
  m.on('error', (e) => console.error(e.code, e.message));
  const r = await new NetfenceRouteManager({ netns: 'edge' }).provisionRoute(routes[0] as IRouteConfig);
  if (r.err) console.error(r.val.message);
  // @ts-expect-error the drop-in answers booleans, not Result values
  if ((await m.provisionRoute(built[0] as IRouteConfig)).err) throw new Error('unreachable');
  void synced;
  await sp.stop();
}
void drive;
