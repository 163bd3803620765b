/**
 * cgroup v2 helpers for per-process limits: find the cgroup2 mount (unified
 * /sys/fs/cgroup or hybrid /sys/fs/cgroup/unified or anywhere else), and compute
 * what nft's `socket cgroupv2 level N "path"` needs.
 *
 * nft (≤ 1.1 at least) resolves the quoted path against the fixed prefix
 * `/sys/fs/cgroup/` with stat(2) and uses the inode number as the cgroup id, so on
 * a hybrid host the path must be written as `unified/<group>`; for a mount elsewhere
 * we write the path relative to /sys/fs/cgroup (`../../../mnt/cg2/<group>`), which
 * stat(2) resolves just the same. The level is the depth below the cgroup2 root.
 * @module
 */
import { posix } from 'node:path';

/** The directory nft prefixes to cgroupv2 paths. */
export const NFT_CGROUP_PREFIX = '/sys/fs/cgroup';

/** Find the first cgroup2 mount point in a /proc/self/mountinfo text; undefined if none. */
export function findCgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype !== 'cgroup2') continue;
    const mountPoint = line.slice(0, sep).split(' ')[4];
    if (mountPoint) return mountPoint.replace(/\\040/g, ' ');
  }
  return undefined;
}

/** The cgroup v2 path of a process from /proc/PID/cgroup text (`0::/path`), e.g. `/user.slice`. */
export function cgroup2PathOf(procCgroup: string): string | undefined {
  for (const line of procCgroup.split('\n')) if (line.startsWith('0::')) return line.slice(3) || '/';
  return undefined;
}

/** What nft needs to match sockets of cgroup `rel` (relative to the cgroup2 root mounted at `mount`). */
export function nftCgroupRef(mount: string, rel: string): { path: string; level: number } {
  const abs = posix.join(mount, rel);
  const path = posix.relative(NFT_CGROUP_PREFIX, abs);
  return { path, level: rel.split('/').filter(Boolean).length };
}
