/**
 * `ifb-tc`: ingress (download) shaping. An ingress qdisc on the interface
 * redirects every received packet (mirred) to an IFB device owned by netfence;
 * HTB on the IFB shapes it with one class per limit, exactly like tc-htb.
 *
 * Not possible here: per-process download. Received packets go through tc and the
 * IFB before netfilter and before the socket lookup, so neither nft's
 * `socket cgroupv2` nor a conntrack mark restored by nft can classify them.
 * (A tc `connmark`/`ctinfo` action could restore a ct mark before the redirect;
 * netfence does not use it yet.) Per-process download goes to nft-limit.
 * @module
 */
import type { ThrottleCaps } from '../caps.js';
import type { LimitSpec } from '../types.js';
import { htbLimitSteps, htbRootStep, htbUpdateSteps } from './htb-common.js';
import { exec, type SiteInfo, type ThrottleBackend } from './types.js';

/** The ifb-tc backend. */
export const ifbTc: ThrottleBackend = {
  name: 'ifb-tc',
  priority: 90,
  kind: 'shaping',
  directions: ['ingress'],
  matches: 'iface, src/dst (v4/v6 CIDR), sport/dport, protocol',
  limitations: [
    'ingress only',
    'no per-process (pid/cgroup) match: received packets reach tc and the IFB before netfilter and the socket lookup; per-process download uses nft-limit (policing in the input hook)',
    'port matches assume no IPv4 options / IPv6 extension headers (u32)',
  ],
  policesInNft: false,
  availability(caps: ThrottleCaps) {
    for (const f of [caps.tcHtb, caps.tcU32, caps.tcIngress, caps.ifb, caps.mirred]) if (!f.available) return { available: false, reason: f.reason };
    return { available: true, reason: 'ingress qdisc, act_mirred, ifb and sch_htb work' };
  },
  refuses(spec: LimitSpec, caps: ThrottleCaps) {
    if (spec.direction !== 'ingress') return 'ifb-tc shapes ingress only; egress uses tc-htb';
    if (spec.rate === undefined) return 'ifb-tc needs a rate (a quota alone is served by nft-limit)';
    if (spec.match?.pid !== undefined || spec.match?.cgroup !== undefined)
      return 'ifb-tc cannot match a process: received packets are redirected to the IFB before netfilter and the socket lookup run (use nft-limit for per-process download)';
    if (spec.quota && !caps.nftQuota.available) return `quotas need nft quota: ${caps.nftQuota.reason}`;
    return undefined;
  },
  dev: (site) => site.ifb!,
  siteSteps(site: SiteInfo) {
    const ifb = site.ifb!;
    return [
      {
        id: `ip:link:${ifb}`,
        description: `IFB device ${ifb} for ingress of ${site.iface}`,
        do: [exec(['ip', 'link', 'add', ifb, 'txqueuelen', '1000', 'type', 'ifb']), exec(['ip', 'link', 'set', ifb, 'up'])],
        undo: [exec(['ip', 'link', 'del', ifb], true)],
      },
      htbRootStep(ifb),
      {
        id: `tc:qdisc:${site.iface}:ingress`,
        description: `ingress qdisc on ${site.iface}`,
        do: [exec(['tc', 'qdisc', 'add', 'dev', site.iface, 'handle', 'ffff:', 'ingress'])],
        undo: [exec(['tc', 'qdisc', 'del', 'dev', site.iface, 'handle', 'ffff:', 'ingress'], true)],
      },
      {
        id: `tc:filter:${site.iface}:ffff:1`,
        description: `redirect ingress of ${site.iface} to ${ifb}`,
        do: [
          exec(['tc', 'filter', 'add', 'dev', site.iface, 'parent', 'ffff:', 'protocol', 'all', 'prio', '1', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', ifb]),
        ],
        undo: [exec(['tc', 'filter', 'del', 'dev', site.iface, 'parent', 'ffff:', 'protocol', 'all', 'prio', '1'], true)],
      },
    ];
  },
  limitSteps: (ctx) => htbLimitSteps(ctx.site.ifb!, ctx, 'ingress'),
  updateSteps: (ctx, old) => htbUpdateSteps(ctx.site.ifb!, ctx, old, 'ingress'),
};
