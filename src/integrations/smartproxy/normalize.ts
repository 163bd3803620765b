/**
 * Reads a route in either shape (SmartProxy 21.x `action.targets`, the plan's
 * `action.target`; security at route or action level, under either name) into
 * one validated form (pure). Every key is either understood or refused naming
 * its path: nothing is ignored (see `fields.ts`).
 * @module
 */
import { createHash } from 'node:crypto';
import { isIpAddress } from '../../net/ip.js';
import { ValidationError, type ValidationIssue } from '../../errors.js';
import { Err, Ok, type Result } from '../../result.js';
import { NftName } from '../../validate.js';
import { KEYS, REFUSED } from './fields.js';
import { compileIpList, type CompiledIpList } from './ip-patterns.js';
import type { IPortRange, IRouteConfig } from './types.js';

/** A route as the compiler needs it. */
export interface NormalizedRoute {
  id: string;
  name: string | undefined;
  /** `route <name or id>`, the prefix of every message about it. */
  where: string;
  enabled: boolean;
  priority: number;
  table: string;
  ports: (number | IPortRange)[];
  protocols: ('tcp' | 'udp')[];
  /** Addresses and host names of the chosen target (names are resolved before compiling). */
  hosts: string[];
  /** Path of the chosen target's host field, for messages. */
  hostField: string;
  port: number | 'preserve';
  targetIndex: number;
  lb: 'round-robin' | 'ip-hash';
  preserveSourceIP: boolean;
  /** Bytes per second. */
  maxRate: number | undefined;
  useIPSets: boolean;
  allow: { field: string; list: CompiledIpList }[];
  block: { field: string; list: CompiledIpList }[];
  clientIp: CompiledIpList | undefined;
}

/** How the reader treats `action.forwardingEngine`. */
export interface NormalizeOptions {
  tableName: string;
  /** `'strict'` (SmartProxy's manager): only `'nftables'` routes are ours, others are skipped. `'lenient'` (netfence's Result API): absent means nftables, anything else is refused. */
  engine: 'strict' | 'lenient';
  /** Default of `preserveSourceIP` (SmartProxy's `settings.preserveSourceIP`). */
  preserveSourceIP?: boolean;
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
const RATE = /^(\d+(?:\.\d+)?)\s*(bps|kbps|mbps|gbps)$/i;

/** JSON text of any value, never throwing: for messages and hashing only. */
export function safeJson(v: unknown): string {
  try {
    return String(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : typeof x === 'function' ? '[function]' : x)));
  } catch {
    return `[${typeof v}]`;
  }
}

/** A stable route id derived from the route's name (or id) and match, never from time. */
export function routeId(route: Pick<IRouteConfig, 'name' | 'match' | 'id'>): string {
  const r = (route ?? {}) as Partial<IRouteConfig>;
  const basis = safeJson({ name: r.name ?? r.id ?? '', ports: r.match?.ports ?? null, domains: r.match?.domains ?? null });
  return `r${createHash('sha256').update(basis).digest('hex').slice(0, 12)}`;
}

/** Bytes per second of a rate like `'10mbps'` (NaN when malformed). */
export function parseRate(rate: string): number {
  const m = RATE.exec(String(rate).trim());
  if (!m) return NaN;
  const mult = { bps: 1, kbps: 1e3, mbps: 1e6, gbps: 1e9 }[(m[2] as string).toLowerCase() as 'bps'];
  return Math.max(1, Math.round((Number(m[1]) * mult) / 8));
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isAnyDomain = (d: unknown) => d === undefined || d === '*' || (Array.isArray(d) && d.length > 0 && d.every((v) => v === '*'));
const present = (o: Record<string, unknown>, k: string) => Object.prototype.hasOwnProperty.call(o, k) && o[k] !== undefined;

/** Whether a route is this manager's under `engine`. */
export function isNftRoute(route: unknown, engine: 'strict' | 'lenient'): boolean {
  const a = isObj(route) && isObj(route.action) ? route.action : undefined;
  if (engine === 'strict') return a?.forwardingEngine === 'nftables';
  return true;
}

/**
 * Read and validate a route. `skip` when the route is not this manager's
 * (strict engine and `forwardingEngine !== 'nftables'`).
 */
export function normalizeRoute(route: unknown, o: NormalizeOptions): Result<NormalizedRoute | 'skip', ValidationError> {
  if (!isObj(route)) return Err(new ValidationError('route', [{ path: 'route', message: 'must be a route object' }]));
  for (const k of ['match', 'action'] as const) {
    if (!isObj(route[k])) return Err(new ValidationError('route', [{ path: `route.${k}`, message: 'must be an object' }]));
  }
  // name and id are free text for people, but never control characters, quotes, backslash, `;`, `$` or backticks
  for (const k of ['name', 'id'] as const) {
    const v = route[k];
    if (v !== undefined && (typeof v !== 'string' || v.length > 200 || /[\x00-\x1f\x7f"'`;$\\]/.test(v)))
      return Err(new ValidationError('route', [{ path: `route.${k}`, message: 'must be a string of at most 200 characters without control characters, quotes, backslash, ; $ or backticks' }]));
  }
  const match = route.match as Record<string, unknown>;
  const action = route.action as Record<string, unknown>;
  if (o.engine === 'strict' && action.forwardingEngine !== 'nftables') return Ok('skip');
  const rid = routeId(route as unknown as IRouteConfig);
  const name = route.name as string | undefined;
  const where = `route ${name ?? rid}`;
  const issues: ValidationIssue[] = [];
  const bad = (f: string, m: string) => issues.push({ path: `${where}.${f}`, message: m });

  const keysOf = (obj: Record<string, unknown>, path: string, known: readonly string[], refused: Record<string, string> = {}) => {
    for (const k of Object.keys(obj)) {
      if (!present(obj, k)) continue;
      const p = path ? `${path}.${k}` : k;
      if (k in refused) bad(p, `${refused[k]}: refused by the nftables engine`);
      else if (!known.includes(k)) bad(p, `unknown field (SmartProxy 21.x defines: ${known.join(', ')})`);
    }
  };
  keysOf(route, '', KEYS.route, REFUSED.route);
  keysOf(match, 'match', KEYS.match, REFUSED.match);
  keysOf(action, 'action', KEYS.action, REFUSED.action);

  if (action.forwardingEngine !== undefined && action.forwardingEngine !== 'nftables') bad('action.forwardingEngine', "must be 'nftables' for this manager");
  if (action.type !== 'forward') bad('action.type', `only 'forward' routes can run on the nftables engine (got ${safeJson(action.type)})`);
  if (route.enabled !== undefined && typeof route.enabled !== 'boolean') bad('enabled', 'must be a boolean');
  if (route.description !== undefined && typeof route.description !== 'string') bad('description', 'must be a string');
  if (route.tags !== undefined && !(Array.isArray(route.tags) && route.tags.every((t) => typeof t === 'string'))) bad('tags', 'must be an array of strings');
  if (action.sendProxyProtocol === true) bad('action.sendProxyProtocol', 'the kernel cannot write a PROXY protocol header: refused by the nftables engine');
  else if (action.sendProxyProtocol !== undefined && action.sendProxyProtocol !== false) bad('action.sendProxyProtocol', 'must be a boolean');

  // --- nftables options
  const nopt = action.nftables === undefined ? {} : action.nftables;
  if (!isObj(nopt)) bad('action.nftables', 'must be an object');
  const n = isObj(nopt) ? nopt : {};
  for (const k of Object.keys(n)) if (present(n, k) && !(KEYS.nftables as readonly string[]).includes(k)) bad(`action.nftables.${k}`, `unknown option (known: ${KEYS.nftables.join(', ')})`);
  const table = n.tableName ?? o.tableName;
  if (typeof table !== 'string' || !NftName.safeParse(table).success) bad('action.nftables.tableName', 'invalid table name');
  if (n.useAdvancedNAT !== undefined && typeof n.useAdvancedNAT !== 'boolean') bad('action.nftables.useAdvancedNAT', 'must be a boolean');
  if (n.useAdvancedNAT === true) bad('action.nftables.useAdvancedNAT', 'is not supported: SmartProxy gives it no kernel behaviour netfence could reproduce; netfence always uses conntrack-based DNAT (remove the option or set it to false)');
  for (const k of ['preserveSourceIP', 'useIPSets'] as const) if (n[k] !== undefined && typeof n[k] !== 'boolean') bad(`action.nftables.${k}`, 'must be a boolean');
  const prio = n.priority ?? route.priority ?? 0;
  if (typeof prio !== 'number' || !Number.isFinite(prio)) bad(n.priority !== undefined ? 'action.nftables.priority' : 'priority', 'must be a finite number');
  const proto = n.protocol ?? 'tcp';
  if (!['tcp', 'udp', 'all'].includes(proto as string)) bad('action.nftables.protocol', "must be 'tcp', 'udp' or 'all'");
  let maxRate: number | undefined;
  if (n.maxRate !== undefined) {
    maxRate = typeof n.maxRate === 'string' ? parseRate(n.maxRate) : NaN;
    if (!Number.isFinite(maxRate)) bad('action.nftables.maxRate', "must be like '10mbps', '500kbps', '1gbps'");
  }

  // --- match
  for (const k of Object.keys(match)) if (k === 'domains' && present(match, k) && !isAnyDomain(match.domains)) bad('match.domains', "kernel NAT matches ports only: a domain other than '*' cannot be kernel rules (use forwardingEngine \"node\" for it)");
  const ports = readPorts(match.ports);
  if (typeof ports === 'string') bad('match.ports', ports);
  let clientIp: CompiledIpList | undefined;
  if (present(match, 'clientIp')) {
    if (!Array.isArray(match.clientIp)) bad('match.clientIp', 'must be an array');
    else clientIp = compileIpList(match.clientIp, (i, m) => bad(`match.clientIp.${i}`, m));
  }

  // --- security, both levels and both names
  const allow: NormalizedRoute['allow'] = [];
  const block: NormalizedRoute['block'] = [];
  for (const [sec, base] of [[route.security, 'security'], [action.security, 'action.security']] as const) {
    if (sec === undefined) continue;
    if (!isObj(sec)) {
      bad(base, 'must be an object');
      continue;
    }
    keysOf(sec, base, KEYS.security, REFUSED.security);
    for (const [k, kind] of [['ipAllowList', 'allow'], ['allowedIps', 'allow'], ['ipBlockList', 'block'], ['blockedIps', 'block']] as const) {
      if (!present(sec, k)) continue;
      const l = sec[k];
      if (!Array.isArray(l)) {
        bad(`${base}.${k}`, 'must be an array');
        continue;
      }
      if (l.length === 0) continue; // SmartProxy: an empty list restricts nothing
      const list = compileIpList(l, (i, m) => bad(`${base}.${k}.${i}`, m));
      (kind === 'allow' ? allow : block).push({ field: `${base}.${k}`, list });
    }
  }

  // --- TLS and load balancing
  if (present(action, 'tls')) {
    const t = action.tls;
    if (!isObj(t)) bad('action.tls', 'must be an object');
    else {
      keysOf(t, 'action.tls', KEYS.tls);
      if (t.mode !== 'passthrough') bad('action.tls.mode', `${safeJson(t.mode)} cannot run in the kernel: only 'passthrough' (bytes forwarded untouched); TLS termination needs forwardingEngine "node"`);
      if (t.mode === 'passthrough') for (const k of Object.keys(t)) if (k !== 'mode' && present(t, k) && (KEYS.tls as readonly string[]).includes(k)) bad(`action.tls.${k}`, 'has no effect with passthrough in the kernel: refused rather than ignored');
    }
  }
  let lb: NormalizedRoute['lb'] = 'round-robin';
  if (present(action, 'loadBalancing')) {
    const l = action.loadBalancing;
    if (!isObj(l)) bad('action.loadBalancing', 'must be an object');
    else {
      keysOf(l, 'action.loadBalancing', KEYS.loadBalancing, { healthCheck: 'the kernel does not probe targets' });
      if (l.algorithm === 'ip-hash') lb = 'ip-hash';
      else if (l.algorithm !== undefined && l.algorithm !== 'round-robin') bad('action.loadBalancing.algorithm', `${safeJson(l.algorithm)} cannot be kernel rules: 'round-robin' or 'ip-hash'`);
    }
  }

  // --- targets (21.x) or target (the plan)
  const t = readTarget(action, bad);

  if (issues.length) return Err(new ValidationError(where, issues));
  const protocols: ('tcp' | 'udp')[] = proto === 'all' ? ['tcp', 'udp'] : [proto as 'tcp' | 'udp'];
  return Ok({
    id: rid,
    name,
    where,
    enabled: route.enabled !== false,
    priority: prio as number,
    table: table as string,
    ports: ports as (number | IPortRange)[],
    protocols,
    hosts: t!.hosts,
    hostField: t!.field,
    port: t!.port,
    targetIndex: t!.index,
    lb,
    preserveSourceIP: (n.preserveSourceIP as boolean | undefined) ?? o.preserveSourceIP ?? false,
    maxRate,
    useIPSets: n.useIPSets !== false,
    allow,
    block,
    clientIp,
  });
}

function readPorts(p: unknown): (number | IPortRange)[] | string {
  const one = (v: unknown): number | IPortRange | string => {
    const ok = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 65535;
    if (ok(v)) return v as number;
    if (isObj(v) && Object.keys(v).every((k) => k === 'from' || k === 'to') && ok(v.from) && ok(v.to)) {
      if ((v.from as number) > (v.to as number)) return 'a range needs from <= to';
      return { from: v.from as number, to: v.to as number };
    }
    return 'must be a port (1-65535), a {from,to} range, or an array of them';
  };
  const list = Array.isArray(p) ? p : [p];
  if (list.length === 0) return 'needs at least one port';
  const out: (number | IPortRange)[] = [];
  for (const v of list) {
    const r = one(v);
    if (typeof r === 'string') return r;
    out.push(r);
  }
  return out;
}

function readTarget(action: Record<string, unknown>, bad: (f: string, m: string) => void): { hosts: string[]; port: number | 'preserve'; index: number; field: string } | undefined {
  const hasTargets = present(action, 'targets');
  const hasTarget = present(action, 'target');
  if (hasTargets && hasTarget) {
    bad('action.target', 'give action.targets (SmartProxy 21.x) or action.target (the plan), not both');
    return undefined;
  }
  if (!hasTargets && !hasTarget) {
    bad('action.targets', 'is required');
    return undefined;
  }
  let chosen: { t: Record<string, unknown>; path: string; index: number } | undefined;
  if (hasTarget) {
    if (!isObj(action.target)) bad('action.target', 'must be an object');
    else {
      for (const k of Object.keys(action.target)) if (present(action.target, k) && !KEYS.legacyTarget.includes(k as 'host')) bad(`action.target.${k}`, 'unknown field (the plan\'s target has host and port; use action.targets for more)');
      chosen = { t: action.target, path: 'action.target', index: 0 };
    }
  } else {
    const ts = action.targets;
    if (!Array.isArray(ts) || ts.length === 0) {
      bad('action.targets', 'must be a non-empty array of targets');
      return undefined;
    }
    let best = -1;
    let bestPrio = -Infinity;
    ts.forEach((t, i) => {
      const path = `action.targets.${i}`;
      if (!isObj(t)) return bad(path, 'must be an object');
      for (const k of Object.keys(t)) {
        if (!present(t, k)) continue;
        if (k in REFUSED.target) bad(`${path}.${k}`, `${REFUSED.target[k as keyof typeof REFUSED.target]}: refused by the nftables engine`);
        else if (!(KEYS.target as readonly string[]).includes(k)) bad(`${path}.${k}`, `unknown field (SmartProxy 21.x defines: ${KEYS.target.join(', ')})`);
      }
      if (t.sendProxyProtocol === true) bad(`${path}.sendProxyProtocol`, 'the kernel cannot write a PROXY protocol header: refused by the nftables engine');
      const p = t.priority ?? 0;
      if (typeof p !== 'number' || !Number.isFinite(p)) return bad(`${path}.priority`, 'must be a finite number');
      // SmartProxy: targets sorted by priority (highest first), the first without a match wins
      if (p > bestPrio) {
        bestPrio = p;
        best = i;
      }
      // every target must be usable, even one SmartProxy would not pick now
      readHostPort(t, path, bad);
    });
    if (best >= 0) chosen = { t: ts[best] as Record<string, unknown>, path: `action.targets.${best}`, index: best };
  }
  if (!chosen) return undefined;
  const hp = hasTarget ? readHostPort(chosen.t, chosen.path, bad) : readHostPort(chosen.t, chosen.path, () => undefined);
  return hp ? { ...hp, index: chosen.index, field: `${chosen.path}.host` } : undefined;
}

function readHostPort(t: Record<string, unknown>, path: string, bad: (f: string, m: string) => void): { hosts: string[]; port: number | 'preserve' } | undefined {
  let ok = true;
  const h = t.host;
  let hosts: string[] = [];
  if (typeof h === 'function') {
    bad(`${path}.host`, 'a function cannot be compiled to kernel rules: give addresses or host names, or use forwardingEngine "node" for dynamic targets');
    ok = false;
  } else if (typeof h === 'string' || Array.isArray(h)) {
    const list = typeof h === 'string' ? [h] : h;
    if (list.length === 0) {
      bad(`${path}.host`, 'needs at least one address or host name');
      ok = false;
    }
    list.forEach((v, i) => {
      const at = typeof h === 'string' ? `${path}.host` : `${path}.host.${i}`;
      if (typeof v !== 'string' || !(isIpAddress(v) || HOSTNAME.test(v))) {
        bad(at, `${safeJson(typeof v === 'string' ? v.slice(0, 60) : typeof v)} is not an IP address or host name`);
        ok = false;
      }
    });
    hosts = [...new Set(list as string[])];
  } else {
    bad(`${path}.host`, 'is required (an address, a host name, or an array of them)');
    ok = false;
  }
  const port = t.port;
  if (typeof port === 'function') {
    bad(`${path}.port`, 'a function cannot be compiled to kernel rules: give a number or "preserve", or use forwardingEngine "node"');
    ok = false;
  } else if (port !== 'preserve' && !(typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535)) {
    bad(`${path}.port`, "must be a port number (1-65535) or 'preserve'");
    ok = false;
  }
  return ok ? { hosts, port: port as number | 'preserve' } : undefined;
}
