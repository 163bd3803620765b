/**
 * Route types of `netfence/smartproxy`, written to accept what SmartProxy
 * 21.x's own types describe (plain interfaces, no index signatures), so that a
 * route typed with SmartProxy's `IRouteConfig` type-checks here too.
 *
 * Every field SmartProxy 21.x defines is named. Fields the kernel rules
 * implement are typed precisely; fields netfence refuses (see the
 * `SMARTPROXY_FIELDS` table in `fields.ts`) are typed `unknown`: they are
 * accepted by the type checker and refused at run time with an error naming
 * the field, never ignored.
 * @module
 */

/** A port range `{ from, to }` (inclusive). */
export interface IPortRange {
  from: number;
  to: number;
}

/**
 * Ports of a route: SmartProxy's `TPortRange` (`number | number[] |
 * Array<{from,to}>`); netfence also takes one `{from,to}` and mixed arrays.
 */
export type TPortRange = number | IPortRange | ReadonlyArray<number | IPortRange>;

/** A function SmartProxy calls per connection: it cannot become kernel rules (refused). */
export type TRouteFunction = (...args: never[]) => unknown;

/** nftables options of a route (SmartProxy's `INfTablesOptions`). */
export interface INfTablesOptions {
  /** `'tcp'` (default), `'udp'` or `'all'` (both). */
  protocol?: 'tcp' | 'udp' | 'all';
  /** Keep the client's address (no masquerade): the target must route replies back through this host. Default: SmartProxy's `settings.preserveSourceIP`, else false. */
  preserveSourceIP?: boolean;
  /** Rate limit of the route's forwarded traffic (both directions together), e.g. `'10mbps'`, `'500kbps'`, `'1gbps'` (bits per second). */
  maxRate?: string;
  /** Order of routes whose ports overlap: the higher number wins. Overrides the route's `priority`. */
  priority?: number;
  /** Table for this route (default: the manager's). */
  tableName?: string;
  /** Named sets for IP lists (default true); inline anonymous sets when false. */
  useIPSets?: boolean;
  /** `true` is refused (no kernel behaviour netfence could reproduce); `false` is conntrack DNAT, the only behaviour. */
  useAdvancedNAT?: boolean;
}

/** Route security (SmartProxy's `IRouteSecurity`, plus the names of older releases). */
export interface IRouteSecurity {
  /** Only these clients (addresses, CIDR, `a-b` ranges, globs like `'192.168.*'`, `'*'`). Empty = no restriction, as in SmartProxy. */
  ipAllowList?: readonly string[];
  /** Never these clients (same syntax). Blocks win over allows. */
  ipBlockList?: readonly string[];
  /** Older name of `ipAllowList`. */
  allowedIps?: readonly string[];
  /** Older name of `ipBlockList`. */
  blockedIps?: readonly string[];
  /** Refused: not implemented in the kernel rules. */
  maxConnections?: unknown;
  /** Refused (HTTP-level). */
  authentication?: unknown;
  /** Refused (HTTP-level). */
  rateLimit?: unknown;
  /** Refused (HTTP-level). */
  basicAuth?: unknown;
  /** Refused (HTTP-level). */
  jwtAuth?: unknown;
}

/** What a route matches (SmartProxy's `IRouteMatch`). */
export interface IRouteMatch {
  /** Ports on this host's addresses. */
  ports: TPortRange;
  /** Only absent or `'*'` (every domain): kernel NAT cannot see names. Anything else is refused. */
  domains?: string | readonly string[];
  /** Refused (HTTP-level). */
  path?: unknown;
  /** Clients this route applies to (same syntax as `ipAllowList`); other clients fall through to lower-priority routes. */
  clientIp?: readonly string[];
  /** Refused (TLS-level). */
  tlsVersion?: unknown;
  /** Refused (HTTP-level). */
  headers?: unknown;
}

/** TLS handling (SmartProxy's `IRouteTls`). Only `{ mode: 'passthrough' }` is possible in the kernel: the bytes are forwarded untouched. */
export interface IRouteTls {
  mode: 'passthrough' | 'terminate' | 'terminate-and-reencrypt' | (string & {});
  certificate?: unknown;
  acme?: unknown;
  versions?: unknown;
  ciphers?: unknown;
  honorCipherOrder?: unknown;
  sessionTimeout?: unknown;
}

/** Load balancing among a target's hosts (SmartProxy's `IRouteLoadBalancing`). */
export interface IRouteLoadBalancing {
  /** `'round-robin'` (the default for a host array) and `'ip-hash'` are kernel rules; `'least-connections'` is refused. */
  algorithm?: 'round-robin' | 'least-connections' | 'ip-hash' | (string & {});
  /** Refused: the kernel does not probe targets. */
  healthCheck?: unknown;
}

/** One target of a route (SmartProxy 21.x's `IRouteTarget`). */
export interface IRouteTarget {
  /** Refused: per-target sub-matching (ports, path, headers, method) is not kernel NAT. */
  match?: unknown;
  /** An address or host name, or several (load-balanced). Names are resolved once at provision time. Functions are refused. */
  host: string | readonly string[] | TRouteFunction;
  /** A port, or `'preserve'` (the port the client used). Functions are refused. */
  port: number | 'preserve' | TRouteFunction;
  /** Refused (per-target TLS). */
  tls?: unknown;
  /** Refused. */
  websocket?: unknown;
  /** Refused (use the action's `loadBalancing`). */
  loadBalancing?: unknown;
  /** `true` is refused (the kernel cannot write a PROXY header). */
  sendProxyProtocol?: boolean;
  /** Refused (HTTP-level). */
  headers?: unknown;
  /** Refused. */
  advanced?: unknown;
  /** Target choice: the highest priority wins, ties go to the earlier target (as SmartProxy picks). */
  priority?: number;
}

/** The target of the 2025 plan's route shape (`action.target`). */
export interface IRouteTargetLegacy {
  host: string | readonly string[] | TRouteFunction;
  port: number | 'preserve' | TRouteFunction;
}

/** What a route does (SmartProxy's `IRouteAction`, both the 21.x and the plan's shape). */
export interface IRouteAction {
  /** Only `'forward'` can run on the nftables engine. */
  type: 'forward' | 'socket-handler' | (string & {});
  /** SmartProxy 21.x targets. */
  targets?: readonly IRouteTarget[];
  /** The plan's single target (SmartProxy before 21.0). */
  target?: IRouteTargetLegacy;
  /** Only `{ mode: 'passthrough' }`. */
  tls?: IRouteTls;
  /** Refused. */
  websocket?: unknown;
  loadBalancing?: IRouteLoadBalancing;
  /** Refused. */
  advanced?: unknown;
  /** Refused. */
  options?: unknown;
  /** Routes on any other engine are not this manager's (`NFTablesManager` returns `true` for them, as SmartProxy's does). */
  forwardingEngine?: 'node' | 'nftables' | (string & {});
  nftables?: INfTablesOptions;
  /** Refused. */
  socketHandler?: unknown;
  /** `true` is refused. */
  sendProxyProtocol?: boolean;
  /** Security at action level (older SmartProxy releases). */
  security?: IRouteSecurity;
}

/** A SmartProxy route (21.x's `IRouteConfig`, and the plan's shape). */
export interface IRouteConfig {
  id?: string;
  match: IRouteMatch;
  action: IRouteAction;
  /** Refused (HTTP header rewriting). */
  headers?: unknown;
  /** Route-level security (SmartProxy 19+). */
  security?: IRouteSecurity;
  name?: string;
  /** Metadata, kept. */
  description?: string;
  /** Higher is matched first. */
  priority?: number;
  /** Metadata, kept. */
  tags?: readonly string[];
  /** `false`: the route forwards nothing (provisioning it removes an earlier version). */
  enabled?: boolean;
}

/** What `NFTablesManager` reads from SmartProxy's settings (`ISmartProxyOptions`). */
export interface SmartProxySettings {
  /** Default of `action.nftables.preserveSourceIP`. */
  preserveSourceIP?: boolean;
  /** Log each provisioned route. */
  enableDetailedLogging?: boolean;
  /** Not read by the manager (SmartProxy passes routes one by one); typed for `syncRoutes(smartProxy.settings.routes)`. */
  routes?: readonly IRouteConfig[];
}

/** A SmartProxy instance (or anything with its `settings`). */
export interface SmartProxyLike {
  settings: SmartProxySettings;
}

/** SmartProxy's `NfTablesStatus` (per route). */
export interface NfTablesStatus {
  active: boolean;
  ruleCount: { total: number; added: number; verified: number };
  tablesConfigured: { family: string; tableName: string }[];
  metrics: {
    forwardedConnections?: number;
    activeConnections?: number;
    bytesForwarded?: { sent: number; received: number };
  };
  qosEnabled?: boolean;
  ipSetsConfigured?: { name: string; elementCount: number; type: string }[];
}

/** A logger (SmartProxy's shape); `console` by default. */
export interface RouteLogger {
  error(message: string, ...args: unknown[]): void;
  info?(message: string, ...args: unknown[]): void;
}

export type { NetfenceRouteOptions } from './options.js';

/** Status of one provisioned route in netfence's terms. */
export interface RouteStatus {
  routeId: string;
  name: string | undefined;
  table: string;
  /** Packets and bytes that hit the route's DNAT rules (NAT rules see the first packet of each flow). */
  packets: number;
  bytes: number;
  /** Packets and bytes counted on the route's forwarded traffic (all packets of its flows). */
  forwarded: { packets: number; bytes: number };
  /** The route's rules in force, by comment. */
  rules: { comment: string; chain: string; handle: number }[];
  /** The target addresses in force (host names resolved at provision time), per client family. */
  addresses: { ipv4: string[]; ipv6: string[] };
  /** Which of `action.targets` is in force (0 for the plan's `action.target`). */
  targetIndex: number;
  /** What happens to clients on other hosts. */
  remoteClients: 'forwarded' | 'rejected';
  /** Decisions taken for this route (fast path, loopback targets), with reasons. */
  decisions: { subject: string; chosen: string; reason: string }[];
}

/** `NetfenceRouteManager.getStatus()`: routes by id. */
export type NFTablesStatus = Record<string, RouteStatus>;

/** `NFTablesManager.getStatus()`: SmartProxy's status per route, plus netfence's. */
export interface NetfenceNfTablesStatus extends NfTablesStatus {
  netfence: RouteStatus;
}
