/**
 * Every field of SmartProxy 21.x's `IRouteConfig` (and the older shapes
 * netfence also reads) with what the nftables engine does with it:
 * `enforced` (kernel rules, proven with packets by the kernel tests),
 * `metadata` (kept, no packet behaviour), or `refused` (a `ValidationError`
 * naming the field). Values listed in `refusedValues` are refused for an
 * otherwise enforced field. The unit tests enumerate this table; the route
 * reader uses the key sets below, so that an unknown key is refused too.
 * @module
 */

/** What happens to one field. */
export interface FieldRule {
  /** Dotted path; `targets.N` is written `action.targets.*`. */
  path: string;
  status: 'enforced' | 'metadata' | 'refused';
  /** How (enforced) or why (refused). */
  how: string;
  /** A value that shows the refusal (for `refused` fields), or values refused although the field is enforced. */
  refusedValues?: unknown[];
}

const fn = () => 'x';

/** The table. */
export const SMARTPROXY_FIELDS: readonly FieldRule[] = [
  { path: 'id', status: 'enforced', how: 'part of the route id (with name and match) used by provision, update, deprovision and isRouteProvisioned' },
  { path: 'name', status: 'enforced', how: 'route id, rule comments, status; syncRoutes pairs old and new routes by name as SmartProxy does' },
  { path: 'description', status: 'metadata', how: 'kept with the route, no packet behaviour' },
  { path: 'tags', status: 'metadata', how: 'kept with the route, no packet behaviour' },
  { path: 'priority', status: 'enforced', how: 'routes whose ports overlap: the higher priority\'s rules come first and claim the packets' },
  { path: 'enabled', status: 'enforced', how: 'false: the route has no rules (provisioning it removes an earlier version)' },
  { path: 'headers', status: 'refused', how: 'HTTP header rewriting is not kernel NAT', refusedValues: [{ request: { 'x-a': 'b' } }] },
  { path: 'security.ipAllowList', status: 'enforced', how: 'clients outside the list are dropped (named interval sets; globs, CIDR, ranges)', refusedValues: [['1*']] },
  { path: 'security.ipBlockList', status: 'enforced', how: 'clients in the list are dropped', refusedValues: [['1*']] },
  { path: 'security.allowedIps', status: 'enforced', how: 'older name of ipAllowList' },
  { path: 'security.blockedIps', status: 'enforced', how: 'older name of ipBlockList' },
  { path: 'security.maxConnections', status: 'refused', how: 'connection limits are not implemented in the kernel rules', refusedValues: [10] },
  { path: 'security.authentication', status: 'refused', how: 'HTTP-level', refusedValues: [{ type: 'basic' }] },
  { path: 'security.rateLimit', status: 'refused', how: 'HTTP request rate limiting (use action.nftables.maxRate for bandwidth)', refusedValues: [{ enabled: true, maxRequests: 10, window: 60 }] },
  { path: 'security.basicAuth', status: 'refused', how: 'HTTP-level', refusedValues: [{ enabled: true, users: [] }] },
  { path: 'security.jwtAuth', status: 'refused', how: 'HTTP-level', refusedValues: [{ enabled: true, secret: 's' }] },
  { path: 'match.ports', status: 'enforced', how: 'th dport of packets to this host\'s addresses (fib daddr type local)', refusedValues: [0, { from: 9, to: 8 }] },
  { path: 'match.domains', status: 'enforced', how: "absent or '*' (every domain) only", refusedValues: ['example.com'] },
  { path: 'match.path', status: 'refused', how: 'HTTP-level', refusedValues: ['/api'] },
  { path: 'match.clientIp', status: 'enforced', how: 'the route applies to these clients only; others fall through to lower-priority routes', refusedValues: [['1*']] },
  { path: 'match.tlsVersion', status: 'refused', how: 'TLS-level', refusedValues: [['TLSv1.3']] },
  { path: 'match.headers', status: 'refused', how: 'HTTP-level', refusedValues: [{ host: 'x' }] },
  { path: 'action.type', status: 'enforced', how: "'forward' only", refusedValues: ['socket-handler'] },
  { path: 'action.targets', status: 'enforced', how: 'the target SmartProxy picks: highest priority, ties to the earliest', refusedValues: [[]] },
  { path: 'action.targets.*.host', status: 'enforced', how: 'DNAT address; an array load-balances; names resolved once at provision time', refusedValues: [fn, 'bad_name!'] },
  { path: 'action.targets.*.port', status: 'enforced', how: "DNAT port, or 'preserve'", refusedValues: [fn, 70000] },
  { path: 'action.targets.*.priority', status: 'enforced', how: 'target choice' },
  { path: 'action.targets.*.match', status: 'refused', how: 'per-target sub-matching is not kernel NAT', refusedValues: [{ ports: [80] }] },
  { path: 'action.targets.*.tls', status: 'refused', how: 'per-target TLS', refusedValues: [{ mode: 'terminate' }] },
  { path: 'action.targets.*.websocket', status: 'refused', how: 'HTTP-level', refusedValues: [{ enabled: true }] },
  { path: 'action.targets.*.loadBalancing', status: 'refused', how: 'per-target load balancing (use action.loadBalancing)', refusedValues: [{ algorithm: 'round-robin' }] },
  { path: 'action.targets.*.sendProxyProtocol', status: 'enforced', how: 'false only: the kernel cannot write a PROXY header', refusedValues: [true] },
  { path: 'action.targets.*.headers', status: 'refused', how: 'HTTP-level', refusedValues: [{ request: {} }] },
  { path: 'action.targets.*.advanced', status: 'refused', how: 'HTTP-level', refusedValues: [{ timeout: 1 }] },
  { path: 'action.target', status: 'enforced', how: "the 2025 plan's single target (host, port)", refusedValues: [{ host: fn, port: 80 }] },
  { path: 'action.tls', status: 'enforced', how: "mode 'passthrough' only (bytes forwarded untouched)", refusedValues: [{ mode: 'terminate', certificate: 'auto' }, { mode: 'terminate-and-reencrypt' }, { mode: 'passthrough', versions: ['TLSv1.3'] }] },
  { path: 'action.websocket', status: 'refused', how: 'HTTP-level', refusedValues: [{ enabled: true }] },
  { path: 'action.loadBalancing.algorithm', status: 'enforced', how: "'round-robin' (numgen inc) or 'ip-hash' (jhash of the client address)", refusedValues: ['least-connections'] },
  { path: 'action.loadBalancing.healthCheck', status: 'refused', how: 'the kernel does not probe targets', refusedValues: [{ path: '/', interval: 1000, timeout: 100, unhealthyThreshold: 2, healthyThreshold: 2 }] },
  { path: 'action.advanced', status: 'refused', how: 'HTTP-level', refusedValues: [{ timeout: 1 }] },
  { path: 'action.options', status: 'refused', how: 'proxy options (backendProtocol, ...)', refusedValues: [{ backendProtocol: 'http2' }] },
  { path: 'action.forwardingEngine', status: 'enforced', how: "'nftables': this manager's; any other engine is SmartProxy's (NFTablesManager returns true, as SmartProxy's does)" },
  { path: 'action.nftables.protocol', status: 'enforced', how: "l4proto tcp, udp, or both ('all')", refusedValues: ['sctp'] },
  { path: 'action.nftables.preserveSourceIP', status: 'enforced', how: 'no masquerade when true' },
  { path: 'action.nftables.maxRate', status: 'enforced', how: 'byte-rate limit of the route\'s forwarded packets (both directions)', refusedValues: ['fast'] },
  { path: 'action.nftables.priority', status: 'enforced', how: 'overrides the route priority' },
  { path: 'action.nftables.tableName', status: 'enforced', how: 'the table holding the route', refusedValues: ['bad name'] },
  { path: 'action.nftables.useIPSets', status: 'enforced', how: 'named sets (true) or inline sets (false)' },
  { path: 'action.nftables.useAdvancedNAT', status: 'enforced', how: 'false only (conntrack DNAT)', refusedValues: [true] },
  { path: 'action.socketHandler', status: 'refused', how: 'a function per connection is not kernel NAT', refusedValues: [fn] },
  { path: 'action.sendProxyProtocol', status: 'enforced', how: 'false only: the kernel cannot write a PROXY header', refusedValues: [true] },
  { path: 'action.security', status: 'enforced', how: 'older place of security (same fields as the route-level one)' },
];

/** Keys of each object the reader inspects; anything else is refused as unknown. */
export const KEYS = {
  route: ['id', 'match', 'action', 'headers', 'security', 'name', 'description', 'priority', 'tags', 'enabled'],
  match: ['ports', 'domains', 'path', 'clientIp', 'tlsVersion', 'headers'],
  action: ['type', 'targets', 'target', 'tls', 'websocket', 'loadBalancing', 'advanced', 'options', 'forwardingEngine', 'nftables', 'socketHandler', 'sendProxyProtocol', 'security'],
  target: ['match', 'host', 'port', 'tls', 'websocket', 'loadBalancing', 'sendProxyProtocol', 'headers', 'advanced', 'priority'],
  legacyTarget: ['host', 'port'],
  security: ['ipAllowList', 'ipBlockList', 'allowedIps', 'blockedIps', 'maxConnections', 'authentication', 'rateLimit', 'basicAuth', 'jwtAuth'],
  nftables: ['protocol', 'preserveSourceIP', 'maxRate', 'priority', 'tableName', 'useIPSets', 'useAdvancedNAT'],
  tls: ['mode', 'certificate', 'acme', 'versions', 'ciphers', 'honorCipherOrder', 'sessionTimeout'],
  loadBalancing: ['algorithm', 'healthCheck'],
} as const;

/** Fields refused whenever present (not undefined), by object. */
export const REFUSED = {
  route: { headers: 'HTTP header rewriting is not kernel NAT (use forwardingEngine "node")' },
  match: { path: 'HTTP paths cannot be kernel rules (use forwardingEngine "node")', tlsVersion: 'TLS versions cannot be kernel NAT rules', headers: 'HTTP headers cannot be kernel rules' },
  action: {
    websocket: 'WebSocket options are HTTP-level', advanced: 'advanced options are HTTP-level', options: 'proxy options cannot be kernel rules',
    socketHandler: 'a function per connection cannot be kernel rules',
  },
  target: {
    match: 'per-target sub-matching cannot be kernel NAT: give the route its own match, or use forwardingEngine "node"', tls: 'per-target TLS cannot be kernel NAT', websocket: 'WebSocket options are HTTP-level',
    loadBalancing: 'per-target load balancing is not supported (use action.loadBalancing)', headers: 'header rewriting is HTTP-level', advanced: 'advanced options are HTTP-level',
  },
  security: {
    maxConnections: 'connection limits are not implemented by the nftables engine', authentication: 'authentication is HTTP-level', rateLimit: 'request rate limiting is HTTP-level (action.nftables.maxRate limits bandwidth)',
    basicAuth: 'basic auth is HTTP-level', jwtAuth: 'JWT auth is HTTP-level',
  },
} as const;
