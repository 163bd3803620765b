/**
 * The nftables feature probes: for each feature of the capability report,
 * the same content as JSON commands and as nft text, and what a listing must
 * show for the feature to count (run by nft.ts). The probe forms are written
 * as plain JSON on purpose: they test what this nft and kernel accept,
 * including forms netfence's typed model does not emit.
 * @module
 */
import type { NftFeatureName } from './schema.js';

type Cmd = Record<string, unknown>;

/** One feature probe: the same content as JSON commands and as nft text. */
export interface NftProbe {
  key: NftFeatureName;
  family: 'inet' | 'ip' | 'netdev' | 'bridge';
  /** JSON commands (without the `{"nftables": [...]}` wrapper) for table `t`. */
  json?: (t: string, ctx: NftProbeContext) => Cmd[];
  /** The same as nft text for table `t`. */
  text: (t: string, ctx: NftProbeContext) => string;
  /** Check the text listing of the committed table; `absent` means the table must be gone after nft exits. */
  verify: RegExp[] | 'absent';
  /** What the kernel lacks when it answers ENOENT (e.g. `the nft queue expression (nft_queue)`). */
  kernel?: string;
  /** What a parse error of this nft means. */
  nftHint?: string;
}

/** Inputs some probes need. */
export interface NftProbeContext {
  /** Path for `socket cgroupv2` (relative to /sys/fs/cgroup), undefined when cgroup v2 is not under /sys/fs/cgroup. */
  cgroupPath: string | undefined;
}

const table = (family: string, t: string, extra: Cmd = {}): Cmd => ({ add: { table: { family, name: t, ...extra } } });
const chain = (family: string, t: string, name: string, base?: { type: string; hook: string; prio: number; dev?: string }): Cmd => ({
  add: { chain: { family, table: t, name, ...(base ? { ...base, policy: 'accept' } : {}) } },
});
const rule = (family: string, t: string, c: string, expr: unknown[]): Cmd => ({ add: { rule: { family, table: t, chain: c, expr } } });
const ip = (field: string): Cmd => ({ payload: { protocol: 'ip', field } });

/** The probes. Each uses only test addresses (198.18.0.0/15) and loopback. */
export const PROBES: NftProbe[] = [
  {
    key: 'queue',
    family: 'inet',
    json: (t) => [table('inet', t), chain('inet', t, 'c', { type: 'filter', hook: 'forward', prio: 0 }), rule('inet', t, 'c', [{ queue: { num: 1, flags: ['bypass'] } }])],
    text: (t) => `table inet ${t} {\nchain c {\ntype filter hook forward priority 0; policy accept\nqueue num 1 bypass\n}\n}`,
    verify: [/\bqueue\b/],
    kernel: 'the nft queue expression (nft_queue, CONFIG_NFT_QUEUE)',
  },
  {
    key: 'socketCgroupv2',
    family: 'inet',
    json: (t, ctx) => [
      table('inet', t),
      chain('inet', t, 'c', { type: 'filter', hook: 'output', prio: 0 }),
      rule('inet', t, 'c', [{ match: { op: '==', left: { socket: { key: 'cgroupv2', level: 1 } }, right: ctx.cgroupPath ?? '.' } }, { counter: null }]),
    ],
    text: (t, ctx) => `table inet ${t} {\nchain c {\ntype filter hook output priority 0; policy accept\nsocket cgroupv2 level 1 "${ctx.cgroupPath ?? '.'}" counter\n}\n}`,
    verify: [/socket cgroupv2 level 1/],
    kernel: 'the nft socket expression (nft_socket, CONFIG_NFT_SOCKET) or its cgroupv2 key (Linux >= 5.13)',
  },
  {
    key: 'flowtable',
    family: 'inet',
    json: (t) => [table('inet', t), { add: { flowtable: { family: 'inet', table: t, name: 'ft', hook: 'ingress', prio: 0, dev: ['lo'] } } }],
    text: (t) => `table inet ${t} {\nflowtable ft {\nhook ingress priority 0\ndevices = { lo }\n}\n}`,
    verify: [/flowtable ft/],
    kernel: 'nft flowtables (nf_flow_table, CONFIG_NF_FLOW_TABLE / CONFIG_NFT_FLOW_OFFLOAD)',
  },
  {
    key: 'destroy',
    family: 'inet',
    json: (t) => [table('inet', t), { destroy: { table: { family: 'inet', name: t } } }, { destroy: { table: { family: 'inet', name: `${t}_none` } } }],
    text: (t) => `add table inet ${t}\ndestroy table inet ${t}\ndestroy table inet ${t}_none`,
    verify: 'absent',
    nftHint: 'this nft does not know the destroy command (it needs a newer nft, and Linux >= 6.3)',
  },
  {
    key: 'tableOwner',
    family: 'inet',
    json: (t) => [table('inet', t, { flags: ['owner'] })],
    text: (t) => `table inet ${t} {\nflags owner\n}`,
    // An owned table disappears when the nft process that created it exits.
    verify: 'absent',
  },
  {
    // nft 1.0.6 accepts a table comment in JSON and silently drops it; the text form works there.
    key: 'tableComment',
    family: 'inet',
    json: (t) => [table('inet', t, { comment: 'netfence:probe' })],
    text: (t) => `table inet ${t} {\ncomment "netfence:probe"\n}`,
    verify: [/comment "netfence:probe"/],
  },
  {
    key: 'limit',
    family: 'inet',
    json: (t) => [table('inet', t), chain('inet', t, 'c'), rule('inet', t, 'c', [{ limit: { rate: 10, rate_unit: 'mbytes', per: 'second', inv: true } }, { drop: null }])],
    text: (t) => `table inet ${t} {\nchain c {\nlimit rate over 10 mbytes/second drop\n}\n}`,
    verify: [/limit rate over 10 mbytes\/second/],
  },
  {
    key: 'quota',
    family: 'inet',
    json: (t) => [table('inet', t), chain('inet', t, 'c'), rule('inet', t, 'c', [{ quota: { val: 10, val_unit: 'mbytes', inv: true } }, { drop: null }])],
    text: (t) => `table inet ${t} {\nchain c {\nquota over 10 mbytes drop\n}\n}`,
    verify: [/quota over 10 mbytes/],
  },
  {
    key: 'ctCount',
    family: 'inet',
    json: (t) => [table('inet', t), chain('inet', t, 'c'), rule('inet', t, 'c', [{ 'ct count': { val: 10, inv: true } }, { drop: null }])],
    text: (t) => `table inet ${t} {\nchain c {\nct count over 10 drop\n}\n}`,
    verify: [/ct count over 10/],
  },
  {
    key: 'connlimit',
    family: 'inet',
    json: (t) => [
      table('inet', t),
      { add: { set: { family: 'inet', table: t, name: 's', type: 'ipv4_addr', flags: ['dynamic'] } } },
      chain('inet', t, 'c'),
      rule('inet', t, 'c', [{ set: { op: 'add', elem: ip('saddr'), set: '@s', stmt: [{ 'ct count': { val: 10, inv: true } }] } }, { drop: null }]),
    ],
    text: (t) => `table inet ${t} {\nset s {\ntype ipv4_addr\nflags dynamic\n}\nchain c {\nadd @s { ip saddr ct count over 10 } drop\n}\n}`,
    verify: [/ct count over 10/],
  },
  {
    key: 'inetNat',
    family: 'inet',
    json: (t) => [
      table('inet', t),
      chain('inet', t, 'pre', { type: 'nat', hook: 'prerouting', prio: -100 }),
      rule('inet', t, 'pre', [{ match: { op: '==', left: ip('daddr'), right: '198.18.0.1' } }, { dnat: { family: 'ip', addr: '198.18.0.2' } }]),
      chain('inet', t, 'post', { type: 'nat', hook: 'postrouting', prio: 100 }),
      rule('inet', t, 'post', [{ match: { op: '==', left: ip('saddr'), right: { prefix: { addr: '198.18.1.0', len: 24 } } } }, { snat: { family: 'ip', addr: '198.18.0.9' } }]),
      rule('inet', t, 'post', [{ masquerade: null }]),
    ],
    text: (t) =>
      `table inet ${t} {\nchain pre {\ntype nat hook prerouting priority -100; policy accept\nip daddr 198.18.0.1 dnat ip to 198.18.0.2\n}\n` +
      `chain post {\ntype nat hook postrouting priority 100; policy accept\nip saddr 198.18.1.0/24 snat ip to 198.18.0.9\nmasquerade\n}\n}`,
    verify: [/dnat ip to 198\.18\.0\.2/, /snat ip to 198\.18\.0\.9/, /masquerade/],
  },
  {
    key: 'netdevIngress',
    family: 'netdev',
    json: (t) => [table('netdev', t), chain('netdev', t, 'c', { type: 'filter', hook: 'ingress', prio: 0, dev: 'lo' })],
    text: (t) => `table netdev ${t} {\nchain c {\ntype filter hook ingress device "lo" priority 0; policy accept\n}\n}`,
    verify: [/hook ingress/],
  },
  {
    key: 'netdevEgress',
    family: 'netdev',
    json: (t) => [table('netdev', t), chain('netdev', t, 'c', { type: 'filter', hook: 'egress', prio: 0, dev: 'lo' })],
    text: (t) => `table netdev ${t} {\nchain c {\ntype filter hook egress device "lo" priority 0; policy accept\n}\n}`,
    verify: [/hook egress/],
  },
  {
    key: 'synproxy',
    family: 'inet',
    json: (t) => [
      table('inet', t),
      chain('inet', t, 'c', { type: 'filter', hook: 'input', prio: 0 }),
      rule('inet', t, 'c', [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 80 } }, { synproxy: { mss: 1460, wscale: 7 } }]),
    ],
    text: (t) => `table inet ${t} {\nchain c {\ntype filter hook input priority 0; policy accept\ntcp dport 80 synproxy mss 1460 wscale 7\n}\n}`,
    verify: [/synproxy mss 1460 wscale 7/],
  },
  {
    key: 'inetIngress',
    family: 'inet',
    json: (t) => [table('inet', t), chain('inet', t, 'c', { type: 'filter', hook: 'ingress', prio: 0, dev: 'lo' })],
    text: (t) => `table inet ${t} {\nchain c {\ntype filter hook ingress device "lo" priority 0; policy accept\n}\n}`,
    verify: [/hook ingress/],
  },
  {
    key: 'ctPackets',
    family: 'inet',
    json: (t) => [table('inet', t), chain('inet', t, 'c'), rule('inet', t, 'c', [{ match: { op: '<', left: { ct: { key: 'packets', dir: 'original' } }, right: 10 } }, { accept: null }])],
    text: (t) => `table inet ${t} {\nchain c {\nct original packets < 10 accept\n}\n}`,
    verify: [/ct original packets < 10/],
  },
  {
    key: 'ctMarkSet',
    family: 'inet',
    json: (t) => [table('inet', t), chain('inet', t, 'c'), rule('inet', t, 'c', [{ mangle: { key: { ct: { key: 'mark' } }, value: 1 } }])],
    text: (t) => `table inet ${t} {\nchain c {\nct mark set 0x1\n}\n}`,
    verify: [/ct mark set 0x0*1\b/],
  },
  {
    key: 'rejectTcpReset',
    family: 'inet',
    json: (t) => [
      table('inet', t),
      chain('inet', t, 'c', { type: 'filter', hook: 'input', prio: 0 }),
      rule('inet', t, 'c', [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } }, { reject: { type: 'tcp reset' } }]),
    ],
    text: (t) => `table inet ${t} {\nchain c {\ntype filter hook input priority 0; policy accept\nmeta l4proto tcp reject with tcp reset\n}\n}`,
    verify: [/reject with tcp reset/],
  },
  {
    // The kernel accepts bridge `reject` only in the prerouting and input hooks
    // (nft_reject_bridge); a forward-hook probe answers "no" on every kernel.
    key: 'bridgeReject',
    family: 'bridge',
    json: (t) => [
      table('bridge', t),
      chain('bridge', t, 'c', { type: 'filter', hook: 'prerouting', prio: 0 }),
      rule('bridge', t, 'c', [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } }, { reject: { type: 'tcp reset' } }]),
      rule('bridge', t, 'c', [{ reject: { type: 'icmpx', expr: 'port-unreachable' } }]),
    ],
    text: (t) => `table bridge ${t} {\nchain c {\ntype filter hook prerouting priority 0; policy accept\nmeta l4proto tcp reject with tcp reset\nreject with icmpx port-unreachable\n}\n}`,
    // nft lists `reject with icmpx port-unreachable` as plain `reject` (the bridge default).
    verify: [/reject with tcp reset/, /^\s*reject(\s+with icmpx\b.*)?$/m],
    kernel: 'bridge reject (nft_reject_bridge, CONFIG_NFT_BRIDGE_REJECT)',
  },
  {
    key: 'bridgeConntrack',
    family: 'bridge',
    json: (t) => [
      table('bridge', t),
      chain('bridge', t, 'c', { type: 'filter', hook: 'prerouting', prio: -150 }),
      rule('bridge', t, 'c', [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } }, { accept: null }]),
    ],
    text: (t) => `table bridge ${t} {\nchain c {\ntype filter hook prerouting priority -150; policy accept\nct state established,related accept\n}\n}`,
    verify: [/ct state established,related accept/],
    kernel: 'bridge conntrack (nf_conntrack_bridge, CONFIG_NF_CONNTRACK_BRIDGE)',
  },
  {
    key: 'setTimeout',
    family: 'inet',
    json: (t) => [
      table('inet', t),
      { add: { set: { family: 'inet', table: t, name: 's', type: 'ipv4_addr', flags: ['timeout'] } } },
      { add: { element: { family: 'inet', table: t, name: 's', elem: [{ elem: { val: '198.18.0.1', timeout: 3600 } }] } } },
    ],
    text: (t) => `table inet ${t} {\nset s {\ntype ipv4_addr\nflags timeout\nelements = { 198.18.0.1 timeout 1h }\n}\n}`,
    verify: [/198\.18\.0\.1 timeout/],
  },
  {
    key: 'intervalSet',
    family: 'inet',
    json: (t) => [
      table('inet', t),
      { add: { set: { family: 'inet', table: t, name: 's', type: 'ipv4_addr', flags: ['interval'] } } },
      { add: { element: { family: 'inet', table: t, name: 's', elem: [{ prefix: { addr: '198.18.0.0', len: 15 } }] } } },
    ],
    text: (t) => `table inet ${t} {\nset s {\ntype ipv4_addr\nflags interval\nelements = { 198.18.0.0/15 }\n}\n}`,
    verify: [/198\.18\.0\.0\/15/],
  },
];

/** The nft feature keys in probe order (for tests and docs). */
export const NFT_PROBE_KEYS: NftFeatureName[] = PROBES.map((p) => p.key);
