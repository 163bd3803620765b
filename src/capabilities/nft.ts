/**
 * nftables probes: the nft binary, its version and JSON support, and one
 * probe per kernel feature. Each feature is tried as JSON (what netfence
 * emits) and, when JSON cannot express it with this nft, as text:
 *
 * 1. `nft -c` in the target namespace (nothing is committed there), then
 * 2. a real commit of the same input in a throwaway namespace, listed back
 *    and checked, because `nft -c` can accept what the kernel later refuses or
 *    what nft silently drops (nft 1.0.6 ignores JSON table flags, for one).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { nftProgram, type NftProgram } from '../host/run.js';
import type { NftFeatureEntry, NftFeatureName, CapabilityEntry } from './schema.js';
import { attempt } from './probe-ns.js';
import { parseNftVersion } from './parse.js';
import { parseListingText } from '../nft/listing.js';

type Cmd = Record<string, unknown>;

/** One feature probe: the same content as JSON commands and as nft text. */
interface NftProbe {
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
const PROBES: NftProbe[] = [
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

/** Result of `nft --version` and `nft -j list tables`. */
export interface NftBasics {
  binary: NftProgram & { path: string | null };
  present: CapabilityEntry;
  version: string | null;
  json: CapabilityEntry;
}

/** The executable file `program` runs: itself when absolute, else the first match in `PATH`; null when none. */
export function resolveProgram(program: string, path = process.env.PATH ?? ''): string | null {
  const candidates = program.includes('/') ? [program] : path.split(':').filter(Boolean).map((d) => join(d, program));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* not there, or not executable */
    }
  }
  return null;
}

/** Probe the nft binary: which one, present, version, JSON support (a read-only listing in the target namespace). */
export async function probeNftBasics(netns: string | undefined): Promise<NftBasics> {
  const program = nftProgram();
  const binary = { ...program, path: resolveProgram(program.program) };
  const v = await attempt(['nft', '--version'], { timeoutMs: 5_000 });
  if (v.err) {
    const reason = `nft not usable (${binary.path ?? program.program}): ${v.val}`;
    return { binary, present: { available: false, reason }, version: null, json: { available: false, reason } };
  }
  const parsed = parseNftVersion(v.val.stdout);
  const present: CapabilityEntry = { available: true, detail: { path: binary.path ?? program.program, version: parsed?.version ?? null, codename: parsed?.codename ?? null, raw: v.val.stdout.trim() } };
  const j = await attempt(['nft', '-j', 'list', 'tables'], { netns, timeoutMs: 5_000 });
  let json: CapabilityEntry;
  if (j.err) json = { available: false, reason: `nft -j list tables failed: ${j.val}` };
  else {
    const doc = parseListingText(j.val.stdout);
    json = doc.ok ? { available: true } : { available: false, reason: `nft -j printed something that is not a JSON listing (${doc.val.issues[0]?.message ?? doc.val.message}): ${j.val.stdout.slice(0, 80)}` };
  }
  return { binary, present, version: parsed?.version ?? null, json };
}

/** One input form (JSON or text) of one probe, as it goes through the phases. */
interface Form {
  probe: NftProbe;
  kind: 'json' | 'text';
  table: string;
  input: string;
  /** Error of the real commit in the probe namespace, or of its verification. */
  commitError?: string;
  committed?: boolean;
  /** Result of `nft -c` in the target namespace. */
  checkError?: string;
  checked?: boolean;
}

type Run = <T>(task: () => Promise<T>) => Promise<T>;

const flagsOf = (f: Form): string[] => (f.kind === 'json' ? ['-j'] : []);

/** Split a text `nft list ruleset` into tables keyed by `family name`. */
export function splitRuleset(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let key: string | undefined;
  let buf: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^table (\S+) (\S+) \{/.exec(line);
    if (m) {
      key = `${m[1]} ${m[2]}`;
      buf = [line];
      continue;
    }
    if (key === undefined) continue;
    buf.push(line);
    if (line === '}') {
      out.set(key, buf.join('\n'));
      key = undefined;
    }
  }
  return out;
}

/** Commit each form in the probe namespace (one transaction each), then list once and verify. */
async function commitAndVerify(forms: Form[], probeNs: string, run: Run): Promise<void> {
  await Promise.all(
    forms.map(async (f) => {
      const r = await run(() => attempt(['nft', ...flagsOf(f), '-f', '-'], { netns: probeNs, input: f.input, timeoutMs: 10_000 }));
      if (r.err) f.commitError = r.val;
      else f.committed = true;
    }),
  );
  if (!forms.some((f) => f.committed)) return;
  const list = await run(() => attempt(['nft', 'list', 'ruleset'], { netns: probeNs, timeoutMs: 10_000 }));
  const tables = list.ok ? splitRuleset(list.val.stdout) : new Map<string, string>();
  for (const f of forms) {
    if (!f.committed) continue;
    const body = tables.get(`${f.probe.family} ${f.table}`);
    if (f.probe.verify === 'absent') {
      if (body !== undefined) {
        f.committed = false;
        f.commitError = f.probe.key === 'tableOwner' ? 'committed, but the table outlived the nft process: the owner flag was silently dropped' : 'committed, but the table is still there';
      }
      continue;
    }
    if (body === undefined) {
      f.committed = false;
      f.commitError = `committed, but the table could not be listed back${list.err ? `: ${list.val}` : ''}`;
      continue;
    }
    const missing = f.probe.verify.filter((re) => !re.test(body));
    if (missing.length) {
      f.committed = false;
      f.commitError = `committed without error, but the listing lacks ${missing.map((r) => `/${r.source}/`).join(', ')}: nft silently dropped part of the input`;
    }
  }
}

/** `nft -c` of several forms of one kind at once in the target; on failure, one by one to attribute it. */
async function checkForms(forms: Form[], target: string | undefined, run: Run): Promise<void> {
  if (forms.length === 0) return;
  const kind = forms[0]?.kind;
  if (forms.length > 1) {
    const input = kind === 'json' ? JSON.stringify({ nftables: forms.flatMap((f) => (JSON.parse(f.input) as { nftables: unknown[] }).nftables) }) : forms.map((f) => f.input).join('\n');
    const all = await run(() => attempt(['nft', '-c', ...flagsOf(forms[0] as Form), '-f', '-'], { netns: target, input, timeoutMs: 10_000 }));
    if (all.ok) {
      for (const f of forms) f.checked = true;
      return;
    }
  }
  await Promise.all(
    forms.map(async (f) => {
      const r = await run(() => attempt(['nft', '-c', ...flagsOf(f), '-f', '-'], { netns: target, input: f.input, timeoutMs: 10_000 }));
      if (r.err) f.checkError = r.val;
      else f.checked = true;
    }),
  );
}

/** Add what a failure means to nft's own message. */
function explainFailure(p: NftProbe, error: string): string {
  // ENOENT: no such expression; EPROTO: no conntrack for the family (bridge without nf_conntrack_bridge).
  if (/Could not process rule: (No such file or directory|Protocol error)/.test(error) && p.kernel) return `the kernel lacks ${p.kernel}: ${error}`;
  if (/syntax error|Unknown object|Invalid|unexpected/i.test(error) && p.nftHint) return `${p.nftHint}: ${error}`;
  return error;
}

function makeForm(p: NftProbe, kind: 'json' | 'text', ctx: NftProbeContext): Form {
  const table = `nfcap_${p.key.toLowerCase().slice(0, 16)}_${randomBytes(3).toString('hex')}_${kind[0]}`;
  const input = kind === 'json' ? JSON.stringify({ nftables: (p.json as NonNullable<NftProbe['json']>)(table, ctx) }) : `${p.text(table, ctx)}\n`;
  return { probe: p, kind, table, input };
}

function verdict(p: NftProbe, ctx: NftProbeContext, json: Form | undefined, text: Form | undefined, verified: 'commit' | 'check'): NftFeatureEntry {
  const probe = p.text('T', ctx).replace(/\s*\n\s*/g, ' ');
  const ok = (f: Form | undefined): boolean => !!f && f.checked === true && (verified === 'check' || f.committed === true);
  const err = (f: Form | undefined): string | undefined => (f ? (f.checkError ?? f.commitError) : undefined);
  const fp = [json, text]
    .filter((f): f is Form => !!f && f.checked === true && f.commitError !== undefined)
    .map((f) => `${f.kind}: nft -c accepted it, but the real commit showed: ${f.commitError}`);
  const falsePositive = fp.length ? { checkFalsePositive: fp.join('; ') } : {};
  if (ok(json)) return { available: true, detail: { json: true, verified, probe, ...falsePositive } };
  const jsonError = p.json ? (err(json) ?? 'not tried') : 'no JSON form';
  const detail = { json: false, jsonError, text: ok(text), verified, probe, ...falsePositive };
  if (ok(text)) return { available: true, reason: `only as nft text: this nft's JSON refused it (${jsonError})`, detail };
  return { available: false, reason: explainFailure(p, err(text) ?? jsonError), detail };
}

/** Probe every nftables feature; `probeNs` is the throwaway namespace for real commits (undefined: `nft -c` only). */
export async function probeNftFeatures(
  basics: NftBasics,
  ctx: NftProbeContext,
  target: string | undefined,
  probeNs: string | undefined,
  run: Run,
): Promise<Record<NftFeatureName, NftFeatureEntry>> {
  const out = {} as Record<NftFeatureName, NftFeatureEntry>;
  if (!basics.present.available) {
    for (const p of PROBES) out[p.key] = { available: false, reason: basics.present.reason ?? 'nft not installed', detail: { json: false, verified: 'check', probe: p.text('T', ctx).replace(/\s*\n\s*/g, ' ') } };
    return out;
  }
  const jsonForms = new Map<NftFeatureName, Form>();
  const textForms = new Map<NftFeatureName, Form>();
  for (const p of PROBES) if (p.json) jsonForms.set(p.key, makeForm(p, 'json', ctx));
  const good = (f: Form | undefined): boolean => !!f && (probeNs ? f.committed === true : f.checked === true);

  if (probeNs) {
    // 1. Real commits in the throwaway namespace, one transaction per probe, listed back once.
    await commitAndVerify([...jsonForms.values()], probeNs, run);
    // 2. Text for what JSON could not do.
    for (const p of PROBES) if (!good(jsonForms.get(p.key))) textForms.set(p.key, makeForm(p, 'text', ctx));
    await commitAndVerify([...textForms.values()], probeNs, run);
    // 3. `nft -c` in the target namespace: what worked, in one batch per syntax; what failed, one by one
    //    (to record whether nft -c would have told the truth).
    const all = [...jsonForms.values(), ...textForms.values()];
    await Promise.all([
      checkForms(all.filter((f) => f.committed && f.kind === 'json'), target, run),
      checkForms(all.filter((f) => f.committed && f.kind === 'text'), target, run),
      ...all.filter((f) => !f.committed).map((f) => checkForms([f], target, run)),
    ]);
  } else {
    await Promise.all([...jsonForms.values()].map((f) => checkForms([f], target, run)));
    for (const p of PROBES) if (!good(jsonForms.get(p.key))) textForms.set(p.key, makeForm(p, 'text', ctx));
    await Promise.all([...textForms.values()].map((f) => checkForms([f], target, run)));
  }
  for (const p of PROBES) out[p.key] = verdict(p, ctx, jsonForms.get(p.key), textForms.get(p.key), probeNs ? 'commit' : 'check');
  if (!out.socketCgroupv2.available && ctx.cgroupPath === undefined) {
    out.socketCgroupv2 = { ...out.socketCgroupv2, reason: `cgroup v2 is not mounted under /sys/fs/cgroup, where nft resolves cgroup paths; ${out.socketCgroupv2.reason ?? ''}`.trim() };
  }
  return out;
}
