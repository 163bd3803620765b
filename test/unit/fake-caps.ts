/**
 * A capability report for FakeHost tests: everything available (a kernel and
 * userland that have every feature), with `off` entries made unavailable with
 * a reason, primed into the capability cache of a namespace so that no probe
 * runs against the fake.
 */
import { primeCapabilityCache } from '../../src/capabilities/index.js';
import { privilegesFromStatus } from '../../src/capabilities/system.js';
import { CapabilityReportSchema, NFT_FEATURES, TC_ACTIONS, TC_CLASSIFIERS, TC_QDISCS, type CapabilityReport } from '../../src/capabilities/schema.js';

const yes = { available: true };

/** An all-available report; `off` lists dotted keys (e.g. `nft.features.queue`, `xdp.native`) to make unavailable. */
export function fakeCapabilityReport(netns: string | undefined, off: string[] = []): CapabilityReport {
  const rec = <K extends string>(keys: readonly K[], f: (k: K) => unknown) => Object.fromEntries(keys.map((k) => [k, f(k)]));
  const feat = { available: true, detail: { json: true, verified: 'commit' as const, probe: 'fake' } };
  const r = {
    schemaVersion: 1,
    generatedAt: '2026-12-02T00:00:00.000Z',
    durationMs: 0,
    target: { netns: netns ?? null, iface: null },
    kernel: { release: '6.18.0-fake', version: { major: 6, minor: 18, patch: 0 }, arch: 'x64' },
    privileges: privilegesFromStatus('CapEff:\t000001ffffffffff\n', 0),
    probeNamespace: yes,
    nft: { binary: { program: 'nft', path: '/usr/sbin/nft', source: 'path' }, present: { available: true, detail: { version: '1.1.6' } }, version: '1.1.6', json: yes, features: rec(NFT_FEATURES, () => feat) },
    tc: { present: yes, qdiscs: rec(TC_QDISCS, () => yes), actions: rec(TC_ACTIONS, () => yes), classifiers: rec(TC_CLASSIFIERS, () => yes), ifb: yes },
    xdp: {
      bpffs: yes, bpfSyscall: yes, generic: { available: true, detail: { iface: 'x0', throwaway: true, mode: 2 } }, native: { available: true, detail: { iface: 'x0', throwaway: true, mode: 1 } },
      mapHash: yes, mapLpmTrie: yes, mapPercpuArray: yes, mapBatch: yes, bpftool: yes, ipLibbpf: yes, clang: yes,
    },
    cgroup: { v2: { available: true, detail: { layout: 'unified', mountPoint: '/sys/fs/cgroup', mountPoints: ['/sys/fs/cgroup'], nftPathPrefix: '' } }, socketMatch: yes, netCls: yes },
    iptables: { nft: yes, nfqueue: yes, connbytes: yes },
  } as Record<string, unknown>;
  for (const key of off) {
    const path = key.split('.');
    let o = r as Record<string, unknown>;
    for (const p of path.slice(0, -1)) o = o[p] as Record<string, unknown>;
    o[path[path.length - 1]!] = { available: false, reason: `${key} is off in this fake host` };
  }
  return CapabilityReportSchema.parse(r);
}

/** Prime the capability cache of `netns` with {@link fakeCapabilityReport}. */
export function primeFakeCapabilities(netns: string | undefined, off: string[] = []): CapabilityReport {
  const r = fakeCapabilityReport(netns, off);
  primeCapabilityCache(r, { netns });
  return r;
}
