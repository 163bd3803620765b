/**
 * `tc-htb`: egress shaping with an HTB root qdisc on the interface, one class per
 * limit, u32 filters for addresses/ports/protocol and for the fwmark that
 * nftables sets on per-process traffic. Unmatched traffic is not limited.
 * @module
 */
import type { ThrottleCaps } from '../caps.js';
import type { LimitSpec } from '../types.js';
import { htbLimitSteps, htbRootStep, htbUpdateSteps } from './htb-common.js';
import type { ThrottleBackend } from './types.js';

/** The tc-htb backend. */
export const tcHtb: ThrottleBackend = {
  name: 'tc-htb',
  priority: 100,
  kind: 'shaping',
  directions: ['egress'],
  matches: 'iface, src/dst (v4/v6 CIDR), sport/dport, protocol, pid/cgroup (nft socket cgroupv2 sets a fwmark, cls_bpf classifies it)',
  limitations: ['egress only (use ifb-tc for ingress)', 'port matches assume no IPv4 options / IPv6 extension headers (u32)'],
  policesInNft: false,
  availability(caps: ThrottleCaps) {
    if (!caps.tcHtb.available) return { available: false, reason: caps.tcHtb.reason };
    if (!caps.tcU32.available) return { available: false, reason: caps.tcU32.reason };
    return { available: true, reason: 'sch_htb and cls_u32 work' };
  },
  refuses(spec: LimitSpec, caps: ThrottleCaps) {
    if (spec.direction !== 'egress') return 'tc-htb shapes egress only; ingress needs ifb-tc (or nft-limit)';
    if (spec.rate === undefined) return 'tc-htb needs a rate (a quota alone is served by nft-limit)';
    if ((spec.match?.pid !== undefined || spec.match?.cgroup !== undefined) && !caps.nftSocketCgroupv2.available)
      return `per-process limits need nft socket cgroupv2: ${caps.nftSocketCgroupv2.reason}`;
    if ((spec.match?.pid !== undefined || spec.match?.cgroup !== undefined) && !caps.tcBpf.available)
      return `per-process limits classify the nft fwmark with cls_bpf, which is unavailable: ${caps.tcBpf.reason}`;
    if (spec.quota && !caps.nftQuota.available) return `quotas need nft quota: ${caps.nftQuota.reason}`;
    return undefined;
  },
  dev: (site) => site.iface,
  siteSteps: (site) => [htbRootStep(site.iface)],
  limitSteps: (ctx) => htbLimitSteps(ctx.site.iface, ctx),
  updateSteps: (ctx, old) => htbUpdateSteps(ctx.site.iface, ctx, old),
};
