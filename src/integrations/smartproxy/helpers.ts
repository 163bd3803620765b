/**
 * Route helpers with SmartProxy 21.x's signatures (its `route-helpers`
 * nftables functions), building SmartProxy-shaped routes (`action.targets`,
 * route-level `security`).
 * @module
 */
import type { Socket } from 'node:net';
import type { IPortRange, IRouteConfig, TPortRange } from './types.js';

/** SmartProxy's own `TPortRange` (what the helpers put in routes, so SmartProxy's types accept them). */
export type SmartProxyPortRange = number | number[] | Array<{ from: number; to: number }>;

/** The route the nftables helpers build: assignable to SmartProxy 21.x's `IRouteConfig` and to netfence's. */
export interface NfTablesRoute {
  name: string;
  match: { ports: SmartProxyPortRange; domains?: string | string[] };
  action: {
    type: 'forward';
    targets: Array<{ host: string | string[]; port: number | 'preserve' }>;
    forwardingEngine: 'nftables';
    nftables: { protocol?: 'tcp' | 'udp' | 'all'; preserveSourceIP?: boolean; maxRate?: string; priority?: number; tableName?: string; useIPSets?: boolean; useAdvancedNAT?: boolean };
    tls?: { mode: 'passthrough' | 'terminate'; certificate?: 'auto' | { key: string; cert: string } };
  };
  security?: { ipAllowList?: string[]; ipBlockList?: string[] };
}

/** The HTTP→HTTPS redirect route of {@link createCompleteNfTablesHttpsServer} (for SmartProxy's own engine). */
export interface RedirectRoute {
  name: string;
  match: { ports: SmartProxyPortRange; domains?: string | string[] };
  action: { type: 'socket-handler'; socketHandler: (socket: Socket) => void };
}

/** A target as the helpers take it. */
export interface NfTablesHelperTarget {
  host: string | string[];
  port: number | 'preserve';
}

/** Options of {@link createNfTablesRoute} (SmartProxy's, plus nothing). */
export interface NfTablesRouteOptions {
  /** Ports (default 80). */
  ports?: SmartProxyPortRange;
  protocol?: 'tcp' | 'udp' | 'all';
  preserveSourceIP?: boolean;
  ipAllowList?: string[];
  ipBlockList?: string[];
  maxRate?: string;
  priority?: number;
  /** TLS passthrough (`action.tls = { mode: 'passthrough' }`). */
  useTls?: boolean;
  tableName?: string;
  useIPSets?: boolean;
  useAdvancedNAT?: boolean;
}

/** Options of {@link createNfTablesTerminateRoute}. */
export interface NfTablesTerminateRouteOptions extends NfTablesRouteOptions {
  certificate?: 'auto' | { key: string; cert: string };
}

const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/**
 * A forward route on the nftables engine (SmartProxy's signature): a name, or
 * domains (an array, or a string containing a dot: the route is then named
 * `nft-<first domain>`), a target, and options (`ports` default 80).
 *
 * The earlier netfence form `createNfTablesRoute(name, ports, target, options?)`
 * is still accepted (deprecated).
 */
export function createNfTablesRoute(nameOrDomains: string | string[], target: NfTablesHelperTarget, options?: NfTablesRouteOptions): NfTablesRoute;
/** @deprecated netfence's earlier argument order; use `createNfTablesRoute(name, target, { ports, ... })`. */
export function createNfTablesRoute(name: string, ports: SmartProxyPortRange | IPortRange, target: NfTablesHelperTarget, options?: NfTablesRouteOptions): IRouteConfig;
export function createNfTablesRoute(nameOrDomains: string | string[], a: NfTablesHelperTarget | TPortRange, b?: NfTablesRouteOptions | NfTablesHelperTarget, c?: NfTablesRouteOptions): NfTablesRoute {
  if (typeof a === 'object' && a !== null && !Array.isArray(a) && 'host' in a) return build(nameOrDomains, a, (b as NfTablesRouteOptions | undefined) ?? {});
  return build(nameOrDomains, b as NfTablesHelperTarget, { ...(c ?? {}), ports: a as SmartProxyPortRange });
}

function build(nameOrDomains: string | string[], target: NfTablesHelperTarget, options: NfTablesRouteOptions): NfTablesRoute {
  let name: string;
  let domains: string | string[] | undefined;
  if (Array.isArray(nameOrDomains) || nameOrDomains.includes('.')) {
    domains = nameOrDomains;
    name = `nft-${Array.isArray(nameOrDomains) ? nameOrDomains[0] : nameOrDomains}`;
  } else name = nameOrDomains;
  const { ports, protocol, preserveSourceIP, ipAllowList, ipBlockList, maxRate, priority, useTls, tableName, useIPSets, useAdvancedNAT } = options;
  const route: NfTablesRoute = {
    name,
    match: { ports: ports ?? 80, ...(domains !== undefined ? { domains } : {}) },
    action: {
      type: 'forward',
      targets: [{ host: target.host, port: target.port }],
      forwardingEngine: 'nftables',
      nftables: defined({ protocol: protocol ?? 'tcp', preserveSourceIP, maxRate, priority, tableName, useIPSets, useAdvancedNAT }),
      ...(useTls ? { tls: { mode: 'passthrough' as const } } : {}),
    },
  };
  if (ipAllowList?.length || ipBlockList?.length) route.security = defined({ ipAllowList, ipBlockList });
  return route;
}

/**
 * SmartProxy's TLS-terminating nftables route (ports default 443,
 * `tls: { mode: 'terminate' }`). The kernel cannot terminate TLS: netfence's
 * managers refuse it naming `action.tls.mode` (SmartProxy itself forwards it
 * raw). Provided so that SmartProxy code using it compiles.
 */
export function createNfTablesTerminateRoute(nameOrDomains: string | string[], target: NfTablesHelperTarget, options: NfTablesTerminateRouteOptions = {}): NfTablesRoute {
  const { certificate, ...rest } = options;
  const route = build(nameOrDomains, target, { ...rest, ports: rest.ports ?? 443, useTls: false });
  route.action.tls = { mode: 'terminate', certificate: certificate ?? 'auto' };
  return route;
}

/**
 * SmartProxy's pair for an HTTPS server: the terminating nftables route and an
 * HTTP→HTTPS redirect route (a socket-handler route for SmartProxy's own
 * engine; netfence's `NFTablesManager` leaves it to SmartProxy, and refuses
 * the terminating one as above).
 */
export function createCompleteNfTablesHttpsServer(nameOrDomains: string | string[], target: NfTablesHelperTarget, options: NfTablesTerminateRouteOptions & { httpPort?: SmartProxyPortRange; httpsPort?: SmartProxyPortRange } = {}): [NfTablesRoute, RedirectRoute] {
  const { httpPort, httpsPort, ...rest } = options;
  const https = createNfTablesTerminateRoute(nameOrDomains, target, { ...rest, ports: httpsPort ?? 443 });
  const firstHttps = Array.isArray(https.match.ports) ? https.match.ports[0] : https.match.ports;
  const toPort = typeof firstHttps === 'number' ? firstHttps : (firstHttps?.from ?? 443);
  const redirect: RedirectRoute = {
    name: `${https.name}-http-redirect`,
    match: { ports: httpPort ?? 80, ...(https.match.domains !== undefined ? { domains: https.match.domains } : {}) },
    action: { type: 'socket-handler', socketHandler: httpsRedirectHandler(toPort) },
  };
  return [https, redirect];
}

/** A minimal socket handler answering an HTTP request with a 301 to the same host and path over HTTPS. */
export function httpsRedirectHandler(httpsPort = 443): (socket: Socket) => void {
  return (socket) => {
    socket.once('data', (b: Buffer) => {
      const head = b.toString('latin1');
      const path = /^[A-Z]+ (\/[^\s]*) HTTP\//.exec(head)?.[1] ?? '/';
      const host = (/\r\nhost:\s*([^\r\n:]+)/i.exec(head)?.[1] ?? 'localhost').trim();
      const safeHost = /^[A-Za-z0-9.-]{1,253}$/.test(host) ? host : 'localhost';
      const safePath = /^\/[\x21-\x7e]*$/.test(path) ? path : '/';
      const location = `https://${safeHost}${httpsPort === 443 ? '' : `:${httpsPort}`}${safePath}`;
      socket.end(`HTTP/1.1 301 Moved Permanently\r\nLocation: ${location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    });
  };
}

/** A route forwarding a port range to the same ports on `host` (`'preserve'`); netfence's helper. */
export function createNfTablesRangeRoute(name: string, from: number, to: number, host: string | string[], options: NfTablesRouteOptions = {}): NfTablesRoute {
  return build(name, { host, port: 'preserve' }, { ...options, ports: [{ from, to }] });
}
