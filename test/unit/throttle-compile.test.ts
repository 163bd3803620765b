import { describe, expect, it } from 'vitest';
import { UnsupportedError } from '../../src/errors.js';
import { validatePlan } from '../../src/plan/validate-plan.js';
import { backendByName, listBackends, selectBackend } from '../../src/throttle/backends/index.js';
import type { ThrottleCaps } from '../../src/throttle/caps.js';
import { throttleCaps } from './throttle-fixtures.js';
import { findCgroup2Mount, nftCgroupRef } from '../../src/throttle/cgroup.js';
import { compileLimit, compileRemove, compileUpdate, type CompileContext } from '../../src/throttle/compile.js';
import { parseNftCounters, parseTcClassStats } from '../../src/throttle/stats.js';
import { LimitSchema, type LimitRequest } from '../../src/throttle/types.js';
import { markBytecode, u32Filters } from '../../src/throttle/u32.js';

/** The capabilities of the development machine: no tc police. */
const caps: ThrottleCaps = throttleCaps();

function ctx(req: LimitRequest, extra: Partial<CompileContext> = {}) {
  const spec = LimitSchema.parse(req);
  const sel = selectBackend(spec, caps);
  if (sel.err) throw sel.val;
  const c: CompileContext = {
    owner: 'throttle:t',
    netns: 'ns1',
    table: 'netfence_throttle_t_l3',
    id: 3,
    backend: sel.val.backend,
    reason: sel.val.reason,
    site: { iface: 'eth0', direction: spec.direction, ...(sel.val.backend.name === 'ifb-tc' ? { ifb: 'nfbabcdef01' } : {}) },
    siteExists: false,
    mtu: 1500,
    ...extra,
  };
  return { spec, c };
}

const argvs = (plan: { steps: { do: { kind: string; argv?: string[] }[] }[] }) => plan.steps.flatMap((s) => s.do.filter((a) => a.kind === 'exec').map((a) => a.argv!.join(' ')));

describe('backend selection', () => {
  it('lists every backend with availability and reason', () => {
    const rows = listBackends(caps);
    expect(rows.map((r) => r.name)).toEqual(['tc-htb', 'ifb-tc', 'nft-limit', 'tc-police']);
    expect(rows.find((r) => r.name === 'tc-police')).toMatchObject({ available: false, reason: expect.stringContaining('police') });
    expect(rows.find((r) => r.name === 'ifb-tc')!.limitations.join(' ')).toMatch(/per-process/);
  });
  it('picks tc-htb for egress, ifb-tc for ingress, nft-limit for per-process ingress and for quota-only', () => {
    const pick = (r: LimitRequest) => {
      const s = selectBackend(LimitSchema.parse(r), caps);
      return s.ok ? s.val.backend.name : s.val.message;
    };
    expect(pick({ iface: 'eth0', direction: 'egress', rate: '1mbit' })).toBe('tc-htb');
    expect(pick({ iface: 'eth0', direction: 'ingress', rate: '1mbit' })).toBe('ifb-tc');
    expect(pick({ iface: 'eth0', direction: 'ingress', rate: '1mbit', match: { pid: 42 } })).toBe('nft-limit');
    expect(pick({ iface: 'eth0', direction: 'egress', rate: '1mbit', match: { pid: 42 } })).toBe('tc-htb');
    expect(pick({ iface: 'eth0', direction: 'egress', quota: '1MB' })).toBe('nft-limit');
  });
  it('refuses an unavailable or unsuitable named backend with UnsupportedError and the reason', () => {
    const r = selectBackend(LimitSchema.parse({ iface: 'eth0', direction: 'egress', rate: '1mbit', backend: 'tc-police' }), caps);
    expect(r.err && r.val).toBeInstanceOf(UnsupportedError);
    expect(r.err && r.val.message).toMatch(/no tc police/);
    const r2 = selectBackend(LimitSchema.parse({ iface: 'eth0', direction: 'ingress', rate: '1mbit', backend: 'ifb-tc', match: { pid: 1 } }), caps);
    expect(r2.err && r2.val.message).toMatch(/before netfilter/);
    const noCg = { ...caps, nftSocketCgroupv2: { available: false, reason: 'no cgroup2' } };
    const r3 = selectBackend(LimitSchema.parse({ iface: 'eth0', direction: 'egress', rate: '1mbit', match: { pid: 1 } }), noCg);
    expect(r3.err && r3.val.message).toMatch(/no backend can serve/);
  });
});

describe('u32 filters', () => {
  it('whole interface, per address, ports without protocol', () => {
    expect(u32Filters(undefined)).toEqual([{ protocol: 'all', kind: 'u32', keys: ['match', 'u32', '0', '0'] }]);
    expect(u32Filters({ dst: '198.18.0.0/15' })).toEqual([{ protocol: 'ip', kind: 'u32', keys: ['match', 'ip', 'dst', '198.18.0.0/15'] }]);
    expect(u32Filters({ src: 'fd00::1' })).toEqual([{ protocol: 'ipv6', kind: 'u32', keys: ['match', 'ip6', 'src', 'fd00::1/128'] }]);
    const f = u32Filters({ dport: 443 });
    expect(f).toHaveLength(4);
    expect(f[0]).toEqual({ protocol: 'ip', kind: 'u32', keys: ['match', 'ip', 'protocol', '6', '0xff', 'match', 'ip', 'dport', '443', '0xffff'] });
  });
  it('fwmark: classic BPF (u32 match mark is silently ignored without CONFIG_CLS_U32_MARK)', () => {
    expect(markBytecode(0x30000, 0x0fff0000)).toBe('5,32 0 0 4294963220,84 0 0 268369920,21 0 1 196608,6 0 0 4294967295,6 0 0 0');
    expect(u32Filters(undefined, { value: 0x30000, mask: 0x0fff0000 })).toEqual([{ protocol: 'all', kind: 'bpf', keys: ['bytecode', markBytecode(0x30000, 0x0fff0000)] }]);
  });
});

describe('compileLimit', () => {
  it('tc-htb egress per address: root qdisc, class with derived burst, leaf queue, filter; no nft', () => {
    const { spec, c } = ctx({ iface: 'eth0', direction: 'egress', rate: '10mbit', match: { dst: '198.18.1.2' } });
    const { plan, record } = compileLimit(spec, c);
    expect(validatePlan(plan).ok).toBe(true);
    expect(plan.nft).toEqual([]);
    expect(plan.tables).toEqual([]);
    expect(record.kernelRateBps).toBe(Math.round(10e6 * (1514 / 1448)));
    expect(argvs(plan)).toEqual([
      'tc qdisc add dev eth0 root handle 1: htb default 0',
      `tc class add dev eth0 parent 1: classid 1:13 htb rate ${record.kernelRateBps}bit ceil ${record.kernelRateBps}bit burst 132586b cburst 132586b quantum 130698`,
      'tc qdisc add dev eth0 parent 1:13 handle 13: bfifo limit 326744',
      'tc filter add dev eth0 parent 1: protocol ip prio 1024 u32 match ip dst 198.18.1.2/32 flowid 1:13',
    ]);
    expect(plan.decisions[0]).toMatchObject({ chosen: 'tc-htb' });
    // The second limit on the same interface does not re-create the root qdisc.
    const again = compileLimit(spec, { ...c, siteExists: true });
    expect(argvs(again.plan)[0]).toMatch(/^tc class add/);
  });

  it('accounting: packets passes the rate as is', () => {
    const { spec, c } = ctx({ iface: 'eth0', direction: 'egress', rate: '10mbit', accounting: 'packets' });
    expect(compileLimit(spec, c).record.kernelRateBps).toBe(10_000_000);
  });

  it('ifb-tc ingress: IFB device, ingress qdisc, mirred redirect, HTB on the IFB', () => {
    const { spec, c } = ctx({ iface: 'eth0', direction: 'ingress', rate: '50mbit' });
    const a = argvs(compileLimit(spec, c).plan);
    expect(a.slice(0, 5)).toEqual([
      'ip link add nfbabcdef01 txqueuelen 1000 type ifb',
      'ip link set nfbabcdef01 up',
      'tc qdisc add dev nfbabcdef01 root handle 1: htb default 0',
      'tc qdisc add dev eth0 handle ffff: ingress',
      'tc filter add dev eth0 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev nfbabcdef01',
    ]);
    expect(a[5]).toMatch(/^tc class add dev nfbabcdef01 parent 1: classid 1:13 htb/);
  });

  it('nft-limit with quota: own table, named counters, quota object, policer in the body chain', () => {
    const { spec, c } = ctx({ iface: 'eth0', direction: 'egress', rate: '10mbit', backend: 'nft-limit', quota: { bytes: '5MB', action: 'drop' }, match: { dport: 5201, protocol: 'tcp' } });
    const { plan } = compileLimit(spec, c);
    expect(validatePlan(plan).ok).toBe(true);
    expect(plan.steps).toEqual([]);
    expect(plan.tables).toEqual([{ family: 'inet', name: 'netfence_throttle_t_l3' }]);
    const text = JSON.stringify(plan.nft);
    expect(text).toContain('"quota":{"family":"inet","table":"netfence_throttle_t_l3","name":"l3_q","bytes":5000000,"inv":true}');
    expect(text).toContain('"hook":"postrouting"');
    expect(text).toContain(`"limit":{"rate":1250000,"rate_unit":"bytes","per":"second","burst":131072,"burst_unit":"bytes","inv":true}`);
    expect(text).toContain('{"jump":{"target":"l3_b"}}');
    expect(text).toContain('"right":5201');
  });

  it('per-process upload with tc-htb: cgroup created, pid moved, socket rule as nft text, fwmark → u32 mark filter', () => {
    const { spec, c } = ctx(
      { iface: 'eth0', direction: 'egress', rate: '10mbit', match: { pid: 4242 } },
      { cgroup: { mount: '/sys/fs/cgroup/unified', rel: 'netfence/t-1-3', create: { pid: 4242, restoreTo: 'user.slice' } } },
    );
    const { plan, record } = compileLimit(spec, c);
    expect(validatePlan(plan).ok).toBe(true);
    const ids = plan.steps.map((s) => s.id);
    expect(ids.slice(0, 4)).toEqual(['tc:qdisc:eth0:root', 'cgroup:netfence/t-1-3', 'cgroup:netfence/t-1-3:procs', 'nft:socket:l3']);
    const procs = plan.steps[2]!;
    expect(procs.do).toEqual([{ kind: 'write', path: '/sys/fs/cgroup/unified/netfence/t-1-3/cgroup.procs', data: '4242' }]);
    expect(procs.undo[0]).toMatchObject({ path: '/sys/fs/cgroup/unified/user.slice/cgroup.procs', data: '4242' });
    const sock = plan.steps[3]!.do[0] as { input: string };
    expect(sock.input).toBe('add rule inet netfence_throttle_t_l3 l3_s socket cgroupv2 level 2 "unified/netfence/t-1-3" jump l3_b\n');
    expect(JSON.stringify(plan.nft)).toContain('"hook":"output"');
    expect(JSON.stringify(plan.nft)).toContain('"mangle"');
    expect(record.mark).toBe(0x30000);
    expect(argvs(plan).at(-1)).toBe(`tc filter add dev eth0 parent 1: protocol all prio 1024 bpf bytecode ${markBytecode(0x30000, 0x0fff0000)} flowid 1:13`);
  });

  it('per-process download polices in the input hook', () => {
    const { spec, c } = ctx(
      { iface: 'eth0', direction: 'ingress', rate: '10mbit', match: { cgroup: 'system.slice/app.service' } },
      { cgroup: { mount: '/sys/fs/cgroup', rel: 'system.slice/app.service' } },
    );
    const { plan } = compileLimit(spec, c);
    expect(plan.decisions[0]!.chosen).toBe('nft-limit');
    expect(JSON.stringify(plan.nft)).toContain('"hook":"input"');
    expect((plan.steps[0]!.do[0] as { input: string }).input).toContain('socket cgroupv2 level 2 "system.slice/app.service"');
  });

  it('update changes the class in place; remove inverts the steps and the site', () => {
    const { spec, c } = ctx({ iface: 'eth0', direction: 'egress', rate: '10mbit' });
    const { record } = compileLimit(spec, c);
    const up = compileUpdate(record, backendByName('tc-htb'), 'throttle:t', 'ns1', 20e6);
    expect(argvs(up)[0]).toMatch(/^tc class change dev eth0 parent 1: classid 1:13 htb rate 20911602bit/);
    const rm = compileRemove(record, backendByName('tc-htb'), { owner: 'throttle:t', netns: 'ns1', lastOnSite: true });
    expect(validatePlan(rm).ok).toBe(true);
    expect(argvs(rm)).toEqual(['tc filter del dev eth0 parent 1: protocol all prio 1024', 'tc class del dev eth0 classid 1:13', 'tc qdisc del dev eth0 root']);
    const rm2 = compileRemove(record, backendByName('tc-htb'), { owner: 'throttle:t', netns: 'ns1', lastOnSite: false });
    expect(argvs(rm2)).not.toContain('tc qdisc del dev eth0 root');
  });

  it('nft update replaces the policer rule in the body chain only', () => {
    const { spec, c } = ctx({ iface: 'eth0', direction: 'ingress', rate: '10mbit', backend: 'nft-limit' });
    const { record } = compileLimit(spec, c);
    const up = compileUpdate(record, backendByName('nft-limit'), 'throttle:t', 'ns1', 5e6);
    expect(up.steps).toEqual([]);
    expect(up.nft[0]).toEqual({ flush: { chain: { family: 'inet', table: 'netfence_throttle_t_l3', name: 'l3_b' } } });
    expect(validatePlan(up).ok).toBe(true);
  });
});

describe('cgroup helpers and stats parsers', () => {
  it('finds the cgroup2 mount in unified and hybrid layouts', () => {
    expect(findCgroup2Mount('29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n')).toBe('/sys/fs/cgroup');
    expect(findCgroup2Mount('31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n')).toBe('/sys/fs/cgroup/unified');
    expect(findCgroup2Mount('31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n')).toBeUndefined();
    expect(nftCgroupRef('/sys/fs/cgroup/unified', 'netfence/x')).toEqual({ path: 'unified/netfence/x', level: 2 });
    expect(nftCgroupRef('/sys/fs/cgroup', 'netfence/x')).toEqual({ path: 'netfence/x', level: 2 });
    expect(nftCgroupRef('/mnt/cg2', 'a')).toEqual({ path: '../../../mnt/cg2/a', level: 1 });
  });
  it('parses tc class text and nft counters', () => {
    const text = 'class htb 1:10 root prio 0 rate 10Mbit ceil 10Mbit burst 20000b cburst 20000b \n Sent 123 bytes 4 pkt (dropped 5, overlimits 6 requeues 0) \n backlog 789b 2p requeues 0\nclass htb 1:11 root prio 0 rate 1Mbit\n Sent 1 bytes 1 pkt (dropped 0, overlimits 0 requeues 0)\n backlog 0b 0p requeues 0\n';
    expect(parseTcClassStats(text, '1:10')).toEqual({ bytes: 123, packets: 4, drops: 5, overlimits: 6, backlog: 789 });
    expect(parseTcClassStats(text, '1:1')).toBeUndefined();
    const c = parseNftCounters('{"nftables":[{"metainfo":{}},{"counter":{"family":"inet","name":"l1_m","table":"t","handle":1,"packets":3,"bytes":300}}]}');
    expect(c.get('l1_m')).toEqual({ packets: 3, bytes: 300 });
  });
});
