/**
 * tc probes: every qdisc, action and classifier is really added on a veth of
 * a throwaway namespace (the namespace, and everything in it, is deleted when
 * detection ends). Nothing is added to the machine's own namespace.
 * @module
 */
import type { CapabilityEntry } from './schema.js';
import { attempt } from './probe-ns.js';
import { parseIprouteVersion } from './parse.js';

/** `ip -batch` lines that create the devices the tc probes use (veth pairs q0/r0 ... q5/r5). */
export const TC_SETUP = [0, 1, 2, 3, 4, 5].map((i) => `link add q${i} type veth peer name r${i}`);

type Run = <T>(task: () => Promise<T>) => Promise<T>;

/** What the tc probes found. */
export interface TcResult {
  present: CapabilityEntry;
  qdiscs: { htb: CapabilityEntry; tbf: CapabilityEntry; ingress: CapabilityEntry; clsact: CapabilityEntry; netem: CapabilityEntry; fqCodel: CapabilityEntry };
  actions: { police: CapabilityEntry; mirred: CapabilityEntry; gact: CapabilityEntry };
  classifiers: { u32: CapabilityEntry; flower: CapabilityEntry; matchall: CapabilityEntry; fw: CapabilityEntry; cgroup: CapabilityEntry; bpf: CapabilityEntry };
  ifb: CapabilityEntry;
}

function explainTc(reason: string, kind: 'qdisc' | 'action' | 'classifier', setupError?: string): string {
  if (setupError && /Cannot find device/i.test(reason)) return `the probe device could not be created (${setupError}); tc said: ${reason}`;
  if (/qdisc kind is unknown/i.test(reason)) return `the kernel has no such ${kind} (${reason})`;
  if (/Failed to load TC action module/i.test(reason)) return `the kernel has no such ${kind} module (${reason})`;
  if (/classifier not found/i.test(reason)) return `the kernel has no such ${kind} (${reason})`;
  return reason;
}

async function step(argvs: string[][], ns: string, kind: 'qdisc' | 'action' | 'classifier', run: Run, setupError?: string): Promise<CapabilityEntry> {
  for (const argv of argvs) {
    const r = await run(() => attempt(argv, { netns: ns, timeoutMs: 10_000 }));
    if (r.err) return { available: false, reason: explainTc(r.val, kind, setupError), detail: { probe: argv.join(' ') } };
  }
  return { available: true, detail: { probe: argvs.map((a) => a.join(' ')).join(' && ') } };
}

/** Probe tc in the throwaway namespace `ns` (undefined when none could be created: every entry says so). */
export async function probeTc(ns: string | undefined, nsReason: string | undefined, run: Run, setupError?: string): Promise<TcResult> {
  const v = await attempt(['tc', '-V'], { timeoutMs: 5_000 });
  const present: CapabilityEntry = v.ok ? { available: true, detail: { ...parseIprouteVersion(v.val.stdout), raw: v.val.stdout.trim() } } : { available: false, reason: `tc not usable: ${v.val}` };
  const none = (why: string): CapabilityEntry => ({ available: false, reason: why });
  if (!v.ok || !ns) {
    const why = !v.ok ? (present.reason as string) : `not probed: no throwaway namespace (${nsReason ?? 'unknown reason'}); tc features are only probed by really adding them there`;
    const n = none(why);
    return {
      present,
      qdiscs: { htb: n, tbf: n, ingress: n, clsact: n, netem: n, fqCodel: n },
      actions: { police: n, mirred: n, gact: n },
      classifiers: { u32: n, flower: n, matchall: n, fw: n, cgroup: n, bpf: n },
      ifb: n,
    };
  }
  const tc = (...a: string[]): string[] => ['tc', ...a];
  const [htb, tbf, netem, fqCodel, ingress, clsact, police, mirred, gact, ifb] = await Promise.all([
    step([tc('qdisc', 'add', 'dev', 'q0', 'root', 'handle', '1:', 'htb', 'default', '10'), tc('class', 'add', 'dev', 'q0', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '10mbit')], ns, 'qdisc', run, setupError),
    step([tc('qdisc', 'add', 'dev', 'q1', 'root', 'tbf', 'rate', '1mbit', 'burst', '32kbit', 'latency', '400ms')], ns, 'qdisc', run, setupError),
    step([tc('qdisc', 'add', 'dev', 'q2', 'root', 'netem', 'delay', '1ms')], ns, 'qdisc', run, setupError),
    step([tc('qdisc', 'add', 'dev', 'q3', 'root', 'fq_codel')], ns, 'qdisc', run, setupError),
    step([tc('qdisc', 'add', 'dev', 'q4', 'ingress')], ns, 'qdisc', run, setupError),
    step([tc('qdisc', 'add', 'dev', 'q5', 'clsact')], ns, 'qdisc', run, setupError),
    step([tc('actions', 'add', 'action', 'police', 'rate', '1mbit', 'burst', '10k', 'drop', 'index', '1')], ns, 'action', run, setupError),
    step([tc('actions', 'add', 'action', 'mirred', 'egress', 'redirect', 'dev', 'q0', 'index', '2')], ns, 'action', run, setupError),
    step([tc('actions', 'add', 'action', 'gact', 'drop', 'index', '3')], ns, 'action', run, setupError),
    run(() => attempt(['ip', 'link', 'add', 'nfcapifb0', 'type', 'ifb'], { netns: ns, timeoutMs: 10_000 })).then(
      (r): CapabilityEntry => (r.ok ? { available: true, detail: { probe: 'ip link add nfcapifb0 type ifb' } } : { available: false, reason: /Unknown device type/i.test(r.val) ? `the kernel has no ifb driver (${r.val})` : r.val }),
    ),
  ]);
  // Classifiers hang off the clsact (or ingress) qdisc added above.
  const dev = clsact.available ? 'q5' : ingress.available ? 'q4' : undefined;
  let classifiers: TcResult['classifiers'];
  if (!dev) {
    const n = none('not probed: neither a clsact nor an ingress qdisc could be added to attach a filter to');
    classifiers = { u32: n, flower: n, matchall: n, fw: n, cgroup: n, bpf: n };
  } else {
    const f = (prio: number, ...a: string[]): string[][] => [tc('filter', 'add', 'dev', dev, 'ingress', 'prio', String(prio), ...a)];
    const [u32, flower, matchall, fw, cgroup, bpf] = await Promise.all([
      step(f(1, 'protocol', 'ip', 'u32', 'match', 'ip', 'src', '198.18.0.1/32'), ns, 'classifier', run, setupError),
      step(f(2, 'protocol', 'ip', 'flower', 'src_ip', '198.18.0.1'), ns, 'classifier', run, setupError),
      // matchall and fw refuse a filter without options (EINVAL), cgroup one without a handle:
      // give each the smallest valid configuration, so "no" only means the kernel lacks it.
      step(f(3, 'matchall', 'classid', '1:1'), ns, 'classifier', run, setupError),
      step(f(4, 'handle', '5', 'fw', 'classid', '1:1'), ns, 'classifier', run, setupError),
      step(f(5, 'handle', '1', 'cgroup'), ns, 'classifier', run, setupError),
      step(f(6, 'bpf', 'bytecode', '1,6 0 0 0'), ns, 'classifier', run, setupError),
    ]);
    classifiers = { u32, flower, matchall, fw, cgroup, bpf };
  }
  return { present, qdiscs: { htb, tbf, ingress, clsact, netem, fqCodel }, actions: { police, mirred, gact }, classifiers, ifb };
}
