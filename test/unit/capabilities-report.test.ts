import { describe, expect, it } from 'vitest';
import { capabilityRows, checkCapability, explain } from '../../src/capabilities/explain.js';
import { splitRuleset } from '../../src/capabilities/nft.js';
import { parseCgroupMounts } from '../../src/capabilities/parse.js';
import { CapabilityEntrySchema, CapabilityReportSchema, NFT_FEATURES, TC_ACTIONS, TC_CLASSIFIERS, TC_QDISCS, type CapabilityReport } from '../../src/capabilities/schema.js';
import { cgroupEntries, privilegesFromStatus } from '../../src/capabilities/system.js';
import { bpffsFromMounts } from '../../src/capabilities/xdp.js';
import { UnsupportedError } from '../../src/errors.js';

const yes = { available: true };
const no = (reason: string) => ({ available: false, reason });

function report(): CapabilityReport {
  const feat = (ok: boolean) => (ok ? { available: true, detail: { json: true, verified: 'commit' as const, probe: 'p' } } : { available: false, reason: 'the kernel lacks it', detail: { json: false, verified: 'commit' as const, probe: 'p' } });
  const rec = <K extends string>(keys: readonly K[], f: (k: K) => unknown) => Object.fromEntries(keys.map((k) => [k, f(k)]));
  return CapabilityReportSchema.parse({
    schemaVersion: 1,
    generatedAt: '2024-01-01T00:00:00.000Z',
    durationMs: 123,
    target: { netns: null, iface: null },
    kernel: { release: '6.1.0-18-amd64', version: { major: 6, minor: 1, patch: 0 }, arch: 'x64' },
    privileges: { ...privilegesFromStatus('CapEff:\t000001ffffffffff\n', 0) },
    probeNamespace: yes,
    nft: { binary: { program: 'nft', path: '/usr/sbin/nft', source: 'path' }, present: { available: true, detail: { version: '1.0.6' } }, version: '1.0.6', json: yes, features: rec(NFT_FEATURES, (k) => feat(k !== 'queue')) },
    tc: {
      present: yes,
      qdiscs: rec(TC_QDISCS, (k) => (k === 'netem' ? no('Error: Specified qdisc kind is unknown.') : yes)),
      actions: rec(TC_ACTIONS, (k) => (k === 'police' ? no('Failed to load TC action module') : yes)),
      classifiers: rec(TC_CLASSIFIERS, () => yes),
      ifb: yes,
    },
    xdp: {
      bpffs: yes, bpfSyscall: yes, generic: { available: true, detail: { iface: 'x0', throwaway: true, mode: 2 } }, native: no('xdpdrv attach failed'),
      mapHash: yes, mapLpmTrie: yes, mapPercpuArray: yes, mapBatch: yes, bpftool: yes, ipLibbpf: yes, clang: no('clang not usable: not found'),
    },
    cgroup: { v2: { available: true, detail: { layout: 'unified', mountPoint: '/sys/fs/cgroup', mountPoints: ['/sys/fs/cgroup'], nftPathPrefix: '' } }, socketMatch: yes, netCls: no('not mounted') },
    iptables: { nft: yes, nfqueue: yes, connbytes: yes },
  });
}

describe('capability report schema', () => {
  it('refuses an unavailable entry without a reason', () => {
    expect(CapabilityEntrySchema.safeParse({ available: false }).success).toBe(false);
    expect(CapabilityEntrySchema.safeParse({ available: false, reason: '' }).success).toBe(false);
    expect(CapabilityEntrySchema.safeParse({ available: false, reason: 'no module' }).success).toBe(true);
    expect(CapabilityEntrySchema.safeParse({ available: true }).success).toBe(true);
  });

  it('refuses a whole report with one silent false entry', () => {
    const r = report() as unknown as { tc: { qdiscs: { htb: unknown } } };
    r.tc.qdiscs.htb = { available: false };
    const res = CapabilityReportSchema.safeParse(r);
    expect(res.success).toBe(false);
    expect(res.error?.issues[0]?.path.join('.')).toBe('tc.qdiscs.htb.reason');
  });
});

describe('rows, lookup, explain', () => {
  it('flattens every entry with a dotted key', () => {
    const rows = capabilityRows(report());
    const keys = rows.map((r) => r.key);
    expect(keys).toContain('nft.features.queue');
    expect(keys).toContain('tc.actions.police');
    expect(keys).toContain('xdp.generic');
    expect(keys).toContain('cgroup.v2');
    expect(keys).toContain('probeNamespace');
    expect(keys).not.toContain('privileges.capEff');
    expect(rows.length).toBe(5 + 1 + 2 + NFT_FEATURES.length + 1 + TC_QDISCS.length + TC_ACTIONS.length + TC_CLASSIFIERS.length + 1 + 11 + 3 + 3);
    for (const r of rows) if (!r.available) expect(r.reason).toBeTruthy();
  });

  it('checkCapability returns the entry or an UnsupportedError with the reason', () => {
    const r = report();
    expect(checkCapability(r, 'tc.qdiscs.htb').ok).toBe(true);
    const police = checkCapability(r, 'tc.actions.police');
    expect(police.err).toBe(true);
    expect(police.val).toBeInstanceOf(UnsupportedError);
    expect((police.val as UnsupportedError).capability).toBe('tc.actions.police');
    expect((police.val as UnsupportedError).message).toContain('Failed to load TC action module');
    expect(checkCapability(r, 'no.such.thing').err).toBe(true);
  });

  it('explain renders one line per capability with yes/NO and the reason', () => {
    const text = explain(report());
    expect(text).toMatch(/kernel 6\.1\.0-18-amd64/);
    expect(text).toMatch(/nft 1\.0\.6 \(\/usr\/sbin\/nft\)/);
    expect(text).toMatch(/nft\.features\.queue\s+NO\s+the kernel lacks it/);
    expect(text).toMatch(/tc\.qdiscs\.htb\s+yes/);
    expect(text).toMatch(/tc\.qdiscs\.netem\s+NO\s+Error: Specified qdisc kind is unknown\./);
    expect(text).toMatch(/xdp\.generic\s+yes\s+on x0, \(throwaway veth\)/);
    expect(text).toMatch(/cgroup\.v2\s+yes\s+\/sys\/fs\/cgroup, unified/);
    expect(text).toMatch(/\d+ of \d+ available/);
    const missing = explain(report(), { onlyMissing: true });
    expect(missing).not.toMatch(/tc\.qdiscs\.htb/);
    expect(missing).toMatch(/tc\.actions\.police/);
  });
});

describe('pure helpers', () => {
  it('privileges from CapEff', () => {
    const p = privilegesFromStatus('CapEff:\t0000000000001000\n', 1000);
    expect(p.root.available).toBe(false);
    expect(p.root.reason).toMatch(/uid is 1000/);
    expect(p.netAdmin.available).toBe(true);
    expect(p.bpf.available).toBe(false);
    expect(p.bpf.reason).toMatch(/CAP_BPF/);
    expect(p.capEff).toBe('0000000000001000');
    expect(privilegesFromStatus(undefined, 0).netAdmin.reason).toMatch(/cannot read/);
  });

  it('bpffs from /proc/mounts', () => {
    expect(bpffsFromMounts('bpf /sys/fs/bpf bpf rw,relatime 0 0\n').available).toBe(true);
    const none = bpffsFromMounts('proc /proc proc rw 0 0\n');
    expect(none.available).toBe(false);
    expect(none.reason).toMatch(/mount -t bpf bpf \/sys\/fs\/bpf/);
    expect(bpffsFromMounts('bpf /mnt/bpf bpf rw 0 0\n').reason).toMatch(/mounted at \/mnt\/bpf/);
  });

  it('cgroup entries explain the hybrid nft path prefix and a missing v2', () => {
    const hybrid = parseCgroupMounts('41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n');
    const e = cgroupEntries({ info: hybrid, selfPath: '/', netClsEnabled: true, nftProbePath: 'unified' }, { available: true });
    expect(e.v2.detail?.mountPoint).toBe('/sys/fs/cgroup/unified');
    expect(e.socketMatch.reason).toMatch(/unified\/<path>/);
    expect(e.netCls.available).toBe(false);
    const none = cgroupEntries({ info: parseCgroupMounts(''), selfPath: undefined, netClsEnabled: false, nftProbePath: undefined }, { available: false, reason: 'x' });
    expect(none.v2.available).toBe(false);
    expect(none.socketMatch.reason).toMatch(/not mounted/);
    expect(none.netCls.reason).toMatch(/compiled in or is disabled/);
  });

  it('splits an nft listing into tables', () => {
    const text = 'table inet a {\n\tchain c {\n\t\tqueue num 1\n\t}\n}\ntable netdev b {\n\tchain c {\n\t\ttype filter hook ingress device "lo" priority filter; policy accept;\n\t}\n}\n';
    const t = splitRuleset(text);
    expect([...t.keys()]).toEqual(['inet a', 'netdev b']);
    expect(t.get('inet a')).toMatch(/queue num 1/);
    expect(t.get('netdev b')).toMatch(/hook ingress/);
  });
});
