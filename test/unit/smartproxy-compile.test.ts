import { describe, expect, it } from 'vitest';
import { compileRoute, createNfTablesRangeRoute, createNfTablesRoute, NFTablesManager, parseRate, routeId, type IRouteConfig } from '../../src/integrations/smartproxy.js';
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

  it('helpers build SmartProxy-shaped routes; rates parse as bits per second', () => {
    const r = createNfTablesRangeRoute('games', 27000, 27010, '198.18.2.2', { protocol: 'udp' });
    expect(r.match.ports).toEqual({ from: 27000, to: 27010 });
    expect(r.action).toMatchObject({ type: 'forward', forwardingEngine: 'nftables', target: { host: '198.18.2.2', port: 'preserve' }, nftables: { protocol: 'udp' } });
    expect(parseRate('8kbps')).toBe(1000);
    expect(parseRate('1gbps')).toBe(125_000_000);
  });
});
