import { describe, expect, it } from 'vitest';
import {
  CAP,
  compareVersions,
  hasCap,
  parseBpftoolVersion,
  parseCapSets,
  parseCgroupMounts,
  parseClangVersion,
  parseIprouteVersion,
  parseIptablesVersion,
  parseKernelRelease,
  parseMountinfo,
  parseNftVersion,
  parseProcCgroupV2Path,
  parseProcMounts,
} from '../../src/capabilities/parse.js';
import { nftProbePath } from '../../src/capabilities/system.js';

/** Hybrid layout, as on the development VM: v1 controllers plus cgroup2 at /sys/fs/cgroup/unified. */
const MOUNTINFO_HYBRID = `22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
52 23 0:40 / /sys/fs/bpf rw,relatime - bpf bpf rw
`;

/** Unified layout, as on Debian 12 with systemd (optional fields such as shared:N before the separator). */
const MOUNTINFO_UNIFIED = `22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
27 22 0:25 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:5 - pstore pstore rw
29 22 0:27 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:6 - bpf bpf rw,mode=700
`;

/** cgroup v1 only (old distributions, some containers), with net_cls,net_prio co-mounted. */
const MOUNTINFO_LEGACY = `31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
33 31 0:30 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,net_cls,net_prio
34 31 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
`;

/** cgroup2 mounted outside /sys/fs/cgroup (nft cannot resolve paths there); a mount point with an escaped space. */
const MOUNTINFO_ELSEWHERE = `40 22 0:38 / /run/cgroup\\0402 rw,relatime - cgroup2 none rw
`;

describe('version parsers', () => {
  it('parses nft --version for Debian 1.0.6 and 1.1.x', () => {
    expect(parseNftVersion('nftables v1.0.6 (Lester Gooch #5)')).toEqual({ version: '1.0.6', parts: { major: 1, minor: 0, patch: 6 }, codename: 'Lester Gooch #5' });
    expect(parseNftVersion('nftables v1.1.1 (Commodore Bullmoose #2)')?.parts).toEqual({ major: 1, minor: 1, patch: 1 });
    expect(parseNftVersion('nftables v1.1.3')?.version).toBe('1.1.3');
    expect(parseNftVersion('nftables v0.9.8 (E.D.S.)')?.parts.minor).toBe(9);
    expect(parseNftVersion('command not found')).toBeUndefined();
  });

  it('compares versions', () => {
    const v = (s: string) => parseNftVersion(`nftables v${s}`)!.parts;
    expect(compareVersions(v('1.0.6'), v('1.1.0'))).toBeLessThan(0);
    expect(compareVersions(v('1.1.0'), v('1.0.9'))).toBeGreaterThan(0);
    expect(compareVersions(v('1.0.6'), v('1.0.6'))).toBe(0);
  });

  it('parses kernel releases with distribution suffixes', () => {
    expect(parseKernelRelease('6.18.44-fc-v669')).toEqual({ major: 6, minor: 18, patch: 44 });
    expect(parseKernelRelease('6.1.0-18-amd64\n')).toEqual({ major: 6, minor: 1, patch: 0 });
    expect(parseKernelRelease('5.15')).toEqual({ major: 5, minor: 15, patch: 0 });
    expect(parseKernelRelease('garbage')).toBeUndefined();
  });

  it('parses ip -V, bpftool, iptables and clang versions', () => {
    expect(parseIprouteVersion('ip utility, iproute2-6.1.0, libbpf 1.1.2')).toEqual({ iproute2: '6.1.0', libbpf: '1.1.2' });
    expect(parseIprouteVersion('ip utility, iproute2-ss200127')).toEqual({ iproute2: '200127' });
    expect(parseBpftoolVersion('bpftool v7.1.0\nusing libbpf v1.1\nfeatures: libbpf_strict')).toEqual({ version: '7.1.0', libbpf: '1.1' });
    expect(parseBpftoolVersion('/usr/sbin/bpftool v5.10.0')).toEqual({ version: '5.10.0' });
    expect(parseIptablesVersion('iptables v1.8.9 (nf_tables)')).toEqual({ version: '1.8.9', backend: 'nf_tables' });
    expect(parseIptablesVersion('iptables v1.8.7 (legacy)')?.backend).toBe('legacy');
    expect(parseClangVersion('Debian clang version 14.0.6\nTarget: x86_64-pc-linux-gnu')).toBe('14.0.6');
  });
});

describe('mount tables', () => {
  it('parses mountinfo lines with and without optional fields', () => {
    const m = parseMountinfo(MOUNTINFO_UNIFIED);
    const cg = m.find((e) => e.fsType === 'cgroup2');
    expect(cg).toMatchObject({ mountId: 26, parentId: 22, root: '/', mountPoint: '/sys/fs/cgroup', source: 'cgroup2' });
    expect(cg?.superOptions).toContain('nsdelegate');
    expect(parseMountinfo('garbage line\n\n')).toEqual([]);
  });

  it('unescapes octal escapes in mount points', () => {
    expect(parseMountinfo(MOUNTINFO_ELSEWHERE)[0]?.mountPoint).toBe('/run/cgroup 2');
    expect(parseProcMounts('bpf /sys/fs/bpf bpf rw,relatime 0 0\nnone /a\\040b tmpfs rw 0 0')).toEqual([
      { source: 'bpf', mountPoint: '/sys/fs/bpf', fsType: 'bpf', options: ['rw', 'relatime'] },
      { source: 'none', mountPoint: '/a b', fsType: 'tmpfs', options: ['rw'] },
    ]);
  });

  it('finds cgroup v2 on a hybrid system at /sys/fs/cgroup/unified', () => {
    const c = parseCgroupMounts(MOUNTINFO_HYBRID);
    expect(c.layout).toBe('hybrid');
    expect(c.v2MountPoint).toBe('/sys/fs/cgroup/unified');
    expect(c.nftPathPrefix).toBe('unified/');
    expect(c.v1Controllers).toMatchObject({ cpu: '/sys/fs/cgroup/cpu', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' });
    expect(Object.keys(c.v1Controllers)).not.toContain('name=systemd');
    expect(c.v1Controllers['net_cls']).toBeUndefined();
  });

  it('finds cgroup v2 on a unified system at /sys/fs/cgroup', () => {
    const c = parseCgroupMounts(MOUNTINFO_UNIFIED);
    expect(c).toMatchObject({ layout: 'unified', v2MountPoint: '/sys/fs/cgroup', nftPathPrefix: '', v1Controllers: {} });
  });

  it('classifies v1-only and finds net_cls', () => {
    const c = parseCgroupMounts(MOUNTINFO_LEGACY);
    expect(c.layout).toBe('legacy');
    expect(c.v2MountPoint).toBeUndefined();
    expect(c.v1Controllers['net_cls']).toBe('/sys/fs/cgroup/net_cls,net_prio');
  });

  it('has no nft path prefix when cgroup2 is outside /sys/fs/cgroup', () => {
    const c = parseCgroupMounts(MOUNTINFO_ELSEWHERE);
    expect(c.layout).toBe('unified');
    expect(c.v2MountPoint).toBe('/run/cgroup 2');
    expect(c.nftPathPrefix).toBeUndefined();
    expect(parseCgroupMounts('').layout).toBe('none');
  });

  it('derives the path used by the nft socket cgroupv2 probe', () => {
    expect(nftProbePath(parseCgroupMounts(MOUNTINFO_HYBRID), '/')).toBe('unified');
    expect(nftProbePath(parseCgroupMounts(MOUNTINFO_HYBRID), '/user.slice/session-2.scope')).toBe('unified/user.slice');
    expect(nftProbePath(parseCgroupMounts(MOUNTINFO_UNIFIED), '/')).toBe('.');
    expect(nftProbePath(parseCgroupMounts(MOUNTINFO_UNIFIED), '/system.slice/ssh.service')).toBe('system.slice');
    expect(nftProbePath(parseCgroupMounts(MOUNTINFO_ELSEWHERE), '/')).toBeUndefined();
  });

  it('reads the v2 path of a process from /proc/PID/cgroup', () => {
    expect(parseProcCgroupV2Path('9:name=systemd:/\n4:memory:/x\n0::/\n')).toBe('/');
    expect(parseProcCgroupV2Path('0::/user.slice/user-0.slice/session-1.scope\n')).toBe('/user.slice/user-0.slice/session-1.scope');
    expect(parseProcCgroupV2Path('4:memory:/x\n')).toBeUndefined();
  });
});

describe('capability masks', () => {
  const status = (eff: string) => `Name:\tnode\nUid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t${eff}\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n`;

  it('parses CapEff and tests single bits', () => {
    const c = parseCapSets(status('000001fffeffffff'));
    expect(c.effective).toBe(0x1fffeffffffn);
    expect(c.permitted).toBe(0x1ffffffffffn);
    expect(hasCap(c.effective, CAP.NET_ADMIN)).toBe(true);
    expect(hasCap(c.effective, CAP.BPF)).toBe(true);
    expect(hasCap(c.effective, CAP.SYS_RESOURCE)).toBe(false); // bit 24 is clear in 0x...fe ffffff
  });

  it('handles a process with only CAP_NET_ADMIN', () => {
    const c = parseCapSets(status('0000000000001000'));
    expect(hasCap(c.effective, CAP.NET_ADMIN)).toBe(true);
    expect(hasCap(c.effective, CAP.SYS_ADMIN)).toBe(false);
    expect(hasCap(c.effective, CAP.BPF)).toBe(false);
  });

  it('treats missing lines as no capabilities', () => {
    expect(parseCapSets('Name:\tx\n').effective).toBe(0n);
  });
});
