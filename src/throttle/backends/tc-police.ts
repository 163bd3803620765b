/**
 * `tc-police`: policing with the tc `police` action on a clsact qdisc (u32 filters
 * select the traffic, one shared police action per limit, changed in place with
 * `tc actions change`). A fallback for hosts without nftables limit support.
 * Kernels built without CONFIG_NET_ACT_POLICE cannot use it; the registry says so.
 * @module
 */
import type { ThrottleCaps } from '../caps.js';
import type { LimitSpec } from '../types.js';
import { exec, type LimitCtx, type SiteInfo, type ThrottleBackend } from './types.js';

function policeArgs(ctx: LimitCtx, rateBps: number, burst: number): string[] {
  return ['police', 'rate', `${rateBps}bit`, 'burst', `${burst}b`, 'mtu', '65536b', 'conform-exceed', 'drop/ok', 'index', String(ctx.policeIndex)];
}

/** The tc-police backend. */
export const tcPolice: ThrottleBackend = {
  name: 'tc-police',
  priority: 40,
  kind: 'policing',
  directions: ['egress', 'ingress'],
  matches: 'iface, src/dst (v4/v6 CIDR), sport/dport, protocol, pid/cgroup on egress (nft fwmark, cls_bpf)',
  limitations: ['policing: excess packets are dropped, not queued', 'no per-process match on ingress (tc runs before netfilter)'],
  policesInNft: false,
  availability(caps: ThrottleCaps) {
    for (const f of [caps.police, caps.tcClsact, caps.tcU32]) if (!f.available) return { available: false, reason: f.reason };
    return { available: true, reason: 'clsact, cls_u32 and act_police work' };
  },
  refuses(spec: LimitSpec, caps: ThrottleCaps) {
    if (spec.rate === undefined) return 'tc-police needs a rate (a quota alone is served by nft-limit)';
    const proc = spec.match?.pid !== undefined || spec.match?.cgroup !== undefined;
    if (proc && spec.direction === 'ingress') return 'tc-police cannot match a process on ingress: tc runs before netfilter and the socket lookup';
    if (proc && !caps.nftSocketCgroupv2.available) return `per-process limits need nft socket cgroupv2: ${caps.nftSocketCgroupv2.reason}`;
    if (proc && !caps.tcBpf.available) return `per-process limits classify the nft fwmark with cls_bpf, which is unavailable: ${caps.tcBpf.reason}`;
    if (spec.quota && !caps.nftQuota.available) return `quotas need nft quota: ${caps.nftQuota.reason}`;
    return undefined;
  },
  dev: (site) => site.iface,
  siteSteps(site: SiteInfo) {
    return [
      {
        id: `tc:qdisc:${site.iface}:clsact`,
        description: `clsact qdisc on ${site.iface}`,
        do: [exec(['tc', 'qdisc', 'add', 'dev', site.iface, 'clsact'])],
        undo: [exec(['tc', 'qdisc', 'del', 'dev', site.iface, 'clsact'], true)],
      },
    ];
  },
  limitSteps(ctx: LimitCtx) {
    const dev = ctx.site.iface;
    const hook = ctx.site.direction;
    const steps = [
      {
        id: `tc:action:police:${ctx.policeIndex}`,
        description: `police action ${ctx.policeIndex} at ${ctx.rateBps} bit/s, burst ${ctx.burst} B`,
        do: [exec(['tc', 'actions', 'add', 'action', ...policeArgs(ctx, ctx.rateBps!, ctx.burst!)])],
        undo: [exec(['tc', 'actions', 'del', 'action', 'police', 'index', String(ctx.policeIndex)], true)],
      },
    ];
    for (const f of ctx.filters) {
      steps.push({
        id: `tc:filter:${dev}:${hook}:${f.prio}`,
        description: `${f.kind} filter prio ${f.prio} on ${dev} ${hook} → police ${ctx.policeIndex}`,
        do: [exec(['tc', 'filter', 'add', 'dev', dev, hook, 'protocol', f.protocol, 'prio', String(f.prio), f.kind, ...f.keys, 'action', 'police', 'index', String(ctx.policeIndex)])],
        undo: [exec(['tc', 'filter', 'del', 'dev', dev, hook, 'protocol', f.protocol, 'prio', String(f.prio)], true)],
      });
    }
    return steps;
  },
  updateSteps(ctx: LimitCtx, old) {
    return [
      {
        id: `tc:action:police:${ctx.policeIndex}:change`,
        description: `police action ${ctx.policeIndex}: ${old.rateBps} → ${ctx.rateBps} bit/s`,
        do: [exec(['tc', 'actions', 'change', 'action', ...policeArgs(ctx, ctx.rateBps!, ctx.burst!)])],
        undo: [exec(['tc', 'actions', 'change', 'action', ...policeArgs(ctx, old.rateBps, old.burst)], true)],
      },
    ];
  },
};
