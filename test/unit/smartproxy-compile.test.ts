import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  compileIpList, compileRoute, createCompleteNfTablesHttpsServer, createNfTablesRangeRoute, createNfTablesRoute, createNfTablesTerminateRoute, httpsRedirectHandler, listContains,
  NetfenceRouteManager, NFTablesManager, parseIpPattern, parseRate, placeRules, routeId, SMARTPROXY_FIELDS, type IRouteConfig,
} from '../../src/integrations/smartproxy.js';
import type { ListedRule } from '../../src/firewall/kernel.js';
import { ValidationError } from '../../src/errors.js';
import { parseDocument } from '../../src/nft/index.js';

const D = { tableName: 'sp' };
const T = (host: string | string[], port: number | 'preserve' = 80) => ({ host, port });
/** Each problem as `path: message`, or 'ok'. */
const bad = (route: unknown, resolved: Record<string, string[]> = {}, d: { tableName: string; routeLocalnet?: boolean } = D) => {
  const r = compileRoute(route as IRouteConfig, d, resolved);
  return r.err ? r.val.issues.map((i) => `${i.path}: ${i.message}`).join('\n') : 'ok';
};
const kinds = (route: IRouteConfig, resolved: Record<string, string[]> = {}, d: { tableName: string; routeLocalnet?: boolean } = D) => {
  const c = compileRoute(route, d, resolved);
  if (c.err) throw c.val;
  return c.val.rules.map((x) => (x as { add: { rule: { chain: string; comment: string; expr: unknown[] } } }).add.rule).map((x) => `${x.chain}:${x.comment.split(':').pop()}:${JSON.stringify(x.expr.at(-1))}`);
};
const valid = (cmds: unknown[]) => {
  const doc = parseDocument({ nftables: cmds }, { mode: 'emit' });
  return doc.ok ? 'ok' : doc.val.message;
};

describe('SmartProxy route compilation', () => {
  it('route ids are stable and derived from name and match only', () => {
    const a = createNfTablesRoute('web', T('198.18.2.2'), { ports: 8080 });
    const b = createNfTablesRoute('web', T('198.18.3.3', 81), { ports: 8080, maxRate: '1mbps' });
    const c = createNfTablesRoute('web', T('198.18.2.2'), { ports: 8081 });
    expect(routeId(a)).toBe(routeId(b));
    expect(routeId(a)).not.toBe(routeId(c));
    expect(routeId(a)).toMatch(/^r[0-9a-f]{12}$/);
  });

  it('compiles to strict-schema JSON: DNAT (numgen or jhash for several hosts), masquerade, sets, rate limit with a burst', () => {
    const route = createNfTablesRoute('lb', T(['198.18.2.2', '198.18.3.2'], 'preserve'), { ports: [80, 8000], protocol: 'all', maxRate: '10mbps', ipAllowList: ['198.18.0.0/15', 'fd00::/8'], ipBlockList: ['198.18.1.9'] });
    const r = compileRoute(route, D);
    if (r.err) throw r.val;
    const cmds = [...r.val.sets.flatMap((s) => s.cmds), ...r.val.rules];
    expect(valid(cmds)).toBe('ok');
    const text = JSON.stringify(cmds);
    expect(text).toContain('"numgen":{"mode":"inc","mod":2');
    expect(text).toContain('{"set":["tcp","udp"]}');
    expect(text).toContain('"masquerade":null');
    expect(text).toContain(`"rate":${10_000_000 / 8},"rate_unit":"bytes","per":"second","burst":131072`);
    expect(text).not.toContain('"port":'); // preserve: no port rewrite
    expect(r.val.sets.map((s) => s.name)).toEqual([`${r.val.id}_b4_0`, `${r.val.id}_a4_0`]);
    const hash = compileRoute({ ...route, action: { ...route.action, loadBalancing: { algorithm: 'ip-hash' } } }, D);
    if (hash.err) throw hash.val;
    expect(JSON.stringify(hash.val.rules)).toContain('"jhash":{"mod":2');
    expect(valid(hash.val.rules)).toBe('ok');
  });

  it('preserveSourceIP drops the masquerade rule; a fixed port rewrites the port', () => {
    const r = compileRoute(createNfTablesRoute('k', T('198.18.2.2', 8443), { ports: 443, preserveSourceIP: true }), D);
    const text = JSON.stringify(r.ok ? r.val.rules : []);
    expect(text).not.toContain('masquerade');
    expect(text).toContain('"port":8443');
  });

  it('both route shapes and both security places and names compile to the same rules', () => {
    const plan: IRouteConfig = { name: 'p', match: { ports: 80 }, action: { type: 'forward', forwardingEngine: 'nftables', target: T('198.18.2.2'), security: { allowedIps: ['198.18.1.0/24'], blockedIps: ['198.18.1.9'] } } };
    const v21: IRouteConfig = { name: 'p', match: { ports: [80] }, action: { type: 'forward', forwardingEngine: 'nftables', targets: [T('198.18.2.2')] }, security: { ipAllowList: ['198.18.1.*'], ipBlockList: ['198.18.1.9'] } };
    const a = compileRoute(plan, D);
    const b = compileRoute({ ...v21, match: { ports: 80 } }, D);
    if (a.err || b.err) throw new Error('compile failed');
    expect(JSON.stringify(b.val.rules)).toBe(JSON.stringify(a.val.rules));
    expect(JSON.stringify(b.val.sets)).toBe(JSON.stringify(a.val.sets));
    expect(bad({ ...v21, action: { ...v21.action, target: T('198.18.2.2') } })).toMatch(/action\.target: give action\.targets .* not both/);
  });

  it('several targets: the one SmartProxy picks (highest priority, ties to the earliest) is in force', () => {
    const route = (targets: unknown[]): IRouteConfig => ({ name: 'm', match: { ports: 80 }, action: { type: 'forward', forwardingEngine: 'nftables', targets: targets as never } });
    const pick = (targets: unknown[]) => {
      const c = compileRoute(route(targets), D);
      if (c.err) throw c.val;
      return [c.val.targetIndex, c.val.addresses.ipv4.join(',')];
    };
    expect(pick([T('198.18.2.2'), T('198.18.3.2')])).toEqual([0, '198.18.2.2']);
    expect(pick([T('198.18.2.2'), { ...T('198.18.3.2'), priority: 5 }])).toEqual([1, '198.18.3.2']);
    expect(pick([{ ...T('198.18.2.2'), priority: 5 }, { ...T('198.18.3.2'), priority: 5 }])).toEqual([0, '198.18.2.2']);
    expect(bad(route([T('198.18.2.2'), { ...T('198.18.3.2'), match: { ports: [81] } }]))).toMatch(/action\.targets\.1\.match: per-target sub-matching/);
    expect(bad(route([T('198.18.2.2'), { host: () => 'x', port: 80 }]))).toMatch(/action\.targets\.1\.host: a function/);
    expect(bad(route([]))).toMatch(/action\.targets: must be a non-empty array/);
  });

  it('refuses functions, bad hosts, bad ports and rates, naming the field', () => {
    expect(bad({ name: 'f', match: { ports: 80 }, action: { type: 'forward', target: { host: () => 'x', port: 80 } } })).toMatch(/action\.target\.host: a function/);
    expect(bad({ name: 'f', match: { ports: 80 }, action: { type: 'forward', target: { host: '198.18.0.1', port: () => 1 } } })).toMatch(/action\.target\.port: a function/);
    expect(bad(createNfTablesRoute('n', T('bad_name!'), { ports: 80 }))).toMatch(/action\.targets\.0\.host: "bad_name!" is not an IP address or host name/);
    expect(bad(createNfTablesRoute('p', T('198.18.0.1'), { ports: [{ from: 90, to: 80 }] }))).toMatch(/match\.ports/);
    expect(bad(createNfTablesRoute('r', T('198.18.0.1'), { ports: 80, maxRate: 'fast' }))).toMatch(/maxRate/);
    expect(bad(createNfTablesRoute('w', T('198.18.0.1'), { ports: 80, ipAllowList: ['192.168.1*'] }))).toMatch(/security\.ipAllowList\.0: "192.168.1\*" an IPv4 glob/);
    expect(bad({ name: 's', match: { ports: 80 }, action: { type: 'socket-handler', target: T('198.18.0.1') } })).toMatch(/action\.type/);
    expect(() => new NetfenceRouteManager({ tableName: 'bad name' })).toThrow(/tableName/);
  });

  it('host names: resolved at provision time; compile() needs their addresses; both families are served, each to its own', () => {
    const r = createNfTablesRoute('test-nftables', T('localhost', 4000), { ports: 5000, protocol: 'tcp' });
    expect(bad(r)).toMatch(/host name "localhost" is resolved at provision time/);
    const c = compileRoute(r, D, { localhost: ['::1', '127.0.0.1'] });
    if (c.err) throw c.val;
    expect(c.val.families).toEqual([4, 6]);
    expect(c.val.addresses).toEqual({ ipv4: ['127.0.0.1'], ipv6: ['::1'] });
    expect(valid(c.val.rules)).toBe('ok');
    expect(bad(createNfTablesRoute('mix', T(['localhost', '198.18.2.2']), { ports: 80 }), { localhost: ['127.0.0.1'] })).toMatch(/action\.targets\.0\.host: mixes loopback/);
  });

  it('loopback targets: clients on this host are DNATed; remote clients are rejected unless route_localnet is opted in (never for ::1)', () => {
    const r = createNfTablesRoute('loop', T('127.0.0.1', 4000), { ports: 5000 });
    const off = kinds(r);
    expect(off).toContain('sp_dnat_out:dnat-local:{"dnat":{"family":"ip","addr":"127.0.0.1","port":4000}}');
    expect(off).toContain('sp_dnat:claim-remote:{"accept":null}');
    expect(off).toContain('sp_input:reject-remote:{"reject":{"type":"tcp reset"}}');
    expect(off.some((k) => k.startsWith('sp_dnat:dnat:'))).toBe(false);
    const on = compileRoute(r, { tableName: 'sp', routeLocalnet: true });
    if (on.err) throw on.val;
    expect(on.val.remoteClients).toBe('forwarded');
    expect(on.val.usesRouteLocalnet).toBe(true);
    const v6 = compileRoute(createNfTablesRoute('loop6', T('::1', 4000), { ports: 5000, protocol: 'udp' }), { tableName: 'sp', routeLocalnet: true });
    if (v6.err) throw v6.val;
    expect(v6.val.remoteClients).toBe('rejected');
    expect(JSON.stringify(v6.val.rules)).toContain('"reject":{"type":"icmpx","expr":"port-unreachable"}');
    expect(valid([...on.val.rules, ...v6.val.rules])).toBe('ok');
  });

  it('priority: action.nftables.priority over route.priority; higher-priority rules are inserted before lower ones in every chain', () => {
    const lo = compileRoute({ ...createNfTablesRoute('lo', T('198.18.2.2'), { ports: 8080 }), priority: 5 }, D);
    const hi = compileRoute({ ...createNfTablesRoute('hi', T('198.18.3.2'), { ports: 8080, priority: 10 }), priority: 1 }, D);
    const dflt = compileRoute(createNfTablesRoute('d', T('198.18.3.2'), { ports: 8080 }), D);
    if (!lo.ok || !hi.ok || !dflt.ok) throw new Error('compile failed');
    expect([lo.val.priority, hi.val.priority, dflt.val.priority]).toEqual([5, 10, 0]);
    let h = 1;
    const listed = (id: string, cmds: unknown[]): ListedRule[] =>
      cmds.map((c) => {
        const r = (c as { add: { rule: { chain: string; comment: string } } }).add.rule;
        return { chain: r.chain, handle: h++, comment: r.comment.replace(/^nf:[^:]+:/, `nf:${id}:`), packets: 0, bytes: 0 };
      });
    const existing = [...listed('rx', hi.val.rules), ...listed(lo.val.id, lo.val.rules)];
    const prios: Record<string, number> = { rx: 20, [lo.val.id]: 5 };
    const placed = placeRules(hi.val, existing, (id) => prios[id]);
    const loFirst = new Map<string, number>();
    for (const e of existing) if (e.comment?.startsWith(`nf:${lo.val.id}:`) && !loFirst.has(e.chain)) loFirst.set(e.chain, e.handle);
    for (const c of placed as { insert?: { rule: { chain: string; handle: number } } }[]) {
      expect(c.insert, JSON.stringify(c)).toBeDefined();
      expect(c.insert?.rule.handle).toBe(loFirst.get(c.insert?.rule.chain as string));
    }
    expect(valid(placed)).toBe('ok');
    expect(placeRules(dflt.val, existing, (id) => prios[id])).toEqual(dflt.val.rules);
    expect(placeRules({ ...hi.val, priority: 5 }, existing, (id) => prios[id])).toEqual(hi.val.rules);
    expect(placeRules(hi.val, existing, (id) => prios[id], lo.val.id)).toEqual(hi.val.rules);
  });

  it('each route claims its packets in every chain it filters, and counts what it forwards', () => {
    expect(kinds(createNfTablesRoute('a', T('198.18.2.2'), { ports: 80, ipBlockList: ['198.18.9.0/24'] }))).toEqual([
      'sp_filter:block:{"drop":null}', 'sp_filter:claim:{"accept":null}', 'sp_filter_out:block-local:{"drop":null}', 'sp_filter_out:claim-local:{"accept":null}',
      'sp_dnat:dnat:{"dnat":{"family":"ip","addr":"198.18.2.2","port":80}}', 'sp_dnat_out:dnat-local:{"dnat":{"family":"ip","addr":"198.18.2.2","port":80}}',
      'sp_snat:masq:{"masquerade":null}', 'sp_forward:sent:{"counter":null}', 'sp_forward:count:{"accept":null}',
    ]);
    expect(kinds(createNfTablesRoute('b', T('198.18.2.2'), { ports: 80, preserveSourceIP: true }))).toContain('sp_snat:nomasq:{"accept":null}');
  });

  it('match.clientIp: the route applies to those clients only (prerouting, output and conntrack matches)', () => {
    const r = { ...createNfTablesRoute('c', T('198.18.2.2'), { ports: 80 }), match: { ports: 80, clientIp: ['198.18.1.*'] } };
    const c = compileRoute(r, D);
    if (c.err) throw c.val;
    const text = JSON.stringify(c.val.rules);
    expect(c.val.sets.map((s) => s.name)).toEqual([`${c.val.id}_c4`]);
    expect(text.split(`"@${c.val.id}_c4"`).length - 1).toBe(c.val.rules.length);
    expect(text).toContain('{"ct":{"key":"ip saddr","dir":"original"}}');
    // an IPv6 target with IPv4 clients only: no rules at all
    const none = compileRoute({ ...r, action: { ...r.action, targets: [T('fd00:2::2')] } }, D);
    expect(none.ok && none.val.rules.length).toBe(0);
  });

  it('enabled: false compiles to nothing', () => {
    const c = compileRoute({ ...createNfTablesRoute('off', T('198.18.2.2'), { ports: 80 }), enabled: false }, D);
    expect(c.ok && [c.val.enabled, c.val.rules.length, c.val.sets.length]).toEqual([false, 0, 0]);
  });

  it('useAdvancedNAT: true, other domains and unknown keys are refused; metadata is kept', () => {
    const base = createNfTablesRoute('x', T('198.18.0.1'), { ports: 80 });
    expect(bad(createNfTablesRoute('x', T('198.18.0.1'), { ports: 80, useAdvancedNAT: true }))).toMatch(/action\.nftables\.useAdvancedNAT: is not supported/);
    expect(bad(createNfTablesRoute('x', T('198.18.0.1'), { ports: 80, useAdvancedNAT: false }))).toBe('ok');
    expect(bad({ ...base, action: { ...base.action, nftables: { qos: 1 } as never } })).toMatch(/action\.nftables\.qos: unknown option/);
    expect(bad({ ...base, match: { ports: 80, domains: 'example.com' } })).toMatch(/match\.domains: kernel NAT matches ports only/);
    expect(bad({ ...base, match: { ports: 80, domains: ['*'] } })).toBe('ok');
    expect(bad({ ...base, colour: 'red' })).toMatch(/route x\.colour: unknown field/);
    expect(bad({ ...base, priority: Number.NaN })).toMatch(/priority: must be a finite number/);
    const meta = compileRoute({ ...base, description: 'd', tags: ['t'] }, D);
    const plain = compileRoute(base, D);
    expect(meta.ok && plain.ok && meta.val.digest === plain.val.digest).toBe(true);
  });
});

describe('every IRouteConfig field of SmartProxy 21.x is enforced or refused', () => {
  const base = (): IRouteConfig => ({ name: 'f', match: { ports: 80 }, action: { type: 'forward', forwardingEngine: 'nftables', targets: [T('198.18.2.2')] } });
  /** The route with `value` at `path` (`*` = the first target). */
  const withField = (path: string, value: unknown): IRouteConfig => {
    const r = base() as unknown as Record<string, unknown>;
    if (path === 'action.target') (r.action as Record<string, unknown>).targets = undefined;
    let o = r;
    const parts = path.replace('.*.', '.0.').split('.');
    parts.slice(0, -1).forEach((p) => {
      const next = Array.isArray(o) ? (o as unknown[])[Number(p)] : o[p];
      if (next === undefined || next === null) o[p] = {};
      o = (Array.isArray(o) ? (o as unknown[])[Number(p)] : o[p]) as Record<string, unknown>;
    });
    o[parts.at(-1) as string] = value;
    return r as unknown as IRouteConfig;
  };

  it('the table names every field once, each enforced, metadata or refused', () => {
    const paths = SMARTPROXY_FIELDS.map((f) => f.path);
    expect(new Set(paths).size).toBe(paths.length);
    expect(paths.length).toBeGreaterThanOrEqual(50);
    for (const f of SMARTPROXY_FIELDS) expect(['enforced', 'metadata', 'refused']).toContain(f.status);
  });

  for (const f of SMARTPROXY_FIELDS) {
    for (const v of f.refusedValues ?? []) {
      it(`${f.path} = ${JSON.stringify(v) ?? String(v)} is refused naming the field`, () => {
        const msg = bad(withField(f.path, v));
        expect(msg).not.toBe('ok');
        const path = f.path.replace('.*.', '.0.');
        expect(msg, msg).toContain(`route f.${path}`);
      });
    }
  }

  it('refused fields are refused whatever their value; none is ignored', () => {
    for (const f of SMARTPROXY_FIELDS.filter((x) => x.status === 'refused')) {
      expect(f.refusedValues?.length, f.path).toBeGreaterThan(0);
      for (const v of ['', 0, false, {}, []]) expect(bad(withField(f.path, v)), `${f.path} = ${JSON.stringify(v)}`).not.toBe('ok');
    }
  });
});

describe('IP patterns (SmartProxy glob syntax) compile to prefixes', () => {
  const one = (p: string) => {
    const r = compileIpList([p], (i, m) => {
      throw new Error(m);
    });
    return [...r.v4, ...r.v6].length;
  };
  it('globs, CIDR, ranges, mapped addresses and *', () => {
    const l = compileIpList(['192.168.*', '10.1.*.*', '172.16.0.*', '10.*.0.1', 'fd00:1:*', '198.18.1.1-198.18.1.9', '::ffff:198.18.7.7'], () => undefined);
    for (const [a, inList] of [
      ['192.168.200.3', true], ['192.169.0.1', false], ['10.1.255.255', true], ['172.16.0.9', true], ['172.16.1.9', false], ['10.77.0.1', true], ['10.77.0.2', false],
      ['fd00:1::5', true], ['fd00:2::5', false], ['198.18.1.5', true], ['198.18.1.10', false], ['198.18.7.7', true], ['::ffff:192.168.1.1', true],
    ] as const) expect(listContains(l, a), a).toBe(inList);
    expect(one('10.*.0.1')).toBe(256);
    expect(parseIpPattern('*')).toEqual({ all: true });
    for (const p of ['1*', '192.168.1', '10.**', '1.2.3.4.5', 'fd00::*', 'a-b', '198.18.1.9-198.18.1.1', '300.1.*']) expect(typeof parseIpPattern(p), p).toBe('string');
    expect(compileIpList(['10.*.*.1'], () => undefined).v4.length).toBe(65536);
    expect(typeof parseIpPattern('*.*.*.1')).toBe('string');
  });
  it('nested and overlapping entries merge (nft refuses overlapping intervals); adjacent ones stay apart', () => {
    const c = compileRoute(createNfTablesRoute('x', T('198.18.0.9'), { ports: 80, ipAllowList: ['198.18.5.4', '198.18.0.0/15', '198.19.0.0/16', '198.18.1.1-198.18.9.9', '198.20.0.1', '198.20.0.2'] }), D);
    if (c.err) throw c.val;
    const add = c.val.sets[0]?.cmds[2] as { add: { element: { elem: unknown[] } } };
    expect(add.add.element.elem).toEqual([{ prefix: { addr: '198.18.0.0', len: 15 } }, '198.20.0.1', '198.20.0.2']);
  });
});

describe('helpers with SmartProxy signatures', () => {
  it('createNfTablesRoute(nameOrDomains, target, options) builds a SmartProxy 21.x route; the earlier argument order still works', () => {
    const r = createNfTablesRoute('test-nftables', { host: 'localhost', port: 4000 }, { ports: 5000, protocol: 'tcp', ipAllowList: ['198.18.*'] });
    expect(r).toEqual({ name: 'test-nftables', match: { ports: 5000 }, action: { type: 'forward', targets: [{ host: 'localhost', port: 4000 }], forwardingEngine: 'nftables', nftables: { protocol: 'tcp' } }, security: { ipAllowList: ['198.18.*'] } });
    expect(createNfTablesRoute('example.com', T('198.18.2.2')).name).toBe('nft-example.com');
    expect(createNfTablesRoute(['a.example', 'b.example'], T('198.18.2.2')).match).toEqual({ ports: 80, domains: ['a.example', 'b.example'] });
    expect(createNfTablesRoute('tls', T('198.18.2.2'), { useTls: true }).action.tls).toEqual({ mode: 'passthrough' });
    expect(createNfTablesRoute('old', 8080, T('198.18.2.2'), { maxRate: '1mbps' })).toEqual(createNfTablesRoute('old', T('198.18.2.2'), { ports: 8080, maxRate: '1mbps' }));
    const range = createNfTablesRangeRoute('games', 27000, 27010, '198.18.2.2', { protocol: 'udp' });
    expect(range.match.ports).toEqual([{ from: 27000, to: 27010 }]);
    expect(range.action).toMatchObject({ type: 'forward', forwardingEngine: 'nftables', targets: [{ host: '198.18.2.2', port: 'preserve' }], nftables: { protocol: 'udp' } });
  });

  it('createNfTablesTerminateRoute builds SmartProxy\'s route, which the kernel cannot serve: refused naming action.tls.mode', () => {
    const t = createNfTablesTerminateRoute('secure', T('198.18.2.2', 8080));
    expect(t.match.ports).toBe(443);
    expect(t.action.tls).toEqual({ mode: 'terminate', certificate: 'auto' });
    expect(bad(t)).toMatch(/action\.tls\.mode: "terminate" cannot run in the kernel/);
    const [https, redirect] = createCompleteNfTablesHttpsServer('secure', T('198.18.2.2', 8080), { httpPort: 8000, httpsPort: 8443 });
    expect(https?.match.ports).toBe(8443);
    expect(redirect?.action.type).toBe('socket-handler');
    expect(redirect?.match.ports).toBe(8000);
  });

  it('the redirect handler answers 301 to the same host and path over HTTPS, with hostile input neutralised', async () => {
    const answer = (req: string) =>
      new Promise<string>((resolve) => {
        const s = new PassThrough();
        const socket = { once: (ev: 'data', fn: (b: Buffer) => void) => s.once(ev, fn), end: (d: string) => resolve(d) };
        httpsRedirectHandler(8443)(socket as never);
        s.write(Buffer.from(req));
      });
    expect(await answer('GET /a/b?c=1 HTTP/1.1\r\nHost: web.example:8000\r\n\r\n')).toContain('Location: https://web.example:8443/a/b?c=1\r\n');
    expect(await answer('GET / HTTP/1.1\r\nHost: evil\r\nX: \r\n\r\n')).toContain('Location: https://evil:8443/\r\n');
    expect(await answer('GET /\r\nLocation:x HTTP/1.1\r\nHost: a b\r\n\r\n')).toContain('Location: https://localhost:8443/\r\n');
    expect(parseRate('8kbps')).toBe(1000);
  });
});

describe('NFTablesManager: SmartProxy\'s constructor and contract', () => {
  const logger = () => {
    const lines: string[] = [];
    return { lines, error: (m: string) => lines.push(m), info: (m: string) => lines.push(m) };
  };

  it('takes SmartProxy (settings read live) or its settings; netfence options come second', () => {
    const smartProxy = { settings: { routes: [], preserveSourceIP: true } };
    const m = new NFTablesManager(smartProxy, { tableName: 'sp', netns: 'nflab-x' });
    const c = m.compile(createNfTablesRoute('a', T('198.18.2.2'), { ports: 80 }));
    expect(c.ok && JSON.stringify(c.val.rules)).not.toContain('masquerade');
    expect(() => new NFTablesManager({ tableName: 'sp' } as never)).toThrow(/netfence options go in the second argument/);
    expect(() => new NFTablesManager(smartProxy, { tableName: 'bad name' })).toThrow(ValidationError);
    expect(new NFTablesManager().isRouteProvisioned(createNfTablesRoute('a', T('198.18.2.2')))).toBe(false);
  });

  it('resolves true for routes not on the nftables engine; a refused route resolves false, is logged and emitted with the typed error', async () => {
    const log = logger();
    const m = new NFTablesManager({ preserveSourceIP: false }, { logger: log, netns: 'nflab-never-created' });
    expect(await m.provisionRoute({ name: 'node', match: { ports: 80 }, action: { type: 'forward', targets: [T('198.18.2.2')] } })).toBe(true);
    expect(await m.provisionRoute({ name: 'sock', match: { ports: 80 }, action: { type: 'socket-handler', socketHandler: () => undefined } })).toBe(true);
    // no listener: no throw
    expect(await m.provisionRoute(createNfTablesTerminateRoute('t', T('198.18.2.2')))).toBe(false);
    const errors: unknown[] = [];
    m.on('error', (e: unknown, op: unknown) => errors.push([e, op]));
    const ok = await m.provisionRoute(createNfTablesRoute('adv', T('198.18.2.2'), { useAdvancedNAT: true }));
    expect(ok).toBe(false);
    if (!ok) expect(m.lastError).toBeInstanceOf(ValidationError);
    expect(errors).toHaveLength(1);
    expect((errors[0] as [ValidationError, string])[0]).toBeInstanceOf(ValidationError);
    expect((errors[0] as [ValidationError, string])[1]).toBe('provisionRoute');
    expect(log.lines.join('\n')).toMatch(/provisionRoute route adv failed: .*useAdvancedNAT/s);
    expect(log.lines.join('\n')).toMatch(/provisionRoute route t failed: .*action\.tls\.mode/s);
    expect(await m.deprovisionRoute(createNfTablesRoute('adv', T('198.18.2.2')))).toBe(true);
    expect(m.isRouteProvisioned(createNfTablesRoute('adv', T('198.18.2.2')))).toBe(false);
  });
});
