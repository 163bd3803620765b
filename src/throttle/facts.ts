/**
 * The I/O half of `Throttler.limit`: read the host facts a limit needs (the
 * interface's MTU, a process's cgroup), checking on the way that the
 * interface, process or cgroup exists. The pure half is `compile`. Files
 * (/proc/<pid>/cgroup, the cgroup tree) are read through the current host
 * (`hostFiles()`), so a FakeHost answers them.
 * @module
 */
import { posix } from 'node:path';
import { UnsupportedError, ValidationError } from '../errors.js';
import { hostFiles } from '../host/files.js';
import { listLinks } from '../host/links.js';
import { Err, Ok, type Result } from '../result.js';
import type { ThrottleCaps } from './caps.js';
import { cgroup2PathOf } from './cgroup.js';
import type { LimitError, ThrottleHostFacts } from './handle.js';
import type { LimitSpec } from './types.js';

/** A cgroup2 mount point netfence will pass to nft. */
export const SAFE_MOUNT = /^\/[A-Za-z0-9_./@:+=-]*$/;

/** The cgroup v2 mount point per-process limits use: mounted, and a path netfence will pass to nft. */
export function cgroup2Mount(caps: ThrottleCaps): Result<string, UnsupportedError> {
  const mount = caps.cgroup2Mount;
  if (!mount) return Err(new UnsupportedError('cgroup.v2', 'per-process limits need cgroup v2, which is not mounted here'));
  if (!SAFE_MOUNT.test(mount)) return Err(new UnsupportedError('cgroup.v2', `the cgroup2 mount point ${JSON.stringify(mount)} contains characters netfence will not pass to nft`));
  return Ok(mount);
}

/** The host facts of a validated limit whose backend `caps` can serve. */
export async function readHostFacts(spec: LimitSpec, caps: ThrottleCaps, netns: string | undefined): Promise<Result<ThrottleHostFacts, LimitError>> {
  const link = await listLinks({ netns, dev: spec.iface, what: 'read interface' });
  if (link.err && link.val.code !== 'BAD_LISTING') return Err(new ValidationError('limit', [{ path: 'iface', message: `no interface ${spec.iface}${netns ? ` in netns ${netns}` : ''}` }]));
  const mtu = link.ok ? link.val[0]?.mtu : undefined;
  const facts: ThrottleHostFacts = { capabilities: caps, mtu };
  const m = spec.match;
  if (m?.pid !== undefined || m?.cgroup !== undefined) {
    const mounted = cgroup2Mount(caps);
    if (mounted.err) return mounted;
    const mount = mounted.val;
    if (m.pid !== undefined) {
      let text: string;
      try {
        text = hostFiles().read(`/proc/${m.pid}/cgroup`);
      } catch {
        return Err(new ValidationError('limit', [{ path: 'match.pid', message: `no process ${m.pid}` }]));
      }
      facts.pidCgroup = cgroup2PathOf(text);
    } else {
      const rel = m.cgroup!;
      if (!hostFiles().isDirectory(posix.join(mount, rel))) return Err(new ValidationError('limit', [{ path: 'match.cgroup', message: `no cgroup ${rel} under ${mount}` }]));
    }
  }
  return Ok(facts);
}
