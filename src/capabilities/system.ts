/**
 * Host facts read from /proc (kernel, privileges, cgroup mounts) and the
 * iptables-nft probes (run in a throwaway namespace).
 * @module
 */
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import type { CapabilityEntry, CapabilityReport } from './schema.js';
import { attempt } from './probe-ns.js';
import { CAP, hasCap, parseCapSets, parseCgroupMounts, parseIptablesVersion, parseKernelRelease, parseProcCgroupV2Path, type CgroupInfo } from './parse.js';

const read = (path: string): Promise<string | undefined> => readFile(path, 'utf8').catch(() => undefined);

/** Kernel release and architecture. */
export async function probeKernel(): Promise<CapabilityReport['kernel']> {
  const rel = ((await read('/proc/sys/kernel/osrelease')) ?? release()).trim();
  return { release: rel, version: parseKernelRelease(rel) ?? null, arch: process.arch };
}

/** Privileges from the effective uid and CapEff of /proc/self/status. */
export function privilegesFromStatus(status: string | undefined, euid: number | undefined): CapabilityReport['privileges'] {
  const caps = parseCapSets(status ?? '');
  const capEff = caps.effective.toString(16).padStart(16, '0');
  const cap = (n: number, name: string, why: string): CapabilityEntry =>
    status === undefined
      ? { available: false, reason: 'cannot read /proc/self/status' }
      : hasCap(caps.effective, n)
        ? { available: true }
        : { available: false, reason: `${name} is not in the effective capability set (CapEff ${capEff}); ${why}` };
  return {
    root: euid === 0 ? { available: true } : { available: false, reason: `effective uid is ${euid ?? 'unknown'}, not 0` },
    netAdmin: cap(CAP.NET_ADMIN, 'CAP_NET_ADMIN', 'needed by nft, tc, ip and XDP attach'),
    netRaw: cap(CAP.NET_RAW, 'CAP_NET_RAW', 'needed for raw sockets'),
    sysAdmin: cap(CAP.SYS_ADMIN, 'CAP_SYS_ADMIN', 'needed to create network namespaces, mount bpffs and open BPF objects by id'),
    bpf: cap(CAP.BPF, 'CAP_BPF', 'needed to load BPF programs and maps (or CAP_SYS_ADMIN)'),
    capEff,
  };
}

/** Read privileges of this process. */
export async function probePrivileges(): Promise<CapabilityReport['privileges']> {
  return privilegesFromStatus(await read('/proc/self/status'), process.geteuid?.());
}

/** What the cgroup probe needs to pass on to the nft probe. */
export interface CgroupFacts {
  info: CgroupInfo | undefined;
  selfPath: string | undefined;
  /** /proc/cgroups says net_cls is compiled in and enabled. */
  netClsEnabled: boolean | undefined;
  error?: string;
  /** The path to use in the nft `socket cgroupv2` probe (relative to /sys/fs/cgroup). */
  nftProbePath: string | undefined;
}

/** Compute the nft probe path: the level-1 ancestor of our own cgroup, or the cgroup v2 root itself. */
export function nftProbePath(info: CgroupInfo, selfPath: string | undefined): string | undefined {
  if (info.nftPathPrefix === undefined) return undefined;
  const first = (selfPath ?? '/').split('/').filter(Boolean)[0];
  const rel = `${info.nftPathPrefix}${first ?? ''}`.replace(/\/$/, '');
  return rel || '.';
}

/** Read /proc/self/mountinfo, /proc/self/cgroup and /proc/cgroups. */
export async function readCgroupFacts(): Promise<CgroupFacts> {
  const [mi, self, cgroups] = await Promise.all([read('/proc/self/mountinfo'), read('/proc/self/cgroup'), read('/proc/cgroups')]);
  if (mi === undefined) return { info: undefined, selfPath: undefined, netClsEnabled: undefined, error: 'cannot read /proc/self/mountinfo', nftProbePath: undefined };
  const info = parseCgroupMounts(mi);
  const selfPath = self ? parseProcCgroupV2Path(self) : undefined;
  let netClsEnabled: boolean | undefined;
  const m = cgroups ? /^net_cls\s+\d+\s+\d+\s+(\d+)/m.exec(cgroups) : null;
  if (m) netClsEnabled = m[1] === '1';
  else if (cgroups) netClsEnabled = false;
  return { info, selfPath, netClsEnabled, nftProbePath: nftProbePath(info, selfPath) };
}

/** Turn cgroup facts (plus the nft socket cgroupv2 verdict) into report entries. */
export function cgroupEntries(f: CgroupFacts, socketFeature: CapabilityEntry): CapabilityReport['cgroup'] {
  if (!f.info) {
    const n: CapabilityEntry = { available: false, reason: f.error ?? 'unknown' };
    return { v2: { available: false, reason: f.error ?? 'unknown' }, socketMatch: n, netCls: n };
  }
  const i = f.info;
  const detail = {
    layout: i.layout,
    mountPoints: i.v2MountPoints,
    ...(i.v2MountPoint ? { mountPoint: i.v2MountPoint } : {}),
    ...(i.nftPathPrefix !== undefined ? { nftPathPrefix: i.nftPathPrefix } : {}),
    ...(f.selfPath ? { selfPath: f.selfPath } : {}),
  };
  const v2 = i.v2MountPoint
    ? { available: true, detail }
    : { available: false, reason: `cgroup v2 is not mounted (no cgroup2 filesystem in /proc/self/mountinfo; layout: ${i.layout})`, detail };
  let socketMatch: CapabilityEntry;
  if (!i.v2MountPoint) socketMatch = { available: false, reason: 'cgroup v2 is not mounted' };
  else if (i.nftPathPrefix === undefined) socketMatch = { available: false, reason: `cgroup v2 is mounted at ${i.v2MountPoint}, outside /sys/fs/cgroup where nft resolves \`socket cgroupv2\` paths` };
  else if (!socketFeature.available) socketMatch = { available: false, reason: `nft socket cgroupv2: ${socketFeature.reason ?? 'unavailable'}` };
  else
    socketMatch = {
      available: true,
      ...(i.nftPathPrefix ? { reason: `hybrid layout: write cgroup paths in nft as "${i.nftPathPrefix}<path>"` } : {}),
      detail: { nftPathPrefix: i.nftPathPrefix, mountPoint: i.v2MountPoint },
    };
  const netClsMount = i.v1Controllers['net_cls'];
  const netCls: CapabilityEntry = netClsMount
    ? { available: true, detail: { mountPoint: netClsMount } }
    : {
        available: false,
        reason:
          f.netClsEnabled === false
            ? 'the net_cls controller is not compiled in or is disabled (/proc/cgroups)'
            : 'the cgroup v1 net_cls controller is not mounted (it is in the kernel but not in /proc/self/mountinfo); netfence does not mount it',
        detail: { enabledInKernel: f.netClsEnabled ?? null },
      };
  return { v2, socketMatch, netCls };
}

/** Probe iptables-nft and its NFQUEUE target / connbytes match in the throwaway namespace. */
export async function probeIptables(probeNs: string | undefined, probeNsReason: string | undefined): Promise<CapabilityReport['iptables']> {
  const v = await attempt(['iptables-nft', '--version'], { timeoutMs: 5_000 });
  if (v.err) {
    const reason = `iptables-nft not usable: ${v.val} (Debian package iptables)`;
    return { nft: { available: false, reason }, nfqueue: { available: false, reason }, connbytes: { available: false, reason } };
  }
  const parsed = parseIptablesVersion(v.val.stdout);
  const nft: CapabilityEntry = { available: true, detail: { version: parsed?.version ?? null, backend: parsed?.backend ?? null } };
  if (!probeNs) {
    const reason = `not probed: no throwaway namespace (${probeNsReason ?? 'unknown'}); xtables targets are only probed by really adding a rule there`;
    return { nft, nfqueue: { available: false, reason }, connbytes: { available: false, reason } };
  }
  // iptables-nft commands in one namespace run one after the other (they race on the table generation).
  const add = (bin: string, chain: string, rule: string[]) => attempt([bin, '-w', '-A', chain, ...rule], { netns: probeNs, timeoutMs: 10_000 });
  const basic = await add('iptables-nft', 'FORWARD', ['-j', 'NFQUEUE', '--queue-num', '0', '--queue-bypass']);
  let nfqueue: CapabilityEntry;
  if (basic.err) nfqueue = { available: false, reason: `iptables-nft -j NFQUEUE --queue-bypass: ${basic.val}` };
  else {
    const listed = await attempt(['iptables-nft', '-S', 'FORWARD'], { netns: probeNs, timeoutMs: 10_000 });
    if (listed.err || !/NFQUEUE --queue-num 0 --queue-bypass/.test(listed.val.stdout)) {
      nfqueue = { available: false, reason: `the NFQUEUE rule was added but does not list back: ${listed.err ? listed.val : listed.val.stdout.slice(0, 200)}` };
    } else {
      const fanout = await add('iptables-nft', 'FORWARD', ['-j', 'NFQUEUE', '--queue-balance', '0:1', '--queue-bypass', '--queue-cpu-fanout']);
      const v6 = await add('ip6tables-nft', 'FORWARD', ['-j', 'NFQUEUE', '--queue-num', '0', '--queue-bypass']);
      nfqueue = {
        available: true,
        detail: {
          fanout: fanout.ok,
          ...(fanout.err ? { fanoutError: fanout.val } : {}),
          ipv6: v6.ok,
          ...(v6.err ? { ipv6Error: v6.val } : {}),
          probe: 'iptables-nft -A FORWARD -j NFQUEUE --queue-num 0 --queue-bypass',
        },
      };
    }
  }
  const cb = await add('iptables-nft', 'INPUT', ['-m', 'connbytes', '--connbytes', '0:10', '--connbytes-dir', 'both', '--connbytes-mode', 'packets', '-j', 'ACCEPT']);
  const connbytes: CapabilityEntry = cb.ok ? { available: true } : { available: false, reason: `iptables-nft -m connbytes: ${cb.val}` };
  return { nft, nfqueue, connbytes };
}
