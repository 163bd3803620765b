/**
 * fast-check generators for every builder's input (mostly valid, with
 * targeted corruptions, plus fully random values) and pure harnesses that run
 * a builder's validation + compile path and classify the outcome as a typed
 * error or a plan. Used by test/unit/hostile-*.test.ts (properties, corpus)
 * and test/kernel/hostile-nft-check.test.ts (plans through `nft -c`).
 *
 * Case counts: NETFENCE_HOSTILE_CASES (default 10000 per builder, and the
 * minimum: a smaller value fails the suite, see knobs.ts).
 */
import fc from 'fast-check';
import { fromZodIssues, NetfenceError, UnsupportedError, ValidationError } from '../../src/errors.js';
import { Firewall } from '../../src/firewall/firewall.js';
import type { VmBackends } from '../../src/firewall/vm.js';
import { NetfenceRouteManager as NFTablesManager, SMARTPROXY_CHAINS, type IRouteConfig } from '../../src/integrations/smartproxy.js';
import { emptyPlan, type Plan } from '../../src/plan/types.js';
import { selectBackend } from '../../src/throttle/backends/index.js';
import type { ThrottleCaps } from '../../src/throttle/caps.js';
import { compileLimit, type CompileContext } from '../../src/throttle/compile.js';
import { LimitSchema } from '../../src/throttle/types.js';
import { Throttler } from '../../src/throttle/throttler.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { nestedPrefixIssues, parseEntries } from '../../src/xdp/entries.js';
import { NftBlocklist } from '../../src/xdp/nft-backend.js';
import { DpiBlocker } from '../../src/dpi/dpi-blocker.js';
import { INJECTION_CORPUS } from './injection-corpus.js';
import type { Command } from '../../src/nft/schema/index.js';
import { sizeKnob } from './knobs.js';

/** Cases per builder (env NETFENCE_HOSTILE_CASES, default and minimum 10000: the knob can only raise it). */
export const HOSTILE_CASES = sizeKnob('NETFENCE_HOSTILE_CASES', 10_000);
/** Seed of the property runs (env NETFENCE_HOSTILE_SEED, default fixed so failures reproduce). */
export const HOSTILE_SEED = Number(process.env.NETFENCE_HOSTILE_SEED ?? 0x6e66) || 0x6e66;

// ---------------------------------------------------------------------------
// Generic hostile values and corruption.

/** Strings an attacker would try. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom(...INJECTION_CORPUS), weight: 4 },
  { arbitrary: fc.string({ maxLength: 80 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }), weight: 1 },
);

/** Any value, weighted towards the ones that break naive code. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: hostileString, weight: 4 },
  { arbitrary: fc.constantFrom<unknown>(null, undefined, NaN, Infinity, -Infinity, -0, 0, -1, 1.5, 2 ** 32, 2 ** 53, -(2 ** 31), 65536, true, false, [], {}, Object.create(null), () => 1, Symbol('s'), 10n), weight: 3 },
  { arbitrary: fc.integer(), weight: 1 },
  { arbitrary: fc.double(), weight: 1 },
  { arbitrary: fc.anything({ maxDepth: 2, withNullPrototype: true, withBigInt: true, withMap: true, withDate: true, withTypedArray: true, withSparseArray: true }), weight: 2 },
);

/** Fully random JSON-ish input. */
export const randomInput: fc.Arbitrary<unknown> = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.anything({ maxDepth: 3, withNullPrototype: true }), hostileValue);

type Path = (string | number)[];

function paths(v: unknown, prefix: Path = [], out: Path[] = [], depth = 0): Path[] {
  if (depth > 8) return out;
  if (Array.isArray(v)) v.forEach((e, i) => { out.push([...prefix, i]); paths(e, [...prefix, i], out, depth + 1); });
  else if (v && typeof v === 'object') for (const [k, e] of Object.entries(v)) { out.push([...prefix, k]); paths(e, [...prefix, k], out, depth + 1); }
  return out;
}

function clone<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, clone(e)])) as T;
  return v;
}

/** Apply one targeted corruption to a valid value: replace a field, delete it, or add an unknown one. */
export function mutate(value: unknown, pick: number, op: number, repl: unknown): unknown {
  const v = clone(value);
  const ps = paths(v);
  if (ps.length === 0) return repl;
  const path = ps[pick % ps.length]!;
  let parent: Record<string | number, unknown> = v as Record<string, unknown>;
  for (const seg of path.slice(0, -1)) parent = parent[seg] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (op === 0 || op === 3) parent[last] = repl;
  else if (op === 1) {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else if (Array.isArray(parent)) parent.push(repl);
  else parent[`x${String(pick % 7)}`] = repl;
  return v;
}

/** Mostly-valid input: valid (30%), one or two targeted corruptions (60%), fully random (10%). */
export function adversarial<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  const corrupt = fc.tuple(valid, fc.nat(), fc.nat(3), hostileValue).map(([v, p, op, r]) => mutate(v, p, op, r));
  const corrupt2 = fc.tuple(valid, fc.nat(), fc.nat(), fc.nat(3), hostileValue, hostileValue).map(([v, p1, p2, op, r1, r2]) => mutate(mutate(v, p1, 0, r1), p2, op, r2));
  return fc.oneof({ arbitrary: valid, weight: 3 }, { arbitrary: corrupt, weight: 4 }, { arbitrary: corrupt2, weight: 2 }, { arbitrary: randomInput, weight: 1 });
}

// ---------------------------------------------------------------------------
// Valid building blocks.

const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,11}$/);
const ifname = fc.stringMatching(/^(eth|veth|tap|br)[0-9]{1,3}$/);
const port = fc.integer({ min: 1, max: 65535 });
const v4 = fc.tuple(fc.constant(198), fc.integer({ min: 18, max: 19 }), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
const v6 = fc.tuple(fc.nat(0xffff), fc.nat(0xffff)).map(([a, b]) => `fd00:${a.toString(16)}::${b.toString(16)}`);
const v4prefix = fc.oneof(v4, fc.constantFrom('198.18.0.0/15', '198.18.1.0/24', '198.19.0.0/16', '198.18.5.4/32'));
const v6prefix = fc.oneof(v6, fc.constantFrom('fd00::/8', 'fd00:1::/64', 'fd00:2:3::/48'));
const mac = fc.array(fc.nat(255), { minLength: 6, maxLength: 6 }).map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));
const comment = fc.stringMatching(/^[A-Za-z0-9 _.,:]{0,40}$/);
const portRange = fc.tuple(port, port).map(([a, b]) => ({ from: Math.min(a, b), to: Math.max(a, b) }));

// ---------------------------------------------------------------------------
// Outcomes.

/** How one case ended. */
export type Outcome = { kind: 'plan'; plan: Plan } | { kind: 'error'; error: NetfenceError; thrown: boolean };

/** A non-netfence exception escaped a builder: a bug. */
export class EscapedError extends Error {
  constructor(readonly original: unknown, readonly input: unknown) {
    super(`non-netfence exception escaped: ${original instanceof Error ? `${original.name}: ${original.message}\n${original.stack}` : String(original)}`);
  }
}

function caught(e: unknown, input: unknown): Outcome {
  if (e instanceof NetfenceError) return { kind: 'error', error: e, thrown: true };
  throw new EscapedError(e, input);
}

/** What a harness is. */
export interface Harness {
  /** Builder name (for reports). */
  name: string;
  /** Generator of inputs for this builder. */
  arb: fc.Arbitrary<unknown>;
  /** Run validation + compile; typed errors and plans are outcomes, anything else throws {@link EscapedError}. */
  run(input: unknown): Outcome | Promise<Outcome>;
  /** Whether `run` returns a promise. */
  async?: boolean;
  /** Top-level prefixes an issue path may start with (the path must point into the input). */
  pathPrefixes: RegExp;
  /** Whether plans of this builder can go through `nft -c` in a lab namespace (no host-specific objects). */
  nftCheckable(input: unknown): boolean;
}

function asObj(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
}

// ---------------------------------------------------------------------------
// Firewall: options, chains, sets, maps, rules.

const fwRule = (chains: string[], sets: string[]) =>
  fc.record(
    {
      comment,
      iifname: ifname,
      oifname: fc.oneof(ifname, fc.constant('veth*')),
      saddr: fc.oneof(v4prefix, fc.array(v4prefix, { minLength: 1, maxLength: 3 }), ...(sets.length ? [fc.constantFrom(...sets.map((s) => `@${s}`))] : [])),
      daddr: v4prefix,
      protocol: fc.constantFrom('tcp', 'udp'),
      dport: fc.oneof(port, portRange, fc.array(port, { minLength: 1, maxLength: 4 })),
      sport: port,
      ctState: fc.subarray(['new', 'established', 'related', 'invalid'], { minLength: 1 }),
      mark: fc.nat(0xffff),
      limit: fc.record({ rate: fc.integer({ min: 1, max: 10000 }), per: fc.constantFrom('second', 'minute') }),
      counter: fc.boolean(),
      log: fc.record({ prefix: comment, level: fc.constantFrom('info', 'warn') }, { requiredKeys: [] }),
      setMark: fc.nat(0xffff),
      action: fc.oneof(
        fc.constantFrom('accept', 'drop', 'return', { type: 'reject' }, { type: 'reject', with: 'tcp-reset' }),
        ...(chains.length ? [fc.constantFrom(...chains).map((c) => ({ type: 'jump', chain: c }))] : []),
      ),
    },
    { requiredKeys: [] },
  );

/** Valid-ish Firewall input. */
export const firewallInput = fc
  .record({
    table: name,
    family: fc.constantFrom('inet', 'inet', 'ip', 'ip6', 'bridge'),
    netns: fc.option(fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/), { nil: undefined }),
    nbase: fc.integer({ min: 1, max: 2 }),
    nreg: fc.integer({ min: 0, max: 1 }),
    nsets: fc.integer({ min: 0, max: 2 }),
  })
  .chain((s) => {
    const base = Array.from({ length: s.nbase }, (_, i) => `c${i}`);
    const reg = Array.from({ length: s.nreg }, (_, i) => `r${i}`);
    const setNames = Array.from({ length: s.nsets }, (_, i) => `s${i}`);
    return fc.record({
      options: fc.constant({ table: s.table, family: s.family, ...(s.netns ? { netns: s.netns } : {}), ...(s.nsets === 1 ? { owner: `app:${s.table}` } : {}) }),
      chains: fc.tuple(
        ...base.map((n) => fc.record({ name: fc.constant(n), spec: fc.record({ type: fc.constant('filter'), hook: fc.constantFrom('input', 'forward', 'output'), priority: fc.integer({ min: -300, max: 300 }), policy: fc.constantFrom('accept', 'drop') }, { requiredKeys: ['type', 'hook'] }) })),
        ...reg.map((n) => fc.record({ name: fc.constant(n), spec: fc.constant({}) })),
      ),
      sets: fc.tuple(...setNames.map((n) => fc.record({ name: fc.constant(n), spec: fc.record({ type: fc.constant('ipv4_addr'), interval: fc.boolean(), elements: fc.array(fc.oneof(v4, fc.constantFrom('198.18.0.0/24', '198.19.0.0/16')), { maxLength: 4 }), counter: fc.boolean() }, { requiredKeys: ['type'] }) }))),
      maps: fc.array(
        fc.oneof(
          fc.record({ name: fc.constant('vm_ports'), spec: fc.record({ type: fc.constant('inet_service'), map: fc.constant('verdict'), elements: fc.uniqueArray(port, { maxLength: 3 }).chain((ps) => fc.tuple(...ps.map((p) => fc.tuple(fc.constant(p), fc.oneof(fc.constantFrom('accept', 'drop'), ...(reg.length ? [fc.constant({ jump: reg[0] })] : [])))))) }) }),
          fc.record({ name: fc.constant('m_if'), spec: fc.record({ type: fc.constant('ifname'), map: fc.constant('mark'), elements: fc.uniqueArray(ifname, { maxLength: 3 }).map((is) => is.map((i, k) => [i, k + 1])) }) }),
        ),
        { maxLength: 2 },
      ).map((ms) => ms.map((m, i) => ({ ...m, name: `${m.name.replace('vm_', 'p_')}${i}` }))),
      rules: fc.array(
        fc.record({ chain: fc.constantFrom(...base, ...reg), spec: fwRule(reg, setNames) }),
        { maxLength: 6 },
      ),
    });
  })
  .map((f) => {
    // ids must be unique: number them
    (f.rules as { spec: Record<string, unknown> }[]).forEach((r, i) => (r.spec = { id: `rule${i}`, ...r.spec }));
    // interval sets take prefixes only
    for (const s of f.sets as { spec: { interval?: boolean; elements?: string[] } }[]) if (!s.spec.interval) s.spec.elements = s.spec.elements?.filter((e) => !e.includes('/'));
    return f;
  });

function runFirewall(input: unknown): Outcome {
  try {
    const i = asObj(input);
    const fw = new Firewall(i.options as never);
    for (const c of Array.isArray(i.chains) ? i.chains : []) fw.chain(asObj(c).name as string, asObj(c).spec as never);
    for (const s of Array.isArray(i.sets) ? i.sets : []) fw.set(asObj(s).name as string, asObj(s).spec as never);
    for (const m of Array.isArray(i.maps) ? i.maps : []) fw.map(asObj(m).name as string, asObj(m).spec as never);
    for (const r of Array.isArray(i.rules) ? i.rules : []) fw.rule(asObj(r).chain as string, asObj(r).spec as never);
    const p = fw.compile();
    return p.ok ? { kind: 'plan', plan: p.val } : { kind: 'error', error: p.val, thrown: false };
  } catch (e) {
    return caught(e, input);
  }
}

/** Firewall harness. */
export const firewallHarness: Harness = {
  name: 'Firewall',
  arb: fc.oneof({ arbitrary: adversarial(firewallInput), weight: 9 }, { arbitrary: fc.record({ options: fc.record({ table: hostileValue, family: hostileValue, netns: hostileValue, owner: hostileValue }, { requiredKeys: [] }) }), weight: 1 }),
  run: runFirewall,
  pathPrefixes: /^(table|family|netns|owner|rule |chain |set |map |vm|$)/,
  nftCheckable: (input) => {
    const o = asObj(asObj(input).options);
    return o.family !== 'netdev';
  },
};

// ---------------------------------------------------------------------------
// VM firewall rules (bridge table, explicit backends).

const vmRule = fc.record(
  {
    name: fc.stringMatching(/^[A-Za-z0-9 _-]{0,30}$/),
    action: fc.constantFrom('ACCEPT', 'DROP', 'REJECT'),
    direction: fc.constantFrom('IN', 'OUT', 'INOUT'),
    priority: fc.integer({ min: -1000, max: 1000 }),
    protocol: fc.constantFrom('tcp', 'udp', 'icmp', 'all'),
    dstPortStart: port,
    srcIpAddr: v4prefix,
    dstIpAddr: v4prefix,
  },
  { requiredKeys: ['name', 'action', 'direction', 'priority', 'protocol'] },
);
const backends = fc.record({
  reject: fc.constantFrom('native', 'br_netfilter', 'drop'),
  stateful: fc.constantFrom('native', 'br_netfilter', 'off'),
  rejectMark: fc.constant(0x00400000),
  establishedMark: fc.constant(0x00800000),
});

/** Valid-ish VM firewall input. */
export const vmInput = fc.record({
  table: name,
  backends,
  vm: fc
    .record(
      {
        vmId: fc.stringMatching(/^[a-z0-9_-]{1,12}$/),
        iface: fc.stringMatching(/^tap[0-9]{1,4}$/),
        mac,
        ips: fc.array(fc.oneof(v4prefix, v6prefix), { maxLength: 3 }),
        rules: fc.array(vmRule, { maxLength: 6 }),
        defaultPolicy: fc.oneof(fc.constantFrom('ACCEPT', 'DROP'), fc.record({ in: fc.constantFrom('ACCEPT', 'DROP'), out: fc.constantFrom('ACCEPT', 'DROP') })),
        antiSpoof: fc.boolean(),
      },
      { requiredKeys: ['vmId', 'iface', 'rules'] },
    )
    .map((vm) => {
      const rules = vm.rules as Record<string, unknown>[];
      rules.forEach((r, i) => {
        r.id = `fw${i}`;
        if (r.protocol === 'icmp' || r.protocol === 'all') delete r.dstPortStart;
      });
      return vm;
    }),
});

function runVm(input: unknown): Outcome {
  try {
    const i = asObj(input);
    const fw = new Firewall({ table: typeof i.table === 'string' ? i.table : 'vmfw', family: 'bridge' });
    const p = fw.compileVm(i.vm as never, i.backends as VmBackends);
    return p.ok ? { kind: 'plan', plan: p.val } : { kind: 'error', error: p.val, thrown: false };
  } catch (e) {
    return caught(e, input);
  }
}

/** VM FirewallRule list harness (`compileVm`). */
export const vmHarness: Harness = {
  name: 'VM FirewallRule',
  arb: fc.oneof(
    { arbitrary: fc.record({ table: name, backends, vm: adversarial(vmInput.map((v) => v.vm)) }), weight: 9 },
    { arbitrary: fc.record({ table: name, backends, vm: fc.record({ vmId: hostileValue, iface: hostileValue, rules: fc.array(randomInput, { maxLength: 3 }) }) }), weight: 1 },
  ),
  run: runVm,
  pathPrefixes: /^(vm|vmId|iface|mac|ips|rules|defaultPolicy|antiSpoof|\(root\))/,
  nftCheckable: () => true,
};

// ---------------------------------------------------------------------------
// SmartProxy routes.

/** Valid-ish SmartProxy route. */
export const routeInput = fc.record({
  manager: fc.record({ tableName: name, netns: fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/), owner: fc.constantFrom('smartproxy', 'sp:edge') }, { requiredKeys: [] }),
  route: fc.record(
    {
      name: fc.stringMatching(/^[A-Za-z0-9 _-]{1,30}$/),
      match: fc.record({ ports: fc.oneof(port, portRange, fc.array(fc.oneof(port, portRange), { minLength: 1, maxLength: 3 })) }),
      action: fc.record(
        {
          type: fc.constant('forward'),
          target: fc.record({ host: fc.oneof(v4, fc.array(v4, { minLength: 1, maxLength: 3 })), port: fc.oneof(port, fc.constant('preserve')) }),
          nftables: fc.record({ protocol: fc.constantFrom('tcp', 'udp', 'all'), preserveSourceIP: fc.boolean(), maxRate: fc.constantFrom('10mbps', '500kbps', '1gbps'), priority: fc.integer({ min: -100, max: 100 }), useIPSets: fc.boolean() }, { requiredKeys: [] }),
          security: fc.record({ ipAllowList: fc.array(v4prefix, { maxLength: 3 }), ipBlockList: fc.array(v4prefix, { maxLength: 3 }) }, { requiredKeys: [] }),
        },
        { requiredKeys: ['type', 'target'] },
      ),
      priority: fc.integer({ min: -10, max: 10 }),
    },
    { requiredKeys: ['match', 'action'] },
  ),
});

/** SmartProxy's base chains (so that nft -c sees the chains the rules go to). */
const SP_CHAINS = SMARTPROXY_CHAINS;

function runRoute(input: unknown): Outcome {
  try {
    const i = asObj(input);
    const m = new NFTablesManager(i.manager as never);
    const c = m.compile(i.route as IRouteConfig);
    if (c.err) return { kind: 'error', error: c.val, thrown: false };
    const plan = emptyPlan('smartproxy', typeof asObj(i.manager).netns === 'string' ? (asObj(i.manager).netns as string) : undefined);
    const t = c.val.table;
    plan.tables = [{ family: 'inet', name: t }];
    plan.nft = [
      { add: { table: { family: 'inet', name: t } } },
      ...SP_CHAINS.map((ch): Command => ({ add: { chain: { family: 'inet', table: t, ...ch, policy: 'accept' } } })),
      ...c.val.sets.flatMap((s) => s.cmds),
      ...c.val.rules,
    ];
    return { kind: 'plan', plan };
  } catch (e) {
    return caught(e, input);
  }
}

/** SmartProxy route harness. */
export const smartproxyHarness: Harness = {
  name: 'SmartProxy route',
  arb: fc.oneof(
    { arbitrary: fc.record({ manager: fc.constant({}), route: adversarial(routeInput.map((r) => r.route)) }), weight: 7 },
    { arbitrary: adversarial(routeInput), weight: 2 },
    { arbitrary: fc.record({ manager: fc.record({ tableName: hostileValue, netns: hostileValue }, { requiredKeys: [] }), route: randomInput }), weight: 1 },
  ),
  run: runRoute,
  pathPrefixes: /^(route|tableName|netns|owner|options)/,
  nftCheckable: () => true,
};

// ---------------------------------------------------------------------------
// Throttler limit requests (validation, backend selection and compile; host facts faked).

const ALL_CAPS: ThrottleCaps = Object.fromEntries(
  ['tcHtb', 'tcU32', 'tcBpf', 'tcIngress', 'tcClsact', 'ifb', 'mirred', 'police', 'nftLimit', 'nftQuota', 'nftSocketCgroupv2'].map((k) => [k, { available: true, reason: 'faked by the test' }]),
) as unknown as ThrottleCaps;
(ALL_CAPS as { cgroup2Mount: string }).cgroup2Mount = '/sys/fs/cgroup';

/** Valid-ish limit request. */
export const limitInput = fc.record(
  {
    iface: ifname,
    direction: fc.constantFrom('egress', 'ingress'),
    rate: fc.oneof(fc.integer({ min: 8000, max: 1e10 }), fc.constantFrom('10mbit', '512kbit', '1.5MB/s', '1gbit')),
    burst: fc.oneof(fc.integer({ min: 1514, max: 1e6 }), fc.constantFrom('64kb', '1mb')),
    match: fc.record({ src: v4prefix, dst: v4prefix, sport: port, dport: port, protocol: fc.constantFrom('tcp', 'udp'), cgroup: fc.stringMatching(/^[a-z]{1,8}(\/[a-z0-9]{1,8}){0,2}$/) }, { requiredKeys: [] }),
    backend: fc.constantFrom('tc-htb', 'ifb-tc', 'nft-limit', 'tc-police'),
    quota: fc.oneof(fc.integer({ min: 1, max: 1e9 }), fc.record({ bytes: fc.integer({ min: 1, max: 1e9 }), action: fc.constantFrom('drop', 'log') })),
    accounting: fc.constantFrom('tcp-payload', 'packets'),
  },
  { requiredKeys: ['iface', 'direction', 'rate'] },
);

function runLimit(input: unknown): Outcome {
  try {
    const i = asObj(input);
    const t = new Throttler(i.options as never);
    const parsed = LimitSchema.safeParse(i.limit);
    if (!parsed.success) {
      return { kind: 'error', error: fromZodIssues('limit', parsed.error.issues), thrown: false };
    }
    const spec = parsed.data;
    const sel = selectBackend(spec, ALL_CAPS);
    if (sel.err) return { kind: 'error', error: sel.val, thrown: false };
    const b = sel.val.backend;
    const ctx: CompileContext = {
      owner: t.owner,
      netns: t.netns,
      table: `netfence_throttle_${t.name}_l1`,
      id: 1,
      backend: b,
      reason: sel.val.reason,
      site: { iface: spec.iface, direction: spec.direction, ...(b.name === 'ifb-tc' ? { ifb: 'nfb0123abcd' } : {}) },
      siteExists: false,
      mtu: 1500,
    };
    if (spec.match?.cgroup !== undefined) ctx.cgroup = { mount: '/sys/fs/cgroup', rel: spec.match.cgroup };
    else if (spec.match?.pid !== undefined) ctx.cgroup = { mount: '/sys/fs/cgroup', rel: `netfence/${t.name}-1-1`, create: { pid: spec.match.pid, restoreTo: 'user.slice' } };
    return { kind: 'plan', plan: compileLimit(spec, ctx).plan };
  } catch (e) {
    return caught(e, input);
  }
}

/** Throttler harness. */
export const throttlerHarness: Harness = {
  name: 'Throttler',
  arb: fc.oneof(
    { arbitrary: fc.record({ options: fc.record({ name: fc.stringMatching(/^[a-z0-9_]{1,12}$/) }, { requiredKeys: [] }), limit: adversarial(limitInput) }), weight: 9 },
    { arbitrary: fc.record({ options: fc.oneof(fc.constant(undefined), fc.record({ name: hostileValue, netns: hostileValue }, { requiredKeys: [] })), limit: randomInput }), weight: 1 },
  ),
  run: runLimit,
  pathPrefixes: /^(iface|direction|rate|burst|match|backend|quota|accounting|name|netns|\(root\))/,
  nftCheckable: (input) => asObj(asObj(asObj(input).limit).match).cgroup === undefined && asObj(asObj(asObj(input).limit).match).pid === undefined,
};

// ---------------------------------------------------------------------------
// XdpBlocklist: options and entries (nft fallback commands).

/** Valid-ish XdpBlocklist input. */
export const xdpInput = fc.record({
  options: fc.record(
    {
      iface: ifname,
      netns: fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/),
      mode: fc.constantFrom('native', 'generic', 'auto'),
      backend: fc.constantFrom('auto', 'xdp', 'nft'),
      name: fc.stringMatching(/^[a-z0-9_][a-z0-9_-]{0,15}$/),
      maxEntries: fc.integer({ min: 1, max: 1 << 20 }),
      matchDestination: fc.boolean(),
      objectPath: fc.constantFrom('/opt/netfence/xdp_blocklist.o', '/tmp/x.o'),
    },
    { requiredKeys: ['iface'] },
  ),
  entries: fc.array(fc.oneof(v4prefix, v6prefix, fc.constantFrom('198.18.0.0/15', 'fd00::/8', '198.18.7.0/24')), { maxLength: 12 }),
  ttl: fc.option(fc.integer({ min: 1, max: 86400 }), { nil: undefined }),
});

/** The nft fallback's table layout (what NftBlocklist.setup creates) for a blocklist, built by calling setup with the runner captured. */
export type SetupCapture = (nb: NftBlocklist, matchDestination: boolean, comment: string) => Promise<unknown[]>;

async function runXdp(input: unknown, setupCommands: SetupCapture): Promise<Outcome> {
  try {
    const i = asObj(input);
    const bl = new XdpBlocklist(i.options as never);
    const entries = parseEntries(i.entries, 'blocklist entries');
    if (entries.err) return { kind: 'error', error: entries.val, thrown: false };
    // what add() does before it reaches the nftables fallback
    const nested = nestedPrefixIssues(entries.val);
    if (nested.length) return { kind: 'error', error: new ValidationError('blocklist entries', nested), thrown: false };
    // the blocklist's own ttl check, then what add() passes to the nft backend
    const t = (bl as unknown as { ttlCheck(t: unknown): { ok: boolean; val: unknown } }).ttlCheck(i.ttl);
    if (!t.ok) return { kind: 'error', error: t.val as ValidationError, thrown: false };
    const ttl = t.val === undefined ? undefined : Math.max(1, Math.ceil(t.val as number));
    const nb = new NftBlocklist(bl.nftTable, bl.options.iface, bl.options.netns);
    const plan = emptyPlan(`xdp:${bl.name}`, bl.options.netns);
    plan.tables = [{ family: 'netdev', name: bl.nftTable }];
    const add = (nb as unknown as { addElems(e: unknown[], t?: number): unknown[] }).addElems(entries.val, ttl as number | undefined);
    plan.nft = [...(await setupCommands(nb, bl.options.matchDestination, `netfence xdp-blocklist ${bl.name}`)), ...add] as Command[];
    return { kind: 'plan', plan };
  } catch (e) {
    return caught(e, input);
  }
}

/** XdpBlocklist harness; `setupCommands` returns the commands NftBlocklist.setup would send. */
export function xdpHarness(setupCommands: SetupCapture): Harness {
  return {
    name: 'XdpBlocklist',
    arb: fc.oneof({ arbitrary: adversarial(xdpInput), weight: 9 }, { arbitrary: fc.record({ options: randomInput, entries: randomInput }), weight: 1 }),
    run: (input) => runXdp(input, setupCommands),
    async: true,
    pathPrefixes: /^(iface|netns|mode|backend|name|maxEntries|matchDestination|objectPath|ttl|[0-9]+|\(root\)|entries)/,
    nftCheckable: () => true,
  };
}

// ---------------------------------------------------------------------------
// DpiBlocker options.

/** Valid-ish DpiBlocker options. */
export const dpiInput = fc.record(
  {
    netns: fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/),
    queues: fc.tuple(fc.integer({ min: 0, max: 65000 }), fc.integer({ min: 1, max: 8 })),
    hooks: fc.subarray(['forward', 'input', 'output'], { minLength: 1 }),
    monitorOnly: fc.boolean(),
    blockTtl: fc.integer({ min: 1, max: 86400 }),
    blockPeers: fc.constantFrom('responder', 'both'),
    failOpen: fc.boolean(),
    classifiers: fc.array(fc.constantFrom('bittorrent', '/opt/classifiers/x.js', 'file:///opt/c/y.mjs'), { minLength: 1, maxLength: 2 }),
    packets: fc.integer({ min: 1, max: 1000 }),
    resetBad: fc.boolean(),
    families: fc.subarray(['ipv4', 'ipv6'], { minLength: 1 }),
    protocols: fc.subarray(['tcp', 'udp'], { minLength: 1 }),
    name: fc.stringMatching(/^[A-Za-z0-9_]{1,16}$/),
    marks: fc.constantFrom({ mask: 0x3, benign: 1, bad: 2 }, { mask: 0xff00, benign: 0x100, bad: 0x200 }),
    maxPacketsPerDirection: fc.integer({ min: 1, max: 1000 }),
  },
  { requiredKeys: [] },
);

function runDpi(input: unknown, nftQueue: boolean): Outcome {
  try {
    const i = asObj(input);
    const d = new DpiBlocker(i.options as never);
    const c = d.compile(nftQueue);
    return c.ok ? { kind: 'plan', plan: c.val.plan } : { kind: 'error', error: c.val, thrown: false };
  } catch (e) {
    return caught(e, input);
  }
}

/** DpiBlocker harness (nft queue statement form when `nftQueue`, xtables NFQUEUE steps otherwise). */
export function dpiHarness(nftQueue: boolean): Harness {
  return {
    name: `DpiBlocker (${nftQueue ? 'nft queue' : 'xtables'})`,
    arb: fc.oneof({ arbitrary: fc.record({ options: adversarial(dpiInput) }), weight: 9 }, { arbitrary: fc.record({ options: randomInput }), weight: 1 }),
    run: (input) => runDpi(input, nftQueue),
    pathPrefixes: /^(netns|queues|hooks|monitorOnly|blocklist|blockTtl|blockPeers|failOpen|classifiers|packets|resetBad|families|protocols|nftQueue|name|marks|maxPacketsPerDirection|startTimeoutMs|\(root\))/,
    nftCheckable: () => nftQueue,
  };
}

// ---------------------------------------------------------------------------
// Checking outcomes.

const ROOT_TYPE = /expected (object|array|record|tuple)|must be an array|must be a|expected string/i;

/** Problems with a typed error: no issues, empty paths, or paths that do not point into the input. */
function inputKeys(v: unknown, out = new Set<string>(), depth = 0): Set<string> {
  if (depth > 10 || !v || typeof v !== 'object') return out;
  try {
    for (const [k, e] of Object.entries(v)) {
      out.add(k);
      out.add(JSON.stringify(k).slice(1, -1).slice(0, 64));
      inputKeys(e, out, depth + 1);
    }
  } catch {
    // exotic objects: no keys
  }
  return out;
}

/** Whether an issue path points into the input: its first segment is a field the builder knows, or a key present in the input. */
function pointsInto(h: Harness, path: string, input: unknown): boolean {
  if (h.pathPrefixes.test(path)) return true;
  for (const k of inputKeys(input)) {
    const seg = k === '' ? '""' : k;
    if (path === seg || path.startsWith(`${seg}.`)) return true;
  }
  return false;
}

export function errorProblems(h: Harness, e: NetfenceError, input?: unknown): string[] {
  const out: string[] = [];
  if (e instanceof ValidationError) {
    if (e.issues.length === 0) out.push('ValidationError without issues');
    for (const i of e.issues) {
      // an empty path is accepted only when the whole argument has the wrong type (e.g. a number where options go)
      if (typeof i.path !== 'string' || (i.path.length === 0 && !ROOT_TYPE.test(i.message))) out.push(`issue with an empty path: ${i.message}`);
      else if (i.path.length > 0 && !pointsInto(h, i.path, input)) out.push(`issue path ${JSON.stringify(i.path)} does not point into the ${h.name} input`);
      if (typeof i.message !== 'string' || i.message.length === 0) out.push(`issue at ${i.path} without a message`);
    }
  } else if (e instanceof UnsupportedError) {
    if (!e.capability) out.push('UnsupportedError without a capability');
  } else if (!e.code) out.push('NetfenceError without a code');
  return out;
}

/** Options for the unit runs (fast-check parameters). */
export function fcParams(numRuns = HOSTILE_CASES): fc.Parameters<unknown> {
  return { numRuns, seed: HOSTILE_SEED, endOnFailure: true };
}
