/**
 * The declarative half of the {@link Firewall}: what a firewall is made of
 * (chains, typed rules, named sets and maps, a fast path, VM options) and
 * its pure compilation to a {@link Plan}. No I/O here; the kernel side
 * (apply, live changes, VMs) is firewall.ts.
 * @module
 */
import { UnsupportedError, ValidationError, type ValidationIssue, fromZodIssues } from '../errors.js';
import { emptyPlan, type Plan, type TableRef } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { NetnsName } from '../validate.js';
import { chainCommand, compileRuleExprs, mapCommand, ruleComment, setCommand, type CompileContext } from './compile.js';
import * as x from '../nft/build.js';
import { decideFastPath, DEFAULT_FASTPATH_NAME, DEFAULT_FASTPATH_PRIORITY, FASTPATH_FAMILIES, fastPathCommands, offloadRuleId, type FastPathTarget, type FlowtableCapabilitySource } from './flowtable.js';
import type { Command, Family } from '../nft/schema/index.js';
import type { AppliedPlan } from './kernel.js';
import { ChainSpec, FastPathSpec, FirewallOptions, MapSpec, SetSpec, type ChainInput, type FastPath, type FastPathInput, type FirewallInit, type MapInput, type Rule, type RuleInput, type SetInput } from './spec.js';
import { parseRule } from './rule-parse.js';
import { companionTable, vmAttachCommands, vmBaseCommands, type ParsedVm, type VmBackends, type VmSpec, VM_NAMES } from './vm.js';
import { VmOptionsSchema, type ResolvedVmOptions, type VmOptions } from './vm-options.js';
import { ElementList, elementKey, plainElements } from './compile-elements.js';
import { markCompiled } from '../plan/validate-plan.js';

type SetElementValue = NonNullable<SetInput['elements']>[number];

export type { ChainInput, FastPathInput, FirewallInit, MapInput, RuleInput, SetInput, VmSpec, VmBackends, FlowtableCapabilitySource };

/** Options of {@link Firewall.compile}. */
export interface FirewallCompileOptions {
  /**
   * The capability report of the firewall's namespace (`detectCapabilities({ netns })`),
   * or any object with its `nft.features.flowtable` entry. Needed when a
   * {@link Firewall.fastPath} is declared; `apply()` and `check()` detect it themselves.
   */
  capabilities?: FlowtableCapabilitySource | undefined;
}

/** Per-rule and per-set counters read back from the kernel, keyed by the ids the caller gave. */
export interface FirewallStatus {
  /** By rule id (VM rules: `vm:<vmId>:<ruleId>:<in|out>`; the fast path's offload rule: `<name>:offload`, e.g. `fastpath:offload`). */
  rules: Record<string, { chain: string; handle: number; packets: number; bytes: number }>;
  /** Sets declared with `counter: true`: element count and summed element counters. */
  sets: Record<string, { elements: number; packets: number; bytes: number }>;
}

export type { VmOptions };

interface ChainEntry {
  spec: ChainInput;
  rules: Rule[];
}

/** Key of a set element in the builder's element index (see {@link elementKey}). */
export function key(e: unknown): unknown {
  return elementKey(e);
}

/** A caller-given name for an issue path; never throws (symbols, null-prototype objects). */
export function safeName(v: unknown): string {
  return typeof v === 'string' ? v : `<${typeof v}>`;
}

/**
 * The declarations of a {@link Firewall} and their compilation (pure).
 * Use {@link Firewall}, which adds everything that talks to the kernel.
 */
export class FirewallBuilder {
  /** Table name. */
  readonly table: string;
  /** Table family. */
  readonly family: Family;
  /** Network namespace, if any. */
  readonly netns: string | undefined;
  /** Plan owner recorded in the table. */
  readonly owner: string;

  /** @internal */
  protected readonly chains = new Map<string, ChainEntry>();
  /** @internal */
  protected readonly sets = new Map<string, Omit<SetInput, 'elements'> & { elems: ElementList }>();
  /** @internal */
  protected readonly maps = new Map<string, MapInput>();
  /** @internal */
  protected readonly ruleChain = new Map<string, string>();
  /** @internal */
  protected readonly issues: ValidationIssue[] = [];
  /** @internal */
  protected readonly vms = new Map<string, ParsedVm>();
  /** @internal */
  protected vmOptions: ResolvedVmOptions = VmOptionsSchema.parse({});
  /** @internal */
  protected backends: VmBackends | undefined;
  /** @internal */
  protected lastApplied: AppliedPlan | undefined;
  /** @internal */
  protected fastPathSpec: FastPath | undefined;
  /** @internal */
  protected fastPathDeclared = false;
  /**
   * The fast path in the kernel since the last apply (undefined: none), flushed by every live change.
   * @internal
   */
  protected fastPathLive: FastPathTarget | undefined;

  /** Create a builder. Invalid options throw a {@link ValidationError} (a caller bug). */
  constructor(options: FirewallInit) {
    const r = FirewallOptions.safeParse(options);
    if (!r.success) throw fromZodIssues('Firewall options', r.error.issues);
    if (r.data.netns !== undefined && !NetnsName.safeParse(r.data.netns).success) throw new ValidationError('Firewall options', [{ path: 'netns', message: 'invalid namespace name' }]);
    this.table = r.data.table;
    this.family = r.data.family ?? 'inet';
    this.netns = r.data.netns;
    this.owner = r.data.owner ?? `firewall:${this.table}`;
  }

  /** @internal */
  protected get ctx(): CompileContext {
    const sets = new Map<string, { type: string | string[]; map?: string | undefined }>();
    for (const [n, s] of this.sets) sets.set(n, { type: s.type });
    for (const [n, m] of this.maps) sets.set(n, { type: m.type, map: m.map });
    return { family: this.family, table: this.table, sets, chains: new Set(this.chains.keys()) };
  }

  /** @internal */
  protected get tableRef(): TableRef {
    return { family: this.family, name: this.table };
  }

  /** @internal */
  protected tables(): TableRef[] {
    const t: TableRef[] = [this.tableRef];
    const b = this.backends;
    if (this.family === 'bridge' && b && (b.reject === 'br_netfilter' || b.stateful === 'br_netfilter')) t.push({ family: 'inet', name: companionTable(this.table) });
    return t;
  }

  // -------------------------------------------------------------------------
  // Building.

  /** Declare a chain: a base chain when `hook` is given, a regular chain (jump/goto target) otherwise. */
  chain(name: string, spec: ChainInput = {}): this {
    const r = ChainSpec.safeParse(spec);
    if (!r.success) this.issues.push(...fromZodIssues('', r.error.issues).issues.map((i) => ({ path: `chain ${safeName(name)}.${i.path}`, message: i.message })));
    else if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(name)) this.issues.push({ path: `chain ${safeName(name)}`, message: 'invalid chain name' });
    else if (name.startsWith('vm_')) this.issues.push({ path: `chain ${name}`, message: 'names starting with vm_ are reserved for VM firewalls' });
    else if (this.chains.has(name)) this.issues.push({ path: `chain ${name}`, message: 'declared twice' });
    else this.chains.set(name, { spec: r.data, rules: [] });
    return this;
  }

  /** Append a rule to a chain. Problems are reported by {@link compile}, naming the rule id and field. */
  rule(chain: string, spec: RuleInput): this {
    const r = parseRule(spec);
    const id = typeof (spec as { id?: unknown })?.id === 'string' ? (spec as { id: string }).id : '?';
    if (!r.success) {
      this.issues.push(...r.error.issues.map((i) => ({ path: `rule ${id}.${i.path.map(String).join('.')}`, message: i.message })));
      return this;
    }
    const c = this.chains.get(chain);
    if (!c) this.issues.push({ path: `rule ${id}.chain`, message: `chain ${safeName(chain)} is not declared (call .chain() first)` });
    else if (this.ruleChain.has(r.data.id)) this.issues.push({ path: `rule ${id}.id`, message: 'duplicate rule id' });
    else {
      c.rules.push(r.data);
      this.ruleChain.set(r.data.id, chain);
    }
    return this;
  }

  /** Append several rules to a chain. */
  rules(chain: string, specs: RuleInput[]): this {
    for (const s of specs) this.rule(chain, s);
    return this;
  }

  /** Declare a named set (addresses, ports, MACs, concatenations; interval, timeout, counters). */
  set(name: string, spec: SetInput): this {
    // Big element lists of plain values skip zod's per-element parse (same result, see plainElements).
    const plain = spec && typeof spec === 'object' ? plainElements((spec as { elements?: unknown }).elements) : undefined;
    const r = plain ? SetSpec.safeParse({ ...spec, elements: [] }) : SetSpec.safeParse(spec);
    if (plain && r.success) r.data.elements = plain as SetElementValue[];
    if (!r.success) this.issues.push(...r.error.issues.map((i) => ({ path: `set ${safeName(name)}.${i.path.map(String).join('.')}`, message: i.message })));
    else if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(name)) this.issues.push({ path: `set ${safeName(name)}`, message: 'invalid set name' });
    else if (this.sets.has(name) || this.maps.has(name)) this.issues.push({ path: `set ${name}`, message: 'declared twice' });
    else {
      const { elements, ...rest } = r.data;
      this.sets.set(name, { ...rest, elems: new ElementList(elements ?? []) });
    }
    return this;
  }

  /** Declare a named map: a verdict map (`map: 'verdict'`) or a data map. */
  map(name: string, spec: MapInput): this {
    const r = MapSpec.safeParse(spec);
    if (!r.success) this.issues.push(...r.error.issues.map((i) => ({ path: `map ${safeName(name)}.${i.path.map(String).join('.')}`, message: i.message })));
    else if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(name) || name === VM_NAMES.inMap || name === VM_NAMES.outMap) this.issues.push({ path: `map ${safeName(name)}`, message: 'invalid or reserved map name' });
    else if (this.sets.has(name) || this.maps.has(name)) this.issues.push({ path: `map ${name}`, message: 'declared twice' });
    else this.maps.set(name, r.data);
    return this;
  }

  /**
   * Declare the forwarding fast path: an nftables flowtable over `devices`
   * and an offload rule for established TCP/UDP flows, in a forward chain of
   * its own that runs after every forward chain of this firewall (so only
   * flows these chains accepted are offloaded). Offloaded packets skip the
   * netfilter forward path on these devices. Every `apply()` and every live
   * change (`addElements`, `deleteElements`, `addRule`, `removeRule`) flushes
   * the offloaded flows in the same transaction, so the changed rules apply
   * to established flows too. Whether the kernel has flowtables is read from
   * the capability report (`nft.features.flowtable`): with `mode: 'auto'`
   * (default) a kernel without them gets no fast path and a recorded
   * `plan.decisions` entry; with `mode: 'required'` `compile()`/`apply()`
   * fail with an {@link UnsupportedError}. ip, ip6 and inet tables only.
   *
   * ```ts
   * new Firewall({ table: 'router', netns: 'gw' })
   *   .chain('forward', { hook: 'forward', priority: 0, policy: 'drop' })
   *   .rule('forward', { id: 'est', ctState: ['established', 'related'], action: 'accept' })
   *   .rule('forward', { id: 'out', iifname: 'lan0', oifname: 'wan0', action: 'accept' })
   *   .fastPath({ devices: ['lan0', 'wan0'], mode: 'auto' });
   * ```
   */
  fastPath(spec: FastPathInput): this {
    const r = FastPathSpec.safeParse(spec);
    if (this.fastPathDeclared) this.issues.push({ path: 'fastPath', message: 'declared twice' });
    else if (!r.success) this.issues.push(...r.error.issues.map((i) => ({ path: ['fastPath', ...i.path.map(String)].join('.'), message: i.message })));
    else this.fastPathSpec = r.data;
    this.fastPathDeclared = true;
    return this;
  }

  /**
   * Where this firewall's fast path lives (undefined when none is declared or the family has no flowtables).
   * @internal
   */
  protected fastPathTarget(): FastPathTarget | undefined {
    const f = this.fastPathSpec;
    const family = FASTPATH_FAMILIES.find((fam) => fam === this.family);
    if (!f || !family) return undefined;
    return { family, table: this.table, name: f.name ?? DEFAULT_FASTPATH_NAME, devices: f.devices, priority: f.priority ?? DEFAULT_FASTPATH_PRIORITY };
  }

  /**
   * The fast path's plan commands and decision, or the reason it cannot be compiled.
   * @internal
   */
  protected compileFastPath(options: FirewallCompileOptions | undefined, issues: ValidationIssue[]): { nft: Command[]; decisions: Plan['decisions'] } | UnsupportedError {
    const f = this.fastPathSpec;
    if (!f) return { nft: [], decisions: [] };
    const t = this.fastPathTarget();
    if (!t) {
      issues.push({ path: 'fastPath', message: `flowtables exist only in ip, ip6 and inet tables; ${this.table} is a ${this.family} table` });
      return { nft: [], decisions: [] };
    }
    if (this.chains.has(t.name)) issues.push({ path: 'fastPath.name', message: `the offload chain ${t.name} has the name of a declared chain: choose another fastPath name` });
    if (this.ruleChain.has(offloadRuleId(t.name))) issues.push({ path: 'fastPath.name', message: `rule id ${offloadRuleId(t.name)} is reserved for the offload rule` });
    for (const [n, c] of this.chains) {
      if (c.spec.hook === 'forward' && (c.spec.priority ?? 0) >= t.priority) {
        issues.push({ path: 'fastPath.priority', message: `forward chain ${n} has priority ${c.spec.priority ?? 0}: the offload chain (priority ${t.priority}) must run after every forward chain of the firewall` });
      }
    }
    const caps = options?.capabilities;
    if (!caps) {
      issues.push({ path: 'fastPath', message: 'whether this kernel has flowtables is not known: pass compile({ capabilities }) with the report of detectCapabilities({ netns }), or use apply()/check(), which detect it' });
      return { nft: [], decisions: [] };
    }
    const d = decideFastPath(caps, f.mode ?? 'auto', t);
    if (!d.ok) return d.error;
    return { nft: d.enabled ? fastPathCommands(t) : [], decisions: [d.decision] };
  }

  /** Configure the VM layer (bridge tables only). Call before the first `attachVm`. */
  vmOptionsSet(options: VmOptions): this {
    const r = VmOptionsSchema.safeParse(options);
    if (r.success) this.vmOptions = r.data;
    else this.issues.push(...fromZodIssues('', r.error.issues).issues.map((i) => ({ path: i.path ? `vmOptions.${i.path}` : 'vmOptions', message: i.message })));
    this.backends = undefined;
    return this;
  }

  // -------------------------------------------------------------------------
  // Compiling.

  /** @internal */
  protected setCommandOf(name: string, s: Omit<SetInput, 'elements'> & { elems: ElementList }, issues: ValidationIssue[]): Command {
    const { elems, ...rest } = s;
    return setCommand(this.ctx, name, { ...rest, elements: elems.toArray() as SetInput['elements'] }, issues);
  }

  /** @internal */
  protected ruleCommand(chain: string, rule: Rule, issues: ValidationIssue[], verb: 'add' | 'insert' = 'add', ctx: CompileContext = this.ctx): Command | undefined {
    const expr = compileRuleExprs(rule, ctx, issues);
    if (!expr) return undefined;
    return x.cmd[verb](x.rule(ctx, chain, expr, { comment: ruleComment(rule.id, rule.comment) }));
  }

  /**
   * Compile the whole firewall to a plan: the table is deleted and re-created
   * in the same transaction (so the result is exactly what was declared), then
   * sets, maps, chains, rules and VM chains are added. Pure: no I/O. VM
   * firewalls need their backends resolved first (`attachVm` does it, or pass
   * them via `vmOptionsSet` with explicit choices). A declared
   * {@link fastPath} needs `options.capabilities`; with `mode: 'required'`
   * on a kernel without flowtables the result is an {@link UnsupportedError}.
   */
  compile(): Result<Plan, ValidationError>;
  compile(options: FirewallCompileOptions): Result<Plan, ValidationError | UnsupportedError>;
  compile(options?: FirewallCompileOptions): Result<Plan, ValidationError | UnsupportedError> {
    const issues: ValidationIssue[] = [...this.issues];
    const ctx = this.ctx;
    const plan = emptyPlan(this.owner, this.netns);
    plan.tables = this.tables();
    const t = { family: this.family, name: this.table };
    plan.nft.push(x.cmd.add({ table: t }), x.cmd.delete({ table: t }), x.cmd.add({ table: t }));
    for (const [n, s] of this.sets) plan.nft.push(this.setCommandOf(n, s, issues));
    for (const [n, c] of this.chains) plan.nft.push(chainCommand(ctx, n, c.spec));
    for (const [n, m] of this.maps) plan.nft.push(mapCommand(ctx, n, m, issues));
    for (const [n, c] of this.chains) {
      for (const r of c.rules) {
        const cmd = this.ruleCommand(n, r, issues, 'add', ctx);
        if (cmd) plan.nft.push(cmd);
      }
    }
    if (this.family === 'bridge' && (this.vms.size > 0 || this.backends)) {
      const b = this.backends ?? this.explicitBackends();
      if (!b) {
        issues.push({ path: 'vm', message: 'VM backends are not resolved: call attachVm() (which probes the kernel) or vmOptionsSet() with explicit reject/stateful choices' });
      } else {
        const comp = plan.tables.find((tb) => tb.family === 'inet');
        if (comp) plan.nft.push(x.cmd.add({ table: { ...comp } }), x.cmd.delete({ table: { ...comp } }));
        plan.nft.push(...vmBaseCommands(this.table, b));
        for (const vm of this.vms.values()) plan.nft.push(...vmAttachCommands(this.table, vm, b));
        plan.decisions.push(...this.decisions(b));
      }
    }
    const fp = this.compileFastPath(options, issues);
    if (issues.length) return Err(new ValidationError(`firewall ${this.table}`, issues));
    if (fp instanceof UnsupportedError) return Err(fp);
    plan.nft.push(...fp.nft);
    plan.decisions.push(...fp.decisions);
    return Ok(plan);
  }

  /**
   * {@link compile} for `apply()`: the plan goes straight to the executor,
   * whose validation then skips the strict re-parse of the commands this
   * compiler built from zod-validated input (see `markCompiled`).
   * @internal
   */
  protected compileForApply(options: FirewallCompileOptions): Result<Plan, ValidationError | UnsupportedError> {
    const p = this.compile(options);
    if (p.ok) markCompiled(p.val);
    return p;
  }

  /** @internal */
  protected explicitBackends(): VmBackends | undefined {
    const o = this.vmOptions;
    if (o.reject === 'auto' || o.stateful === 'auto') return undefined;
    return { reject: o.reject, stateful: o.stateful, rejectMark: o.rejectMark, establishedMark: o.establishedMark };
  }

  /** @internal */
  protected decisions(b: VmBackends): Plan['decisions'] {
    const why = {
      native: 'the kernel supports it in the bridge family',
      nativeReject:
        'bridge reject works only in the prerouting/input hooks: frames from a VM and unicast frames to a VM\'s MAC are judged in prerouting and answered; broadcast/multicast frames (never answered with ICMP errors) and frames the host itself sends to a VM are dropped by REJECT rules',
      br_netfilter: 'not available in the bridge family on this kernel; done in an inet companion table through br_netfilter (bridge-nf-call-iptables=1)',
      drop: 'asked for: REJECT is compiled as DROP',
      off: 'no bridge conntrack and no br_netfilter: VM chains are stateless',
    } as const;
    return [
      { subject: 'vm.reject', chosen: b.reject, reason: b.reject === 'native' ? why.nativeReject : b.reject === 'drop' && this.vmOptions.reject !== 'drop' ? 'no bridge reject and no br_netfilter on this kernel: REJECT rules are refused' : why[b.reject] },
      { subject: 'vm.stateful', chosen: b.stateful, reason: why[b.stateful] },
    ];
  }

}
