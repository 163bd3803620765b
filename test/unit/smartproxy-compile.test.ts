import { describe, expect, it } from 'vitest';
import { compileRoute, createNfTablesRangeRoute, createNfTablesRoute, NFTablesManager, parseRate, placeRules, routeId, type IRouteConfig } from '../../src/integrations/smartproxy.js';
import type { ListedRule } from '../../src/firewall/kernel.js';
import { parseDocument } from '../../src/nft/index.js';

const D = { tableName: 'sp' };

describe('SmartProxy route compilation', () => {
  it('route ids are stable and derived from name and match only', () => {
    const a = createNfTablesRoute('web', 8080, { host: '198.18.2.2', port: 80 });
    const b = createNfTablesRoute('web', 8080, { host: '198.18.3.3', port: 81 }, { maxRate: '1mbps' });
    const c = createNfTablesRoute('web', 8081, { host: '198.18.2.2', port: 80 });
    expect(routeId(a)).toBe(routeId(b));
    expect(routeId(a)).not.toBe(routeId(c));
    expect(routeId(a)).toMatch(/^r[0-9a-f]{12}$/);
  });

  it('compiles to strict-schema JSON: DNAT (numgen for several hosts), masquerade, sets, rate limit', () => {
    const r = compileRoute(createNfTablesRoute('lb', [80, { from: 8000, to: 8010 }], { host: ['198.18.2.2', '198.18.3.2'], port: 'preserve' }, { protocol: 'all', maxRate: '10mbps', ipAllowList: ['198.18.0.0/15', 'fd00::/8'], ipBlockList: ['198.18.1.9'] }), D);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const cmds = [...r.val.sets.flatMap((s) => s.cmds), ...r.val.rules];
    const doc = parseDocument({ nftables: cmds }, { mode: 'emit' });
    expect(doc.ok ? 'ok' : doc.val.message).toBe('ok');
    const text = JSON.stringify(cmds);
    expect(text).toContain('"numgen":{"mode":"inc","mod":2');
    expect(text).toContain('{"set":["tcp","udp"]}');
    expect(text).toContain('"masquerade":null');
    expect(text).toContain(`"rate":${10_000_000 / 8}`);
    expect(text).not.toContain('"port":'); // preserve: no port rewrite
    expect(r.val.sets.map((s) => s.name)).toEqual([`${r.val.id}_allow`, `${r.val.id}_block`]);
  });

  it('preserveSourceIP drops the masquerade rule; a fixed port rewrites the port', () => {
    const r = compileRoute(createNfTablesRoute('k', 443, { host: '198.18.2.2', port: 8443 }, { preserveSourceIP: true }), D);
    const text = JSON.stringify(r.ok ? r.val.rules : []);
    expect(text).not.toContain('masquerade');
    expect(text).toContain('"port":8443');
  });

  it('refuses functions, host names, mixed families, bad ports and rates, naming the field', () => {
    const bad = (route: IRouteConfig) => {
      const r = compileRoute(route, D);
      return r.err ? r.val.issues.map((i) => `${i.path}: ${i.message}`).join('\n') : 'ok';
    };
    expect(bad({ name: 'f', match: { ports: 80 }, action: { type: 'forward', target: { host: () => 'x', port: 80 } } })).toMatch(/action\.target\.host: a function/);
    expect(bad({ name: 'f', match: { ports: 80 }, action: { type: 'forward', target: { host: '198.18.0.1', port: () => 1 } } })).toMatch(/action\.target\.port: a function/);
    expect(bad(createNfTablesRoute('n', 80, { host: 'example.com', port: 80 }))).toMatch(/not an IP address/);
    expect(bad(createNfTablesRoute('m', 80, { host: ['198.18.0.1', 'fd00::1'], port: 80 }))).toMatch(/one address family/);
    expect(bad(createNfTablesRoute('p', { from: 90, to: 80 }, { host: '198.18.0.1', port: 80 }))).toMatch(/match\.ports/);
    expect(bad(createNfTablesRoute('r', 80, { host: '198.18.0.1', port: 80 }, { maxRate: 'fast' }))).toMatch(/maxRate/);
    expect(bad(createNfTablesRoute('w', 80, { host: '198.18.0.1', port: 80 }, { ipAllowList: ['192.168.*'] }))).toMatch(/ipAllowList\.0/);
    expect(bad({ name: 's', match: { ports: 80 }, action: { type: 'socket-handler', target: { host: '198.18.0.1', port: 80 } } })).toMatch(/action\.type/);
    expect(() => new NFTablesManager({ tableName: 'bad name' })).toThrow(/tableName/);
  });

  it('priority: action.nftables.priority over route.priority; higher-priority rules are inserted before lower ones in every chain', () => {
    const lo = compileRoute({ ...createNfTablesRoute('lo', 8080, { host: '198.18.2.2', port: 80 }), priority: 5 }, D);
    const hi = compileRoute({ ...createNfTablesRoute('hi', 8080, { host: '198.18.3.2', port: 80 }, { priority: 10 }), priority: 1 }, D);
    const dflt = compileRoute(createNfTablesRoute('d', 8080, { host: '198.18.3.2', port: 80 }), D);
    if (!lo.ok || !hi.ok || !dflt.ok) throw new Error('compile failed');
    expect([lo.val.priority, hi.val.priority, dflt.val.priority]).toEqual([5, 10, 0]);
    // the kernel already holds lo's rules (handles 10..), and an unrelated route x of priority 20 first
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
    expect(placed).toHaveLength(hi.val.rules.length);
    for (const c of placed as { insert?: { rule: { chain: string; handle: number } }; add?: unknown }[]) {
      expect(c.insert, JSON.stringify(c)).toBeDefined(); // every chain of hi has a rule of lo to go before
      expect(c.insert?.rule.handle).toBe(loFirst.get(c.insert?.rule.chain as string));
    }
    const doc = parseDocument({ nftables: placed }, { mode: 'emit' });
    expect(doc.ok ? 'ok' : doc.val.message).toBe('ok');
    // lower or equal priority: appended after the others (equal keeps provisioning order)
    expect(placeRules(dflt.val, existing, (id) => prios[id])).toEqual(dflt.val.rules);
    expect(placeRules({ ...hi.val, priority: 5 }, existing, (id) => prios[id])).toEqual(hi.val.rules);
    // the route being replaced in the same transaction is never an anchor
    expect(placeRules(hi.val, existing, (id) => prios[id], lo.val.id)).toEqual(hi.val.rules);
  });

  it('each route claims its packets: accept after its filter rules and forward count, and in postrouting when it keeps the source', () => {
    const kinds = (r: IRouteConfig) => {
      const c = compileRoute(r, D);
      return c.ok ? c.val.rules.map((x) => (x as { add: { rule: { chain: string; comment: string; expr: unknown[] } } }).add.rule).map((x) => `${x.chain}:${x.comment.split(':').pop()}:${JSON.stringify(x.expr.at(-1))}`) : [];
    };
    expect(kinds(createNfTablesRoute('a', 80, { host: '198.18.2.2', port: 80 }, { ipBlockList: ['198.18.9.0/24'] }))).toEqual([
      'sp_filter:block:{"drop":null}', 'sp_filter:claim:{"accept":null}', 'sp_dnat:dnat:{"dnat":{"family":"ip","addr":"198.18.2.2","port":80}}',
      'sp_dnat_out:dnat-local:{"dnat":{"family":"ip","addr":"198.18.2.2","port":80}}', 'sp_snat:masq:{"masquerade":null}', 'sp_forward:count:{"accept":null}',
    ]);
    expect(kinds(createNfTablesRoute('b', 80, { host: '198.18.2.2', port: 80 }, { preserveSourceIP: true }))).toContain('sp_snat:nomasq:{"accept":null}');
  });

  it('refuses, naming the field, options that would otherwise be ignored: useAdvancedNAT, unknown options, non-port match criteria, other security options, disabled routes', () => {
    const bad = (route: IRouteConfig) => {
      const r = compileRoute(route, D);
      return r.err ? r.val.issues.map((i) => `${i.path}: ${i.message}`).join('\n') : 'ok';
    };
    const base = createNfTablesRoute('x', 80, { host: '198.18.0.1', port: 80 });
    expect(bad(createNfTablesRoute('x', 80, { host: '198.18.0.1', port: 80 }, { useAdvancedNAT: true }))).toMatch(/action\.nftables\.useAdvancedNAT: is not supported/);
    expect(bad(createNfTablesRoute('x', 80, { host: '198.18.0.1', port: 80 }, { useAdvancedNAT: false }))).toBe('ok');
    expect(bad({ ...base, action: { ...base.action, nftables: { qos: 1 } as never } })).toMatch(/action\.nftables\.qos: unknown option/);
    expect(bad({ ...base, match: { ports: 80, domains: 'example.com' } })).toMatch(/match\.domains: kernel NAT matches ports only/);
    expect(bad({ ...base, match: { ports: 80, domains: ['*'] } })).toBe('ok');
    expect(bad({ ...base, match: { ports: 80, clientIp: ['198.18.1.2'] } })).toMatch(/match\.clientIp/);
    expect(bad({ ...base, action: { ...base.action, security: { maxConnections: 10 } } })).toMatch(/action\.security\.maxConnections: not implemented/);
    expect(bad({ ...base, enabled: false })).toMatch(/enabled: a disabled route/);
    expect(bad({ ...base, priority: Number.NaN })).toMatch(/priority: must be a finite number/);
  });

  it('helpers build SmartProxy-shaped routes; rates parse as bits per second', () => {
    const r = createNfTablesRangeRoute('games', 27000, 27010, '198.18.2.2', { protocol: 'udp' });
    expect(r.match.ports).toEqual({ from: 27000, to: 27010 });
    expect(r.action).toMatchObject({ type: 'forward', forwardingEngine: 'nftables', target: { host: '198.18.2.2', port: 'preserve' }, nftables: { protocol: 'udp' } });
    expect(parseRate('8kbps')).toBe(1000);
    expect(parseRate('1gbps')).toBe(125_000_000);
  });
});
