/**
 * What the Throttler needs to know about the host: which tc qdiscs, classifiers
 * and actions exist, whether IFB and nftables limit/quota/socket-cgroupv2 work,
 * and where cgroup v2 is mounted.
 *
 * {@link throttleCaps} reads the project's capability report
 * (`detectCapabilities()`); {@link probeThrottleCaps} is a small local probe used
 * only if that report cannot be produced (it builds its throwaway objects in a
 * capability probe namespace, `nfcap-<pid>-*` from capabilities/probe-ns.ts,
 * which it deletes again and which `reconcile()` sweeps after a crash).
 * @module
 */
import { detectCapabilities, type CapabilityReport } from '../capabilities/index.js';
import { createProbeNamespace, destroyProbeNamespace } from '../capabilities/probe-ns.js';
import { hostFiles } from '../host/files.js';
import { run } from '../host/run.js';
import { findCgroup2Mount, nftCgroupRef } from './cgroup.js';

/** One feature: available or not, and why. */
export interface Feature {
  available: boolean;
  reason: string;
}

/** The capabilities the Throttler's backends depend on. */
export interface ThrottleCaps {
  tcHtb: Feature;
  tcU32: Feature;
  /** cls_bpf (classic bytecode): used to classify by fwmark (per-process limits). */
  tcBpf: Feature;
  tcIngress: Feature;
  tcClsact: Feature;
  ifb: Feature;
  mirred: Feature;
  police: Feature;
  nftLimit: Feature;
  nftQuota: Feature;
  nftSocketCgroupv2: Feature;
  /** Where cgroup v2 is mounted (undefined when it is not). */
  cgroup2Mount: string | undefined;
}

const cache = new Map<string, Promise<ThrottleCaps>>();

function entry(e: { available: boolean; reason?: string | undefined } | undefined, okText: string): Feature {
  if (!e) return { available: false, reason: 'not in the capability report' };
  return e.available ? { available: true, reason: e.reason ?? okText } : { available: false, reason: e.reason ?? 'unavailable' };
}

/** Map the project's capability report to what the Throttler needs. */
export function fromReport(r: CapabilityReport): ThrottleCaps {
  const police = r.tc.actions.police;
  return {
    tcHtb: entry(r.tc.qdiscs.htb, 'sch_htb works'),
    tcU32: entry(r.tc.classifiers.u32, 'cls_u32 works'),
    tcBpf: entry(r.tc.classifiers.bpf, 'cls_bpf works'),
    tcIngress: entry(r.tc.qdiscs.ingress, 'ingress qdisc works'),
    tcClsact: entry(r.tc.qdiscs.clsact, 'clsact qdisc works'),
    ifb: entry(r.tc.ifb, 'ifb devices can be created'),
    mirred: entry(r.tc.actions.mirred, 'act_mirred works'),
    police: police.available ? { available: true, reason: 'act_police works' } : { available: false, reason: `this kernel has no tc police action: ${police.reason ?? 'unavailable'}` },
    nftLimit: entry(r.nft.features.limit, 'nft limit works'),
    nftQuota: entry(r.nft.features.quota, 'nft quota works'),
    nftSocketCgroupv2: entry(r.cgroup.socketMatch, 'nft socket cgroupv2 works'),
    cgroup2Mount: r.cgroup.v2.detail?.mountPoint,
  };
}

/** The Throttler's capabilities for `netns` (from `detectCapabilities`, else the local probe); cached. */
export function throttleCaps(netns?: string): Promise<ThrottleCaps> {
  const key = `report:${netns ?? ''}`;
  let p = cache.get(key);
  if (!p) {
    p = detectCapabilities({ netns }).then(fromReport, () => probeThrottleCaps(netns));
    cache.set(key, p);
  }
  return p;
}

/** Probe (once per process and netns) what the Throttler can use. */
export function probeThrottleCaps(netns?: string): Promise<ThrottleCaps> {
  const key = netns ?? '';
  let p = cache.get(key);
  if (!p) {
    p = probe();
    cache.set(key, p);
  }
  return p;
}

function said(r: { ok: boolean; val: unknown }): string {
  if (r.ok) return '';
  const f = (r.val as { failure?: { stderr?: string; stdout?: string } }).failure;
  return (f?.stderr || f?.stdout || 'failed').split('\n')[0]!.trim();
}

async function probe(): Promise<ThrottleCaps> {
  let mountinfo = '';
  try {
    mountinfo = hostFiles().read('/proc/self/mountinfo');
  } catch {
    /* no /proc: cgroup v2 counts as not mounted */
  }
  const cgroup2Mount = findCgroup2Mount(mountinfo);
  const no = (reason: string): Feature => ({ available: false, reason });
  const caps: ThrottleCaps = {
    tcHtb: no('not probed'),
    tcU32: no('not probed'),
    tcBpf: no('not probed'),
    tcIngress: no('not probed'),
    tcClsact: no('not probed'),
    ifb: no('not probed'),
    mirred: no('not probed'),
    police: no('not probed'),
    nftLimit: no('not probed'),
    nftQuota: no('not probed'),
    nftSocketCgroupv2: no('not probed'),
    cgroup2Mount,
  };
  // The capability probes' throwaway namespace (nfcap-<pid>-*), with the veth pair the tc probes use.
  const made = await createProbeNamespace(['link add nfp0 type veth peer name nfp1', 'link set nfp0 up', 'link set nfp1 up']);
  if (made.err) {
    const why = `cannot create a probe namespace: ${said(made)}`;
    for (const k of Object.keys(caps) as (keyof ThrottleCaps)[]) if (k !== 'cgroup2Mount') (caps[k] as Feature) = no(why);
    return caps;
  }
  const probeNs = made.val;
  const ns = probeNs.name;
  const tc = (args: string[]) => run(['tc', ...args], { netns: ns, timeoutMs: 60_000 });
  const feat = (r: { ok: boolean; val: unknown }, okText: string, prefix: string): Feature =>
    r.ok ? { available: true, reason: okText } : { available: false, reason: `${prefix}: ${said(r)}` };
  try {
    const htb = await tc(['qdisc', 'add', 'dev', 'nfp0', 'root', 'handle', '1:', 'htb', 'default', '0']);
    const cls = htb.ok ? await tc(['class', 'add', 'dev', 'nfp0', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '1mbit']) : htb;
    caps.tcHtb = feat(cls, 'sch_htb works', 'tc qdisc htb refused');
    const u32 = await tc(['filter', 'add', 'dev', 'nfp0', 'parent', '1:', 'protocol', 'all', 'prio', '1', 'u32', 'match', 'ip', 'dst', '198.18.0.1/32', 'flowid', '1:10']);
    caps.tcU32 = htb.ok ? feat(u32, 'cls_u32 works (addresses, ports, protocol)', 'tc filter u32 refused') : no('needs HTB to probe');
    const bpf = await tc(['filter', 'add', 'dev', 'nfp0', 'parent', '1:', 'protocol', 'all', 'prio', '2', 'bpf', 'bytecode', '1,6 0 0 0', 'flowid', '1:10']);
    caps.tcBpf = htb.ok ? feat(bpf, 'cls_bpf works', 'tc filter bpf refused') : no('needs HTB to probe');
    caps.tcClsact = feat(await tc(['qdisc', 'add', 'dev', 'nfp0', 'clsact']), 'clsact qdisc works', 'tc qdisc clsact refused');
    caps.tcIngress = feat(await tc(['qdisc', 'add', 'dev', 'nfp1', 'handle', 'ffff:', 'ingress']), 'ingress qdisc works', 'tc qdisc ingress refused');
    const ifb = await run(['ip', 'link', 'add', 'nfpi', 'type', 'ifb'], { netns: ns });
    caps.ifb = feat(ifb, 'ifb devices can be created', 'ip link add type ifb refused (kernel without CONFIG_IFB?)');
    const target = ifb.ok ? 'nfpi' : 'nfp0';
    const mirred = await tc(['filter', 'add', 'dev', 'nfp1', 'parent', 'ffff:', 'protocol', 'all', 'prio', '1', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', target]);
    caps.mirred = caps.tcIngress.available ? feat(mirred, 'act_mirred works', 'tc action mirred refused') : no('needs the ingress qdisc to probe');
    const police = await tc(['filter', 'add', 'dev', 'nfp1', 'parent', 'ffff:', 'protocol', 'all', 'prio', '2', 'u32', 'match', 'u32', '0', '0', 'action', 'police', 'rate', '1mbit', 'burst', '100k', 'conform-exceed', 'drop/ok']);
    caps.police = caps.tcIngress.available
      ? police.ok
        ? { available: true, reason: 'act_police works' }
        : { available: false, reason: `this kernel has no tc police action (CONFIG_NET_ACT_POLICE): ${said(police)}` }
      : no('needs the ingress qdisc to probe');
    const nftDoc = {
      nftables: [
        { add: { table: { family: 'inet', name: 'netfence_probe' } } },
        { add: { chain: { family: 'inet', table: 'netfence_probe', name: 'c', type: 'filter', hook: 'postrouting', prio: 0, policy: 'accept' } } },
        { add: { rule: { family: 'inet', table: 'netfence_probe', chain: 'c', expr: [{ limit: { rate: 1000, rate_unit: 'bytes', per: 'second', burst: 1000, burst_unit: 'bytes', inv: true } }, { drop: null }] } } },
      ],
    };
    caps.nftLimit = feat(await run(['nft', '-c', '-j', '-f', '-'], { netns: ns, input: JSON.stringify(nftDoc) }), 'nft limit (bytes) works', 'nft limit refused');
    const quotaDoc = {
      nftables: [
        nftDoc.nftables[0],
        { add: { quota: { family: 'inet', table: 'netfence_probe', name: 'q', bytes: 1000, inv: true } } },
      ],
    };
    caps.nftQuota = feat(await run(['nft', '-c', '-j', '-f', '-'], { netns: ns, input: JSON.stringify(quotaDoc) }), 'nft quota works', 'nft quota refused');
    if (!cgroup2Mount) caps.nftSocketCgroupv2 = no('cgroup v2 is not mounted (no cgroup2 line in /proc/self/mountinfo)');
    else {
      const ref = nftCgroupRef(cgroup2Mount, '');
      const text = `add table inet netfence_probe\nadd chain inet netfence_probe o { type filter hook output priority 0; }\nadd rule inet netfence_probe o socket cgroupv2 level 0 "${ref.path || '.'}" counter\n`;
      caps.nftSocketCgroupv2 = feat(await run(['nft', '-c', '-f', '-'], { netns: ns, input: text }), `nft socket cgroupv2 works (cgroup2 at ${cgroup2Mount})`, 'nft socket cgroupv2 refused');
    }
  } finally {
    await destroyProbeNamespace(probeNs);
  }
  return caps;
}
