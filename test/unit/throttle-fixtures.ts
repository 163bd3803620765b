// The Throttler's capability facts for unit tests: everything but tc police (like the development machine).
import type { ThrottleCaps } from '../../src/throttle/caps.js';

const yes = { available: true, reason: 'ok' };

/** Capabilities with every feature but tc police; `cgroup2Mount` and any entry can be overridden. */
export function throttleCaps(overrides: Partial<ThrottleCaps> = {}): ThrottleCaps {
  return {
    tcHtb: yes,
    tcU32: yes,
    tcBpf: yes,
    tcIngress: yes,
    tcClsact: yes,
    ifb: yes,
    mirred: yes,
    police: { available: false, reason: 'this kernel has no tc police action' },
    nftLimit: yes,
    nftQuota: yes,
    nftSocketCgroupv2: yes,
    cgroup2Mount: '/sys/fs/cgroup/unified',
    ...overrides,
  };
}
