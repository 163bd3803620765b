/**
 * Regressions for the bugs the hostile-input suite found (one test each), so
 * they stay fixed independently of the generators' seeds.
 */
import { describe, expect, it } from 'vitest';
import { NetfenceError, ValidationError } from '../../src/errors.js';
import { Firewall } from '../../src/firewall/firewall.js';
import { NetfenceRouteManager as NFTablesManager } from '../../src/integrations/smartproxy.js';
import { nestedPrefixIssues, parseEntries } from '../../src/xdp/entries.js';
import { LimitSchema } from '../../src/throttle/types.js';
import { fromZodIssues } from '../../src/errors.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { DpiBlocker } from '../../src/dpi/dpi-blocker.js';
import { scanPlan } from '../lab/injection-corpus.js';

const route = (security: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name: 'x',
  match: { ports: 80 },
  action: { type: 'forward', target: { host: '198.18.0.9', port: 80 }, security },
  ...extra,
});

function elems(c: ReturnType<NFTablesManager['compile']>): unknown[] {
  if (c.err) throw c.val;
  return c.val.sets.map((s) => (s.cmds[2] as { add?: { element?: { elem: unknown[] } } })?.add?.element?.elem);
}

describe('hostile-input regressions', () => {
  it('unknown keys are named as the bad field (zod reports them at the parent)', () => {
    const r = LimitSchema.safeParse({ iface: 'eth0', direction: 'egress', rate: '1mbit', evil: 1, '': 2 });
    expect(r.success).toBe(false);
    const e = fromZodIssues('limit', r.error!.issues);
    expect(e.issues.map((i) => i.path).sort()).toEqual(['""', 'evil']);
  });

  it('Firewall: non-string chain/set/map names are typed errors, not TypeErrors', () => {
    const fw = new Firewall({ table: 't' });
    fw.chain(Object.create(null) as string, {});
    fw.chain(Symbol('x') as unknown as string, {});
    fw.set(42 as unknown as string, { type: 'ipv4_addr' });
    fw.map(null as unknown as string, { type: 'inet_service', map: 'verdict' });
    fw.rule(Object.create(null) as string, { id: 'r' });
    const p = fw.compile();
    expect(p.err && p.val instanceof ValidationError).toBe(true);
  });

  it('Firewall: a number in a verdict map is refused (it compiled to a goto without a target)', () => {
    const fw = new Firewall({ table: 't' }).chain('c', { type: 'filter', hook: 'input' }).map('m', { type: 'inet_service', map: 'verdict', elements: [[22, 7 as unknown as 'accept']] });
    const p = fw.compile();
    expect(p.err && p.val.issues.some((i) => i.path === 'map m.elements.0.1')).toBe(true);
  });

  it('Firewall: overlapping elements of an interval set are refused (nft: conflicting intervals)', () => {
    const fw = new Firewall({ table: 't' }).set('s', { type: 'ipv4_addr', interval: true, elements: ['198.19.0.0/16', '198.19.5.4'] });
    const p = fw.compile();
    expect(p.err && p.val.issues.map((i) => i.path)).toEqual(['set s.elements.1']);
    const ok = new Firewall({ table: 't' }).set('s', { type: 'ipv4_addr', interval: true, elements: ['198.19.0.0/16', '198.18.5.4', 'fd00::/8'.replace('fd00::/8', '198.18.0.0/24')] }).compile();
    expect(ok.ok).toBe(true);
    const ports = new Firewall({ table: 't' }).set('p', { type: 'inet_service', interval: true, elements: ['1000-2000', 1500] }).compile();
    expect(ports.err).toBe(true);
  });

  it('Firewall: an undeclared @set in etherSaddr is refused; device, owner, meta values and icmp types are validated', () => {
    const fw = new Firewall({ table: 't' }).chain('c', { type: 'filter', hook: 'input' }).rule('c', { id: 'r', etherSaddr: '@nope' });
    expect(fw.compile().err).toBe(true);
    const nd = new Firewall({ table: 'n', family: 'netdev' }).chain('i', { type: 'filter', hook: 'ingress', device: 'eth0\n', priority: 0 });
    expect(nd.compile().err).toBe(true);
    expect(() => new Firewall({ table: 't', owner: 'a"b' })).toThrow(ValidationError);
    expect(() => new Firewall({ table: 't', owner: 'a/../b' })).toThrow(ValidationError);
    const meta = new Firewall({ table: 't' }).chain('c', { type: 'filter', hook: 'input' }).rule('c', { id: 'r', meta: [{ key: 'pkttype', value: '--help' }] });
    expect(meta.compile().err).toBe(true);
    const icmp = new Firewall({ table: 't' }).chain('c', { type: 'filter', hook: 'input' }).rule('c', { id: 'r', protocol: 'icmp', icmpType: ['-j'] });
    expect(icmp.compile().err).toBe(true);
  });

  it('SmartProxy: BigInt, symbols, null and cyclic values are typed errors, not TypeErrors', () => {
    const m = new NFTablesManager({});
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const r of [null, 7, [], route({}, { match: { ports: 10n } }), route({ ipAllowList: [Symbol('s')] }), route({}, { action: { type: cyclic } }), route({}, { name: 'a\nb' })]) {
      const c = m.compile(r as never);
      expect(c.err && c.val instanceof ValidationError).toBe(true);
    }
    const sym = m.compile({ name: 'x', match: { ports: 80 }, action: { type: 'forward', target: { host: [Symbol('s') as unknown as string, '198.18.0.1'], port: 80 } } });
    expect(sym.err).toBe(true);
    expect(() => new NFTablesManager(null as never)).toThrow(ValidationError);
    expect(() => new NFTablesManager({ owner: 'x;y' })).toThrow(ValidationError);
  });

  it('SmartProxy: allow/block lists with nested entries compile to non-overlapping sets (same membership)', () => {
    const m = new NFTablesManager({});
    expect(elems(m.compile(route({ ipAllowList: ['198.18.5.4', '198.18.0.0/15', '198.19.0.0/16', '198.18.0.0/15'] })))).toEqual([[{ prefix: { addr: '198.18.0.0', len: 15 } }]]);
    expect(elems(m.compile(route({ ipBlockList: ['198.18.1.1', '198.18.1.2'] })))).toEqual([['198.18.1.1', '198.18.1.2']]);
  });

  it('XdpBlocklist: odd entries are reported, not thrown; objectPath is a safe path', () => {
    const r = parseEntries(['198.18.0.1', Object.create(null), Symbol('x'), 1n]);
    expect(r.err && r.val.issues.map((i) => i.path)).toEqual(['1', '2', '3']);
    for (const objectPath of ['--help', '/a/../b', 'x\ny', '/a"b', ' /x'])
      expect(() => new XdpBlocklist({ iface: 'eth0', objectPath })).toThrow(ValidationError);
    expect(() => new XdpBlocklist({ iface: 'eth0', objectPath: '/opt/x.o' })).not.toThrow();
  });

  it('XdpBlocklist nft fallback: nested prefixes are refused naming the entry (nft: conflicting intervals)', () => {
    const p = parseEntries(['198.18.0.0/15', '198.18.7.0/24', '198.18.7.7', 'fd00::/8', 'fd00:1::/64', '198.19.0.0/16']);
    if (p.err) throw p.val;
    expect(nestedPrefixIssues(p.val).map((i) => i.path).sort()).toEqual(['1', '4', '5']); // 198.19.0.0/16 is inside 198.18.0.0/15
    const q = parseEntries(['198.18.0.0/24', '198.18.1.0/24', '198.18.7.7', 'fd00::/16', 'fd01::/16']);
    expect(q.ok && nestedPrefixIssues(q.val)).toEqual([]);
  });

  it('DpiBlocker: classifier module paths are safe paths; steering plans pass the plan scan', () => {
    for (const c of ['/x/../y.js', '/a;b.js', '/a`id`.js', 'file:///a\n.js', '/ü.js']) expect(() => new DpiBlocker({ classifiers: [c] })).toThrow(NetfenceError);
    const d = new DpiBlocker({ classifiers: ['bittorrent', '/opt/c/x.js'] }).compile(true);
    expect(d.ok && scanPlan(d.val.plan)).toEqual([]);
  });
});
