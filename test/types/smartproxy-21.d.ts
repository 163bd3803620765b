/**
 * SmartProxy 21.x's route and manager types as its documentation describes
 * them (`@push.rocks/smartproxy`: route-types, nftables-proxy models,
 * NFTablesManager), written here for the type test: netfence must accept
 * routes typed with these and a caller shaped like SmartProxy. Not SmartProxy's
 * source; only what its documented types say.
 */
import type { Socket } from 'node:net';

export type TRouteActionType = 'forward' | 'socket-handler';
export type TTlsMode = 'passthrough' | 'terminate' | 'terminate-and-reencrypt';
export type TPortRange = number | number[] | Array<{ from: number; to: number }>;

export interface IRouteContext {
  port: number;
  domain?: string;
  clientIp: string;
  serverIp: string;
  path?: string;
  query?: string;
  headers?: Record<string, string>;
  isTls: boolean;
  tlsVersion?: string;
  routeName?: string;
  routeId?: string;
  targetHost?: string | string[];
  targetPort?: number;
  timestamp: number;
  connectionId: string;
}

export type TSocketHandler = (socket: Socket, context: IRouteContext) => void | Promise<void>;

export interface IRouteMatch {
  ports: TPortRange;
  domains?: string | string[];
  path?: string;
  clientIp?: string[];
  tlsVersion?: string[];
  headers?: Record<string, string | RegExp>;
}

export interface ITargetMatch {
  ports?: number[];
  path?: string;
  headers?: Record<string, string | RegExp>;
  method?: string[];
}

export interface IRouteAcme {
  email: string;
  useProduction?: boolean;
  challengePort?: number;
  renewBeforeDays?: number;
}

export interface IRouteTls {
  mode: TTlsMode;
  certificate?: 'auto' | { key: string; cert: string; ca?: string; keyFile?: string; certFile?: string };
  acme?: IRouteAcme;
  versions?: string[];
  ciphers?: string;
  honorCipherOrder?: boolean;
  sessionTimeout?: number;
}

export interface IRouteWebSocket {
  enabled: boolean;
  pingInterval?: number;
  pingTimeout?: number;
  maxPayloadSize?: number;
  customHeaders?: Record<string, string>;
  subprotocols?: string[];
  rewritePath?: string;
  allowedOrigins?: string[];
  authenticateRequest?: boolean;
}

export interface IRouteLoadBalancing {
  algorithm: 'round-robin' | 'least-connections' | 'ip-hash';
  healthCheck?: { path: string; interval: number; timeout: number; unhealthyThreshold: number; healthyThreshold: number };
}

export interface IRouteAdvanced {
  timeout?: number;
  headers?: Record<string, string>;
  keepAlive?: boolean;
  staticFiles?: { root: string; index?: string[]; headers?: Record<string, string>; directory?: string; indexFiles?: string[]; cacheControl?: string; expires?: number; followSymlinks?: boolean; disableDirectoryListing?: boolean };
  testResponse?: { status: number; headers: Record<string, string>; body: string };
  urlRewrite?: { pattern: string; target: string; flags?: string; onlyRewritePath?: boolean };
}

export interface IRouteTarget {
  match?: ITargetMatch;
  host: string | string[] | ((context: IRouteContext) => string | string[]);
  port: number | 'preserve' | ((context: IRouteContext) => number);
  tls?: IRouteTls;
  websocket?: IRouteWebSocket;
  loadBalancing?: IRouteLoadBalancing;
  sendProxyProtocol?: boolean;
  headers?: { request?: Record<string, string>; response?: Record<string, string> };
  advanced?: IRouteAdvanced;
  priority?: number;
}

export interface INfTablesOptions {
  preserveSourceIP?: boolean;
  protocol?: 'tcp' | 'udp' | 'all';
  maxRate?: string;
  priority?: number;
  tableName?: string;
  useIPSets?: boolean;
  useAdvancedNAT?: boolean;
}

export interface IRouteAction {
  type: TRouteActionType;
  targets?: IRouteTarget[];
  tls?: IRouteTls;
  websocket?: IRouteWebSocket;
  loadBalancing?: IRouteLoadBalancing;
  advanced?: IRouteAdvanced;
  options?: { backendProtocol?: 'http1' | 'http2'; [key: string]: any };
  forwardingEngine?: 'node' | 'nftables';
  nftables?: INfTablesOptions;
  socketHandler?: TSocketHandler;
  sendProxyProtocol?: boolean;
}

export interface IRouteRateLimit {
  enabled: boolean;
  maxRequests: number;
  window: number;
  keyBy?: 'ip' | 'path' | 'header';
  headerName?: string;
  errorMessage?: string;
}

export interface IRouteAuthentication {
  type: 'basic' | 'digest' | 'oauth' | 'jwt';
  credentials?: { username: string; password: string }[];
  realm?: string;
  jwtSecret?: string;
  jwtIssuer?: string;
  oauthProvider?: string;
  oauthClientId?: string;
  oauthClientSecret?: string;
  oauthRedirectUri?: string;
  options?: Record<string, unknown>;
}

export interface IRouteSecurity {
  ipAllowList?: string[];
  ipBlockList?: string[];
  maxConnections?: number;
  authentication?: IRouteAuthentication;
  rateLimit?: IRouteRateLimit;
  basicAuth?: { enabled: boolean; users: Array<{ username: string; password: string }>; realm?: string; excludePaths?: string[] };
  jwtAuth?: { enabled: boolean; secret: string; algorithm?: string; issuer?: string; audience?: string; expiresIn?: number; excludePaths?: string[] };
}

export interface IRouteConfig {
  id?: string;
  match: IRouteMatch;
  action: IRouteAction;
  headers?: { request?: Record<string, string>; response?: Record<string, string> };
  security?: IRouteSecurity;
  name?: string;
  description?: string;
  priority?: number;
  tags?: string[];
  enabled?: boolean;
}

/** The parts of SmartProxy's options its NFTablesManager reads, among many others. */
export interface ISmartProxyOptions {
  routes: IRouteConfig[];
  preserveSourceIP?: boolean;
  enableDetailedLogging?: boolean;
  defaults?: { target?: { host: string; port: number }; security?: IRouteSecurity; preserveSourceIP?: boolean };
  initialDataTimeout?: number;
  maxConnectionLifetime?: number;
  acme?: { email?: string; enabled?: boolean; useProduction?: boolean };
}

export interface NfTablesStatus {
  active: boolean;
  ruleCount: { total: number; added: number; verified: number };
  tablesConfigured: { family: string; tableName: string }[];
  metrics: { forwardedConnections?: number; activeConnections?: number; bytesForwarded?: { sent: number; received: number } };
  qosEnabled?: boolean;
  ipSetsConfigured?: { name: string; elementCount: number; type: string }[];
}

/** SmartProxy's own manager's public surface (what a SmartProxy-shaped caller uses). */
export interface INFTablesManagerLike {
  provisionRoute(route: IRouteConfig): Promise<boolean>;
  deprovisionRoute(route: IRouteConfig): Promise<boolean>;
  updateRoute(oldRoute: IRouteConfig, newRoute: IRouteConfig): Promise<boolean>;
  isRouteProvisioned(route: IRouteConfig): boolean;
  getStatus(): Promise<Record<string, NfTablesStatus>>;
  stop(): Promise<void>;
}
