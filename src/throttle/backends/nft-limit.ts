/**
 * `nft-limit`: policing in nftables (`limit rate over R bytes/second burst B bytes
 * drop`) in netfence's own table; no qdisc, no IFB. Works in both directions and is
 * the only backend that limits per-process DOWNLOAD: in the input hook nft's
 * `socket cgroupv2` finds the receiving socket (early demux / socket lookup) and
 * the policer drops what exceeds the rate. Policing drops instead of queueing, so
 * TCP sees losses; the derived burst keeps it near the target (see docs/throttle.md).
 * @module
 */
import type { ThrottleCaps } from '../caps.js';
import type { LimitSpec } from '../types.js';
import type { ThrottleBackend } from './types.js';

/** The nft-limit backend. */
export const nftLimit: ThrottleBackend = {
  name: 'nft-limit',
  priority: 50,
  kind: 'policing',
  directions: ['egress', 'ingress'],
  matches: 'iface, src/dst (v4/v6 CIDR), sport/dport, protocol, pid/cgroup (upload: output hook; download: input hook, local sockets only)',
  limitations: [
    'policing: excess packets are dropped, not queued; the kernel bucket holds one second at the rate plus the burst, so a transfer can run ahead by up to that much (measured over 3 s: 0.93–1.10 of the target)',
    'per-process matches see only traffic of local sockets (output/input hooks), not forwarded traffic',
  ],
  policesInNft: true,
  availability(caps: ThrottleCaps) {
    if (!caps.nftLimit.available) return { available: false, reason: caps.nftLimit.reason };
    return { available: true, reason: 'nft limit (bytes) works' };
  },
  refuses(spec: LimitSpec, caps: ThrottleCaps) {
    if ((spec.match?.pid !== undefined || spec.match?.cgroup !== undefined) && !caps.nftSocketCgroupv2.available)
      return `per-process limits need nft socket cgroupv2: ${caps.nftSocketCgroupv2.reason}`;
    if (spec.quota && !caps.nftQuota.available) return `quotas need nft quota: ${caps.nftQuota.reason}`;
    return undefined;
  },
  dev: (site) => site.iface,
  siteSteps: () => [],
  limitSteps: () => [],
  updateSteps: () => [],
};
