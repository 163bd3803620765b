/**
 * Pure parsers used by capability detection: tool version strings, the
 * kernel release, /proc/self/mountinfo, /proc/mounts, /proc/self/cgroup and
 * the capability masks of /proc/self/status. No I/O here, so every parser is
 * unit-tested against fixtures.
 * @module
 */

/** A dotted version, e.g. 1.0.6 → `{ major: 1, minor: 0, patch: 6 }`. */
export interface VersionParts {
  major: number;
  minor: number;
  patch: number;
}

function parts(text: string): VersionParts | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

/** Compare two versions: negative if a < b, 0 if equal, positive if a > b. */
export function compareVersions(a: VersionParts, b: VersionParts): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** Parse `a.b.c` (extra suffixes ignored). Undefined when it does not start with a version. */
export function parseVersion(text: string): VersionParts | undefined {
  return parts(text.trim());
}

/**
 * Parse `nft --version` output: `nftables v1.0.6 (Lester Gooch #5)` or
 * `nftables v1.1.1 (Commodore Bullmoose #2)`. Returns the version string and parts.
 */
export function parseNftVersion(output: string): { version: string; parts: VersionParts; codename?: string } | undefined {
  const m = /nftables\s+v(\d+\.\d+(?:\.\d+)?)(?:\s+\(([^)]*)\))?/.exec(output);
  if (!m) return undefined;
  const version = m[1] as string;
  const p = parts(version);
  if (!p) return undefined;
  return m[2] ? { version, parts: p, codename: m[2] } : { version, parts: p };
}

/** Parse `uname -r` style releases: `6.18.44-fc-v669` → 6.18.44; `6.1.0-18-amd64` → 6.1.0. */
export function parseKernelRelease(release: string): VersionParts | undefined {
  return parts(release.trim());
}

/**
 * Parse `ip -V` / `tc -V`: `ip utility, iproute2-6.1.0, libbpf 1.1.2`.
 * Older iproute2 prints `ip utility, iproute2-ss200127`.
 */
export function parseIprouteVersion(output: string): { iproute2?: string; libbpf?: string } {
  const out: { iproute2?: string; libbpf?: string } = {};
  const ir = /iproute2-(?:ss)?([\w.]+)/.exec(output);
  if (ir) out.iproute2 = ir[1] as string;
  const lb = /libbpf\s+(\d+\.\d+(?:\.\d+)?)/.exec(output);
  if (lb) out.libbpf = lb[1] as string;
  return out;
}

/** Parse `bpftool version` (`bpftool v7.1.0` + `using libbpf v1.1`) or `bpftool version` of older releases (`/usr/sbin/bpftool v5.10.0`). */
export function parseBpftoolVersion(output: string): { version: string; libbpf?: string } | undefined {
  const m = /bpftool\s+v?(\d+\.\d+(?:\.\d+)?)/.exec(output);
  if (!m) return undefined;
  const lb = /libbpf\s+v?(\d+\.\d+(?:\.\d+)?)/.exec(output);
  return lb ? { version: m[1] as string, libbpf: lb[1] as string } : { version: m[1] as string };
}

/** Parse `iptables-nft --version`: `iptables v1.8.9 (nf_tables)`. */
export function parseIptablesVersion(output: string): { version: string; backend?: string } | undefined {
  const m = /iptables\s+v(\d+\.\d+(?:\.\d+)?)(?:\s+\(([^)]*)\))?/.exec(output);
  if (!m) return undefined;
  return m[2] ? { version: m[1] as string, backend: m[2] } : { version: m[1] as string };
}

/** Parse `clang --version`: `Debian clang version 14.0.6` → 14.0.6. */
export function parseClangVersion(output: string): string | undefined {
  return /clang version (\d+\.\d+(?:\.\d+)?)/.exec(output)?.[1];
}

/** Undo the octal escapes (`\040` for space, ...) that the kernel uses in mount tables. */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** One line of /proc/self/mountinfo. */
export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  /** Root of the mount within its filesystem (e.g. `/` or a bind-mounted subdirectory). */
  root: string;
  /** Where it is mounted. */
  mountPoint: string;
  /** Per-mount options (rw, relatime, ...). */
  options: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** Parse /proc/self/mountinfo (see proc(5)); malformed lines are skipped. */
export function parseMountinfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 6 || right.length < 2) continue;
    out.push({
      mountId: Number(left[0]),
      parentId: Number(left[1]),
      root: unescapeMountField(left[3] as string),
      mountPoint: unescapeMountField(left[4] as string),
      options: (left[5] as string).split(','),
      fsType: right[0] as string,
      source: unescapeMountField(right[1] ?? ''),
      superOptions: (right[2] ?? '').split(',').filter(Boolean),
    });
  }
  return out;
}

/** One line of /proc/mounts. */
export interface MountEntry {
  source: string;
  mountPoint: string;
  fsType: string;
  options: string[];
}

/** Parse /proc/mounts (fstab format). */
export function parseProcMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    out.push({ source: unescapeMountField(f[0] as string), mountPoint: unescapeMountField(f[1] as string), fsType: f[2] as string, options: (f[3] as string).split(',') });
  }
  return out;
}

/** How cgroups are mounted. */
export type CgroupLayout = 'unified' | 'hybrid' | 'legacy' | 'none';

/** Where cgroup v2 lives and how nft must name cgroups. */
export interface CgroupInfo {
  layout: CgroupLayout;
  /** Mount point of the cgroup v2 hierarchy (the first one found, preferring /sys/fs/cgroup and /sys/fs/cgroup/unified). */
  v2MountPoint?: string;
  /** Every cgroup2 mount point. */
  v2MountPoints: string[];
  /** cgroup v1 controllers mounted, with their mount points (e.g. `net_cls` → `/sys/fs/cgroup/net_cls,net_prio`). */
  v1Controllers: Record<string, string>;
  /**
   * Prefix to put before a cgroup v2 path in nft's `socket cgroupv2 level N "PATH"`.
   * nft resolves PATH relative to /sys/fs/cgroup, so on a hybrid system (v2 at
   * /sys/fs/cgroup/unified) a cgroup `/netfence/x` must be written `unified/netfence/x`.
   * Undefined when cgroup v2 is not mounted under /sys/fs/cgroup (nft cannot resolve it).
   */
  nftPathPrefix?: string;
}

/** nft resolves `socket cgroupv2` paths relative to this directory (compiled into nft). */
export const NFT_CGROUPV2_BASE = '/sys/fs/cgroup';

/** Find cgroup v2 and v1 mounts in /proc/self/mountinfo and classify the layout. */
export function parseCgroupMounts(mountinfo: string | MountInfoEntry[]): CgroupInfo {
  const entries = typeof mountinfo === 'string' ? parseMountinfo(mountinfo) : mountinfo;
  const v2 = entries.filter((e) => e.fsType === 'cgroup2').map((e) => e.mountPoint);
  const v1Controllers: Record<string, string> = {};
  for (const e of entries) {
    if (e.fsType !== 'cgroup') continue;
    for (const opt of e.superOptions) {
      // Skip mount flags and named hierarchies (name=systemd); keep controller names.
      if (['rw', 'ro', 'nsdelegate', 'xattr', 'noprefix', 'clone_children', 'cpuset_v2_mode', 'favordynmods'].includes(opt) || opt.includes('=')) continue;
      if (!(opt in v1Controllers)) v1Controllers[opt] = e.mountPoint;
    }
  }
  const preferred = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'];
  const v2MountPoint = preferred.find((p) => v2.includes(p)) ?? v2[0];
  const hasV1 = Object.keys(v1Controllers).length > 0;
  const layout: CgroupLayout = v2MountPoint ? (hasV1 ? 'hybrid' : 'unified') : hasV1 ? 'legacy' : 'none';
  const info: CgroupInfo = { layout, v2MountPoints: v2, v1Controllers };
  if (v2MountPoint) {
    info.v2MountPoint = v2MountPoint;
    if (v2MountPoint === NFT_CGROUPV2_BASE) info.nftPathPrefix = '';
    else if (v2MountPoint.startsWith(`${NFT_CGROUPV2_BASE}/`)) info.nftPathPrefix = `${v2MountPoint.slice(NFT_CGROUPV2_BASE.length + 1)}/`;
  }
  return info;
}

/** The cgroup v2 path of a process from /proc/PID/cgroup (the `0::/path` line), or undefined. */
export function parseProcCgroupV2Path(text: string): string | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3).trim() || '/';
  }
  return undefined;
}

/** Linux capability numbers that matter to netfence (see capabilities(7)). */
export const CAP = {
  NET_ADMIN: 12,
  NET_RAW: 13,
  SYS_ADMIN: 21,
  SYS_RESOURCE: 24,
  PERFMON: 38,
  BPF: 39,
} as const;

/** Capability sets from /proc/PID/status as bigint masks. */
export interface CapSets {
  effective: bigint;
  permitted: bigint;
  bounding: bigint;
}

/** Parse CapEff/CapPrm/CapBnd from /proc/self/status. Missing lines are 0. */
export function parseCapSets(status: string): CapSets {
  const get = (name: string): bigint => {
    const m = new RegExp(`^${name}:\\s*([0-9a-fA-F]+)\\s*$`, 'm').exec(status);
    return m ? BigInt(`0x${m[1]}`) : 0n;
  };
  return { effective: get('CapEff'), permitted: get('CapPrm'), bounding: get('CapBnd') };
}

/** Whether capability number `cap` is set in `mask`. */
export function hasCap(mask: bigint, cap: number): boolean {
  return ((mask >> BigInt(cap)) & 1n) === 1n;
}
