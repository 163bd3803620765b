/**
 * The tools `FakeHost` answers by default, each over a small model of one
 * network namespace: `ip` (netns add/del/list/pids, link add/del/set/show
 * with `-j`), `tc` (qdisc/class/filter/actions add/change/del/show, with
 * tc's "File exists" / "No such file or directory" / "Cannot find device"),
 * `sysctl`, `bpftool` (prog load → a pinned fake program, net attach/detach →
 * the link's `xdp` as `ip -j link` shows it), `iptables[-nft]`/`ip6tables`
 * (-A/-I/-D/-C/-S/-F/-N/-X per table and chain), `mount -t bpf`, `modprobe`.
 * Anything else is answered by the test's responders or fails with 127.
 * @module
 */
import { FakeNft, type FakeNftOptions } from './fake-nft.js';
import type { RunOutput } from './run.js';
import type { FakeBpf } from './fake-bpf.js';
import type { FakeFiles } from './fake-files.js';

/** A network interface of a fake namespace. */
export interface FakeLink {
  ifname: string;
  ifindex: number;
  mtu: number;
  link_type: string;
  /** `veth`, `ifb`, `dummy`, `bridge`, ... (`ip -j -d link` linkinfo kind). */
  kind?: string | undefined;
  up: boolean;
  address: string;
  /** XDP program attached (as `ip -j link` shows it: mode 1 native, 2 generic). */
  xdp?: { mode: number; prog: { id: number; name?: string } } | undefined;
}

/** One tc object: its identity and the argv that made it. */
export interface FakeTcObject {
  kind: 'qdisc' | 'class' | 'filter' | 'action';
  dev?: string | undefined;
  key: string;
  argv: string[];
}

/** The state of one fake network namespace. */
export interface FakeNamespace {
  name: string;
  nft: FakeNft;
  links: Map<string, FakeLink>;
  tc: FakeTcObject[];
  sysctl: Map<string, string>;
  /** iptables rules: `family table chain` → rule specs (argv after the chain name). */
  iptables: Map<string, string[][]>;
}

const SYSCTL_DEFAULTS: Record<string, string> = {
  'net.ipv4.ip_forward': '0',
  'net.ipv6.conf.all.forwarding': '0',
  'net.ipv4.conf.all.route_localnet': '0',
  'net.ipv4.conf.default.route_localnet': '0',
  'net.bridge.bridge-nf-call-iptables': '0',
  'net.netfilter.nf_conntrack_acct': '0',
  'net.core.bpf_jit_enable': '1',
};

let macCounter = 1;
/** A fresh namespace with `lo`. */
export function newNamespace(name: string, nftOptions: FakeNftOptions): FakeNamespace {
  const links = new Map<string, FakeLink>();
  const ns: FakeNamespace = { name, nft: new FakeNft({ hasDevice: (d) => links.has(d), ...nftOptions }), links, tc: [], sysctl: new Map(Object.entries(SYSCTL_DEFAULTS)), iptables: new Map() };
  addLink(ns, { ifname: 'lo', link_type: 'loopback', mtu: 65536, address: '00:00:00:00:00:00', up: true });
  return ns;
}

/** Add an interface (ifindex assigned). */
export function addLink(ns: FakeNamespace, l: Partial<FakeLink> & { ifname: string }): FakeLink {
  const ifindex = Math.max(0, ...[...ns.links.values()].map((x) => x.ifindex)) + 1;
  const n = macCounter++;
  const link: FakeLink = { ifindex, mtu: 1500, link_type: 'ether', up: false, address: `02:00:00:00:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`, ...l };
  ns.links.set(l.ifname, link);
  return link;
}

const out = (stdout = '', stderr = '', exitCode = 0): RunOutput => ({ stdout, stderr, exitCode });
const err = (stderr: string, exitCode = 1): RunOutput => ({ stdout: '', stderr, exitCode });
const flagsOff = (argv: readonly string[]): { json: boolean; stats: boolean; words: string[] } => {
  const words: string[] = [];
  let json = false;
  let stats = false;
  for (const a of argv.slice(1)) {
    if (a === '-j' || a === '-json') json = true;
    else if (a === '-s' || a === '-stats' || a === '-d' || a === '-details' || a === '-p' || a === '-pretty') stats ||= a.startsWith('-s');
    else words.push(a);
  }
  return { json, stats, words };
};

function linkJson(l: FakeLink): Record<string, unknown> {
  return {
    ifindex: l.ifindex, ifname: l.ifname, flags: l.up ? ['UP', 'LOWER_UP'] : [], mtu: l.mtu, operstate: l.up ? 'UP' : 'DOWN', link_type: l.link_type, address: l.address,
    ...(l.xdp ? { xdp: l.xdp } : {}), ...(l.kind ? { linkinfo: { info_kind: l.kind } } : {}),
  };
}

/** `ip link ...` / `ip -j link show ...` in `ns`. */
export function ipLink(ns: FakeNamespace, argv: readonly string[]): RunOutput {
  const { json, words } = flagsOff(argv);
  const [, verb = 'show', ...rest] = words;
  if (verb === 'show' || verb === 'list') {
    const dev = rest[0] === 'dev' ? rest[1] : rest[0];
    const links = dev === undefined ? [...ns.links.values()] : [ns.links.get(dev)].filter((l): l is FakeLink => l !== undefined);
    if (dev !== undefined && links.length === 0) return err(`Device "${dev}" does not exist.`);
    return out(json ? JSON.stringify(links.map(linkJson)) : links.map((l) => `${l.ifindex}: ${l.ifname}: mtu ${l.mtu}`).join('\n'));
  }
  if (verb === 'add') {
    const name = rest[0] === 'name' ? rest[1] : rest[0];
    if (!name) return err('Not enough information: "dev" argument is required.');
    if (ns.links.has(name)) return err('RTNETLINK answers: File exists', 2);
    const type = rest[rest.indexOf('type') + 1];
    const mtuAt = rest.indexOf('mtu');
    addLink(ns, { ifname: name, kind: type, ...(mtuAt >= 0 ? { mtu: Number(rest[mtuAt + 1]) } : {}) });
    const peerAt = rest.indexOf('peer');
    if (type === 'veth' && peerAt >= 0) {
      const peer = rest[peerAt + 1] === 'name' ? rest[peerAt + 2] : rest[peerAt + 1];
      if (peer) addLink(ns, { ifname: peer, kind: 'veth' });
    }
    return out();
  }
  const dev = rest[0] === 'dev' ? rest[1] : rest[0];
  const l = dev === undefined ? undefined : ns.links.get(dev);
  if (!l) return err(`Cannot find device "${dev ?? ''}"`);
  if (verb === 'del' || verb === 'delete') {
    ns.links.delete(l.ifname);
    ns.tc = ns.tc.filter((t) => t.dev !== l.ifname);
    return out();
  }
  if (verb === 'set') {
    for (let i = 1; i < rest.length; i++) {
      const a = rest[i];
      if (a === 'up') l.up = true;
      else if (a === 'down') l.up = false;
      else if (a === 'mtu') l.mtu = Number(rest[++i]);
      else if (a === 'xdp' || a === 'xdpgeneric' || a === 'xdpdrv') {
        if (rest[i + 1] === 'off') l.xdp = undefined;
        i++;
      }
    }
    return out();
  }
  return err(`Command "${verb}" is unknown, try "ip link help".`);
}

/** `tc ...` in `ns`: objects keyed like the kernel keys them. */
export function tc(ns: FakeNamespace, argv: readonly string[]): RunOutput {
  const { json, words } = flagsOff(argv);
  const [obj, verb, ...rest] = words;
  const get = (k: string): string | undefined => {
    const i = rest.indexOf(k);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  if (obj === 'actions' || obj === 'action') {
    const kind = rest[rest.indexOf('action') + 1];
    const key = `action ${kind} ${get('index') ?? ''}`;
    const found = ns.tc.find((t) => t.key === key);
    if (verb === 'add') {
      if (found) return err('RTNETLINK answers: File exists\nWe have an error talking to the kernel', 2);
      ns.tc.push({ kind: 'action', key, argv: [...argv] });
      return out();
    }
    if (!found) return err('RTNETLINK answers: No such file or directory\nWe have an error talking to the kernel', 2);
    if (verb === 'del' || verb === 'delete') ns.tc = ns.tc.filter((t) => t !== found);
    else if (verb === 'change' || verb === 'replace') found.argv = [...argv];
    else if (verb === 'get' || verb === 'show' || verb === 'list') {
      const stats = { bytes: 0, packets: 0, drops: 0, overlimits: 0, requeues: 0 };
      return out(json ? JSON.stringify([{ total_acts: 1, actions: [{ order: 1, kind, index: Number(get('index')), ref: 1, bind: 1, stats }] }]) : `action order 1: ${kind} index ${get('index')}`);
    }
    return out();
  }
  const dev = get('dev');
  if (!dev || !ns.links.has(dev)) return err(`Cannot find device "${dev ?? ''}"`);
  if (verb === 'show' || verb === 'list' || verb === 'ls') {
    const mine = ns.tc.filter((t) => t.kind === obj && t.dev === dev);
    const rows = mine.map((t) => {
      const a = t.argv;
      const at = (k: string): string | undefined => (a.indexOf(k) >= 0 ? a[a.indexOf(k) + 1] : undefined);
      const stats = { bytes: 0, packets: 0, drops: 0, overlimits: 0, requeues: 0, backlog: 0, qlen: 0 };
      if (obj === 'class') return { class: a[a.indexOf('classid') + 2] ?? 'htb', handle: at('classid'), parent: at('parent'), stats };
      if (obj === 'qdisc') return { kind: a.includes('clsact') ? 'clsact' : a.includes('ingress') ? 'ingress' : (a[a.length - 1] ?? ''), handle: at('handle'), ...(a.includes('root') ? { root: true } : { parent: at('parent') }), stats };
      return { protocol: at('protocol'), pref: Number(at('prio') ?? 0), kind: 'filter' };
    });
    return out(json ? JSON.stringify(rows) : rows.map((r) => JSON.stringify(r)).join('\n'));
  }
  let key: string;
  if (obj === 'qdisc') key = `qdisc ${dev} ${rest.includes('root') ? 'root' : rest.includes('clsact') || rest.includes('ingress') ? 'ingress' : (get('parent') ?? get('handle') ?? '')}`;
  else if (obj === 'class') key = `class ${dev} ${get('classid') ?? ''}`;
  else if (obj === 'filter') key = `filter ${dev} ${get('parent') ?? (rest.includes('ingress') ? 'ingress' : rest.includes('egress') ? 'egress' : '')} ${get('protocol') ?? 'all'} ${get('prio') ?? get('pref') ?? ''}`;
  else return err(`Object "${obj ?? ''}" is unknown, try "tc help".`);
  const found = ns.tc.find((t) => t.key === key);
  if (verb === 'add') {
    if (found) return err('RTNETLINK answers: File exists\nWe have an error talking to the kernel', 2);
    if (obj !== 'qdisc' && !ns.tc.some((t) => t.kind === 'qdisc' && t.dev === dev)) return err('RTNETLINK answers: No such file or directory\nWe have an error talking to the kernel', 2);
    ns.tc.push({ kind: obj, dev, key, argv: [...argv] });
    return out();
  }
  if (verb === 'replace') {
    if (found) found.argv = [...argv];
    else ns.tc.push({ kind: obj, dev, key, argv: [...argv] });
    return out();
  }
  if (!found) return err('RTNETLINK answers: No such file or directory\nWe have an error talking to the kernel', 2);
  if (verb === 'change') found.argv = [...argv];
  else if (verb === 'del' || verb === 'delete') {
    // a qdisc takes its classes and filters with it, a class its leaf qdisc
    const leafOf = obj === 'class' ? `qdisc ${dev} ${get('classid') ?? ''}` : undefined;
    ns.tc = obj === 'qdisc' ? ns.tc.filter((t) => t !== found && !(t.dev === dev && (key.endsWith(' root') ? true : t.kind !== 'qdisc' && (t.key.includes(' ingress') || t.key.includes(' egress') || t.key.includes(' ffff:'))))) : ns.tc.filter((t) => t !== found && t.key !== leafOf);
  } else return err(`Command "${verb ?? ''}" is unknown, try "tc ${obj} help".`);
  return out();
}

/** `sysctl -n key` / `sysctl [-q] -w key=value`. */
export function sysctl(ns: FakeNamespace, argv: readonly string[]): RunOutput {
  const words = argv.slice(1).filter((a) => a !== '-q' && a !== '-e');
  if (words[0] === '-w') {
    const [k, v] = (words[1] ?? '').split('=');
    if (!k || v === undefined || !ns.sysctl.has(k)) return err(`sysctl: cannot stat /proc/sys/${(k ?? '').replace(/\./g, '/')}: No such file or directory`, 255);
    ns.sysctl.set(k, v);
    return out();
  }
  const k = words[0] === '-n' ? words[1] : words[0];
  const v = k === undefined ? undefined : ns.sysctl.get(k);
  if (v === undefined) return err(`sysctl: cannot stat /proc/sys/${(k ?? '').replace(/\./g, '/')}: No such file or directory`, 255);
  return out(words[0] === '-n' ? v : `${k} = ${v}`);
}

/** `iptables[-nft]` / `ip6tables[-nft]` rule lists. */
export function iptables(ns: FakeNamespace, argv: readonly string[]): RunOutput {
  const fam = argv[0]!.startsWith('ip6') ? 'ip6' : 'ip';
  const args = argv.slice(1).filter((a) => a !== '-w' && a !== '--wait');
  let table = 'filter';
  const ti = args.indexOf('-t');
  if (ti >= 0) {
    table = args[ti + 1] ?? 'filter';
    args.splice(ti, 2);
  }
  const [op, chain, ...spec] = args;
  const key = `${fam} ${table} ${chain ?? ''}`;
  const builtin = ['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING'].includes(chain ?? '');
  if (!ns.iptables.has(key) && builtin) ns.iptables.set(key, []);
  const rules = ns.iptables.get(key);
  const same = (r: string[]): boolean => r.join('\0') === spec.join('\0');
  switch (op) {
    case '-N':
      if (rules) return err('iptables: Chain already exists.');
      ns.iptables.set(key, []);
      return out();
    case '-X':
      if (!rules) return err('iptables: No chain/target/match by that name.');
      ns.iptables.delete(key);
      return out();
    case '-S':
      return out((chain ? [[key, rules ?? []] as const] : [...ns.iptables].filter(([k]) => k.startsWith(`${fam} ${table} `))).flatMap(([k, rs]) => rs.map((r) => `-A ${k.split(' ')[2]} ${r.join(' ')}`)).join('\n'));
    case '-F':
      if (chain && rules) rules.length = 0;
      else if (!chain) for (const [k, rs] of ns.iptables) if (k.startsWith(`${fam} ${table} `)) rs.length = 0;
      return out();
  }
  if (!rules) return err(`iptables: No chain/target/match by that name.`);
  if (op === '-A') rules.push(spec);
  else if (op === '-I') rules.unshift(/^\d+$/.test(spec[0] ?? '') ? spec.slice(1) : spec);
  else if (op === '-C' || op === '-D') {
    const i = rules.findIndex(same);
    if (i < 0) return err('iptables: Bad rule (does a matching rule exist in that chain?).');
    if (op === '-D') rules.splice(i, 1);
  } else return err(`iptables v1.8.9 (nf_tables): unknown option "${op ?? ''}"`, 2);
  return out();
}

/** `bpftool prog load|show`, `bpftool net attach|detach`, `bpftool map ...` (a subset). */
export function bpftool(ns: FakeNamespace, argv: readonly string[], bpf: FakeBpf, files: FakeFiles): RunOutput {
  const words = argv.slice(1).filter((a) => a !== '-j' && a !== '--json' && a !== '-p' && a !== '-f');
  const [obj, verb, ...rest] = words;
  if (obj === 'prog' && (verb === 'load' || verb === 'loadall')) {
    const [object, pin] = rest;
    if (!object || !pin) return err('Error: expected object file and pin path');
    if (!files.exists(object)) return err(`libbpf: elf: failed to open ${object}: No such file or directory\nError: failed to open object file`, 255);
    if (files.exists(pin)) return err(`Error: failed to pin program: File exists`, 255);
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] !== 'pinned') continue;
      const m = files.node(rest[i + 1] ?? '');
      if (!m || m.type !== 'pin') return err(`Error: bpf obj get (${rest[i + 1] ?? ''}): No such file or directory`, 255);
    }
    try {
      bpf.loadPinned(pin, 'xdp_blocklist', 6);
    } catch (e) {
      return err(`Error: failed to pin program: ${(e as Error).message}`, 255);
    }
    return out();
  }
  if (obj === 'net' && (verb === 'attach' || verb === 'detach')) {
    const mode = rest[0];
    const devAt = rest.indexOf('dev');
    const dev = devAt >= 0 ? rest[devAt + 1] : undefined;
    const l = dev ? ns.links.get(dev) : undefined;
    if (!l) return err(`Error: invalid devname ${dev ?? ''}`, 255);
    const m = mode === 'xdpdrv' ? 1 : mode === 'xdpgeneric' ? 2 : mode === 'xdp' ? 1 : 0;
    if (verb === 'detach') {
      if (l.xdp && l.xdp.mode === m) l.xdp = undefined;
      return out();
    }
    const pin = rest[rest.indexOf('pinned') + 1];
    const node = pin ? files.node(pin) : undefined;
    if (!node || node.type !== 'pin') return err(`Error: bpf obj get (${pin ?? ''}): No such file or directory`, 255);
    if (l.xdp && !rest.includes('overwrite')) return err('Error: interface already has an XDP program; use overwrite', 255);
    const prog = node.object as { id: number; name: string };
    l.xdp = { mode: m, prog: { id: prog.id, name: prog.name } };
    return out();
  }
  return err(`Error: fake bpftool: unsupported command ${words.join(' ')}`, 255);
}
