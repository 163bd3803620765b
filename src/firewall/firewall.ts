/**
 * The Firewall builder: chains, typed rules, named sets and maps, NAT, and
 * per-VM bridge firewalls. `compile()` is pure and returns a {@link Plan};
 * `check()`, `apply()`, `rollback()` and `destroy()` go through the plan
 * executor; live changes (set elements, single rules, one VM) are one small
 * nft transaction each.
 * @module
 */
import { NetfenceError, UnsupportedError, ValidationError, type ValidationIssue, fromZodIssues } from '../errors.js';
import { detectCapabilities } from '../capabilities/index.js';
import { emptyPlan, type Plan, type TableRef } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { SerialQueue } from '../util/serial.js';
import { NetnsName } from '../validate.js';
import { chainCommand, compileRuleExprs, elementExpr, idFromComment, mapCommand, ruleComment, setCommand, type CompileContext } from './compile.js';
import * as x from '../nft/build.js';
import { decideFastPath, DEFAULT_FASTPATH_NAME, DEFAULT_FASTPATH_PRIORITY, FASTPATH_FAMILIES, fastPathCommands, fastPathRefreshCommands, offloadRuleId, type FastPathTarget, type FlowtableCapabilitySource } from './flowtable.js';
import type { Command, Expression, Family } from '../nft/schema/index.js';
import { checkPlan, destroyTables, listRules, listSets, probeBridge, submit, type AppliedPlan, type ApplyOptions } from './kernel.js';
import { ChainSpec, FastPathSpec, FirewallOptions, MapSpec, RuleSpec, SetElement, SetSpec, type ChainInput, type FastPath, type FastPathInput, type FirewallInit, type MapInput, type Rule, type RuleInput, type SetInput } from './spec.js';
import {
  companionTable,
  parseVm,
  vmAttachCommands,
  vmBaseCommands,
  vmDetachCommands,
  vmLayoutIssue,
  preroutingLayout,
  type ParsedVm,
  type VmBackends,
  type VmSpec,
  VM_NAMES,
} from './vm.js';
import { VmOptionsSchema, type ResolvedVmOptions, type VmOptions } from './vm-options.js';

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

function key(e: unknown): string {
  return JSON.stringify(e);
}

/**
 * A firewall owning one nftables table.
 *
 * ```ts
 * const fw = new Firewall({ table: 'web', family: 'inet' })
 *   .set('blocked', { type: 'ipv4_addr', interval: true, elements: ['198.18.9.0/24'] })
 *   .chain('input', { hook: 'input', priority: 0, policy: 'drop' })
 *   .rule('input', { id: 'est', ctState: ['established', 'related'], action: 'accept' })
 *   .rule('input', { id: 'blocked', saddr: '@blocked', action: 'drop' })
 *   .rule('input', { id: 'web', protocol: 'tcp', dport: [80, 443], action: 'accept' });
 * const r = await fw.apply();
 * ```
 */
/** A caller-given name for an issue path; never throws (symbols, null-prototype objects). */
function safeName(v: unknown): string {
  return typeof v === 'string' ? v : `<${typeof v}>`;
}

export class Firewall {
  /** Table name. */
  readonly table: string;
  /** Table family. */
  readonly family: Family;
  /** Network namespace, if any. */
  readonly netns: string | undefined;
  /** Plan owner recorded in the table. */
  readonly owner: string;

  private readonly chains = new Map<string, ChainEntry>();
  private readonly sets = new Map<string, SetInput & { elems: Map<string, unknown> }>();
  private readonly maps = new Map<string, MapInput>();
  private readonly ruleChain = new Map<string, string>();
  private readonly issues: ValidationIssue[] = [];
  private readonly vms = new Map<string, ParsedVm>();
  private vmOptions: ResolvedVmOptions = VmOptionsSchema.parse({});
  private backends: VmBackends | undefined;
  private lastApplied: AppliedPlan | undefined;
  private fastPathSpec: FastPath | undefined;
  private fastPathDeclared = false;
  /** The fast path in the kernel since the last apply (undefined: none), flushed by every live change. */
  private fastPathLive: FastPathTarget | undefined;

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

  private get ctx(): CompileContext {
    const sets = new Map<string, { type: string | string[]; map?: string | undefined }>();
    for (const [n, s] of this.sets) sets.set(n, { type: s.type });
    for (const [n, m] of this.maps) sets.set(n, { type: m.type, map: m.map });
    return { family: this.family, table: this.table, sets, chains: new Set(this.chains.keys()) };
  }

  private get tableRef(): TableRef {
    return { family: this.family, name: this.table };
  }

  private tables(): TableRef[] {
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
    const r = RuleSpec.safeParse(spec);
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
    const r = SetSpec.safeParse(spec);
    if (!r.success) this.issues.push(...r.error.issues.map((i) => ({ path: `set ${safeName(name)}.${i.path.map(String).join('.')}`, message: i.message })));
    else if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(name)) this.issues.push({ path: `set ${safeName(name)}`, message: 'invalid set name' });
    else if (this.sets.has(name) || this.maps.has(name)) this.issues.push({ path: `set ${name}`, message: 'declared twice' });
    else {
      const elems = new Map<string, unknown>();
      for (const e of r.data.elements ?? []) elems.set(key(e), e);
      const { elements: _e, ...rest } = r.data;
      this.sets.set(name, { ...rest, elems });
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

  /** Where this firewall's fast path lives (undefined when none is declared or the family has no flowtables). */
  private fastPathTarget(): FastPathTarget | undefined {
    const f = this.fastPathSpec;
    const family = FASTPATH_FAMILIES.find((fam) => fam === this.family);
    if (!f || !family) return undefined;
    return { family, table: this.table, name: f.name ?? DEFAULT_FASTPATH_NAME, devices: f.devices, priority: f.priority ?? DEFAULT_FASTPATH_PRIORITY };
  }

  /** The fast path's plan commands and decision, or the reason it cannot be compiled. */
  private compileFastPath(options: FirewallCompileOptions | undefined, issues: ValidationIssue[]): { nft: Command[]; decisions: Plan['decisions'] } | UnsupportedError {
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

  private setCommandOf(name: string, s: SetInput & { elems: Map<string, unknown> }, issues: ValidationIssue[]): Command {
    const { elems, ...rest } = s;
    return setCommand(this.ctx, name, { ...rest, elements: [...elems.values()] as SetInput['elements'] }, issues);
  }

  private ruleCommand(chain: string, rule: Rule, issues: ValidationIssue[], verb: 'add' | 'insert' = 'add'): Command | undefined {
    const expr = compileRuleExprs(rule, this.ctx, issues);
    if (!expr) return undefined;
    return x.cmd[verb](x.rule(this.ctx, chain, expr, { comment: ruleComment(rule.id, rule.comment) }));
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
        const cmd = this.ruleCommand(n, r, issues);
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

  private explicitBackends(): VmBackends | undefined {
    const o = this.vmOptions;
    if (o.reject === 'auto' || o.stateful === 'auto') return undefined;
    return { reject: o.reject, stateful: o.stateful, rejectMark: o.rejectMark, establishedMark: o.establishedMark };
  }

  private decisions(b: VmBackends): Plan['decisions'] {
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

  // -------------------------------------------------------------------------
  // Whole-table operations.

  /**
   * Changes of this firewall run one at a time, in call order: `apply()`
   * compiles when its turn comes, so a concurrent `addElements()`/`addRule()`
   * is never lost under a full replacement built from an older state.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn); // reentrant: updateVm -> attachVm
  }
  private readonly queue = new SerialQueue({ reentrant: true });

  /** Compile and have the kernel check the plan without committing anything. */
  async check(): Promise<Result<void, NetfenceError>> {
    const caps = await this.fastPathCapabilities();
    if (caps.err) return Err(caps.val);
    const p = this.compile({ capabilities: caps.val });
    if (p.err) return Err(p.val);
    return checkPlan(p.val);
  }

  /** The capability report a declared fast path needs (undefined when none is declared). */
  private async fastPathCapabilities(): Promise<Result<FlowtableCapabilitySource | undefined, NetfenceError>> {
    if (!this.fastPathSpec) return Ok(undefined);
    try {
      return Ok(await detectCapabilities({ netns: this.netns }));
    } catch (e) {
      return Err(e instanceof NetfenceError ? e : new NetfenceError('CAPABILITIES', `capability detection for the fast path failed: ${String(e)}`, { cause: e }));
    }
  }

  /**
   * Compile and apply as one transaction through the executor. The previous
   * content of the table is replaced atomically. `options` go to the executor
   * (health check, confirm-or-revert, snapshot).
   */
  async apply(options: ApplyOptions = {}): Promise<Result<AppliedPlan, NetfenceError>> {
    return this.serial(async () => {
    if (this.family === 'bridge' && this.vms.size > 0) {
      const b = await this.resolveBackends();
      if (b.err) return Err(b.val);
    }
    const caps = await this.fastPathCapabilities();
    if (caps.err) return Err(caps.val);
    const p = this.compile({ capabilities: caps.val });
    if (p.err) return Err(p.val);
    const r = await submit(p.val, options);
    if (r.err) return Err(r.val);
    this.lastApplied = r.val;
    this.fastPathLive = p.val.decisions.some((d) => d.subject === 'fastPath' && d.chosen === 'flowtable') ? this.fastPathTarget() : undefined;
    return Ok(r.val);
    });
  }

  /** Take back the last `apply()` (see the executor's rollback: snapshot restore or table deletion). */
  async rollback(): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    if (!this.lastApplied) return Err(new NetfenceError('NOTHING_APPLIED', 'rollback: nothing was applied by this Firewall'));
    const r = await this.lastApplied.rollback();
    return r.err ? Err(r.val) : Ok(undefined);
    });
  }

  /** Delete the firewall's table(s) from the kernel (only if netfence created them for this owner). */
  async destroy(): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const tables: TableRef[] = [this.tableRef];
    if (this.family === 'bridge') tables.push({ family: 'inet', name: companionTable(this.table) });
    const r = await destroyTables(tables, this.netns, this.owner);
    if (r.ok) this.fastPathLive = undefined;
    return r.err ? Err(r.val) : Ok(undefined);
    });
  }

  /**
   * Run a small transaction on the live table (no recompilation, no listing
   * of sets). With a live fast path, the same transaction flushes its
   * offloaded flows, so established flows meet the changed rules.
   */
  private async small(nft: Command[], tables: TableRef[] = [this.tableRef]): Promise<Result<void, NetfenceError>> {
    const plan = emptyPlan(this.owner, this.netns);
    plan.tables = tables;
    plan.nft = this.fastPathLive ? [...nft, ...fastPathRefreshCommands(this.fastPathLive)] : nft;
    const r = await submit(plan, { snapshot: 'never' });
    return r.err ? Err(r.val) : Ok(undefined);
  }

  // -------------------------------------------------------------------------
  // Live changes.

  private elementsOf(set: string, elements: unknown[]): Result<{ exprs: Expression[]; parsed: unknown[] }, ValidationError> {
    const s = this.sets.get(set);
    if (!s) return Err(new ValidationError('set elements', [{ path: 'set', message: `set ${set} is not declared in this firewall` }]));
    const issues: ValidationIssue[] = [];
    const exprs: Expression[] = [];
    const parsed: unknown[] = [];
    elements.forEach((e, i) => {
      const p = SetElement.safeParse(e);
      if (!p.success) {
        issues.push({ path: `${set}.elements.${i}`, message: p.error.issues[0]?.message ?? 'invalid' });
        return;
      }
      const r = elementExpr(s.type, p.data, s.interval === true);
      if (!r.ok) issues.push({ path: `${set}.elements.${i}`, message: r.message });
      else {
        exprs.push(r.value);
        parsed.push(p.data);
      }
    });
    if (issues.length) return Err(new ValidationError(`elements of set ${set}`, issues));
    if (exprs.length === 0) return Err(new ValidationError(`elements of set ${set}`, [{ path: 'elements', message: 'must not be empty' }]));
    return Ok({ exprs, parsed });
  }

  /** Add elements to a live set: one `add element` transaction; the set is never listed. */
  async addElements(set: string, elements: unknown[]): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const e = this.elementsOf(set, elements);
    if (e.err) return Err(e.val);
    const r = await this.small([x.cmd.add({ element: { family: this.family, table: this.table, name: set, elem: e.val.exprs } })]);
    if (r.ok) {
      const s = this.sets.get(set);
      for (const p of e.val.parsed) s?.elems.set(key(p), p);
    }
    return r;
    });
  }

  /** Remove elements from a live set: one `delete element` transaction. */
  async deleteElements(set: string, elements: unknown[]): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const e = this.elementsOf(set, elements);
    if (e.err) return Err(e.val);
    const r = await this.small([x.cmd.delete({ element: { family: this.family, table: this.table, name: set, elem: e.val.exprs } })]);
    if (r.ok) {
      const s = this.sets.get(set);
      for (const p of e.val.parsed) s?.elems.delete(key(p));
    }
    return r;
    });
  }

  /**
   * Add one rule to a live chain: one transaction with one `add rule` (or
   * `insert rule` with `position: 'first'`). The rule is also added to the
   * builder, so a later `apply()` keeps it.
   */
  async addRule(chain: string, spec: RuleInput, options: { position?: 'last' | 'first' } = {}): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const r = RuleSpec.safeParse(spec);
    const id = typeof (spec as { id?: unknown })?.id === 'string' ? (spec as { id: string }).id : '?';
    if (!r.success) return Err(new ValidationError(`rule ${id}`, r.error.issues.map((i) => ({ path: `rule ${id}.${i.path.map(String).join('.')}`, message: i.message }))));
    const c = this.chains.get(chain);
    if (!c) return Err(new ValidationError(`rule ${id}`, [{ path: `rule ${id}.chain`, message: `chain ${safeName(chain)} is not declared` }]));
    if (this.ruleChain.has(r.data.id)) return Err(new ValidationError(`rule ${id}`, [{ path: `rule ${id}.id`, message: 'duplicate rule id' }]));
    const issues: ValidationIssue[] = [];
    const cmd = this.ruleCommand(chain, r.data, issues, options.position === 'first' ? 'insert' : 'add');
    if (!cmd) return Err(new ValidationError(`rule ${id}`, issues));
    const res = await this.small([cmd]);
    if (res.ok) {
      if (options.position === 'first') c.rules.unshift(r.data);
      else c.rules.push(r.data);
      this.ruleChain.set(r.data.id, chain);
    }
    return res;
    });
  }

  /** Remove one rule by its id: finds its handle (listing only its chain) and deletes it in one transaction. */
  async removeRule(id: string): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const chain = this.ruleChain.get(id);
    if (!chain) return Err(new ValidationError('removeRule', [{ path: 'id', message: `no rule with id ${id} in this firewall` }]));
    const l = await listRules(this.netns, this.family, this.table, [chain]);
    if (l.err) return Err(l.val);
    const found = l.val.filter((r) => idFromComment(r.comment) === id);
    if (found.length === 0) return Err(new NetfenceError('NOT_FOUND', `rule ${id} is not in chain ${chain} of table ${this.family} ${this.table} in the kernel`));
    const res = await this.small(found.map((f) => x.cmd.delete({ rule: { family: this.family, table: this.table, chain, handle: f.handle } })));
    if (res.ok) {
      const c = this.chains.get(chain);
      if (c) c.rules = c.rules.filter((r) => r.id !== id);
      this.ruleChain.delete(id);
    }
    return res;
    });
  }

  /** Per-rule counters (by id) and per-set counters (sets with `counter: true`), read from the kernel. */
  async status(): Promise<Result<FirewallStatus, NetfenceError>> {
    const chains = [...this.chains.keys()];
    for (const vm of this.vms.values()) {
      chains.push(VM_NAMES.chainIn(vm.vmId), VM_NAMES.chainOut(vm.vmId));
      // Native bridge reject: unicast frames to the VM are counted in its prerouting copy (counters add up by id).
      if (this.backends && preroutingLayout(this.backends) && vm.mac !== undefined) chains.push(VM_NAMES.chainInPre(vm.vmId));
    }
    if (this.fastPathLive) chains.push(this.fastPathLive.name);
    const l = await listRules(this.netns, this.family, this.table, chains);
    if (l.err) return Err(l.val);
    const rules: FirewallStatus['rules'] = {};
    for (const r of l.val) {
      const id = idFromComment(r.comment);
      if (!id) continue;
      const prev = rules[id];
      if (prev) {
        prev.packets += r.packets;
        prev.bytes += r.bytes;
      } else rules[id] = { chain: r.chain, handle: r.handle, packets: r.packets, bytes: r.bytes };
    }
    const counted = [...this.sets.entries()].filter(([, s]) => s.counter).map(([n]) => n);
    const s = await listSets(this.netns, this.family, this.table, counted);
    if (s.err) return Err(s.val);
    return Ok({ rules, sets: Object.fromEntries(s.val) });
  }

  // -------------------------------------------------------------------------
  // VM firewalls.

  private async resolveBackends(): Promise<Result<VmBackends, NetfenceError>> {
    if (this.backends) return Ok(this.backends);
    if (this.family !== 'bridge') return Err(new NetfenceError('WRONG_FAMILY', `VM firewalls need a bridge-family table; ${this.table} is ${this.family}`, { hint: "create the Firewall with family: 'bridge'" }));
    const o = this.vmOptions;
    let b = this.explicitBackends();
    if (!b) {
      const p = await probeBridge(this.netns);
      // With no way to reject, 'auto' keeps 'drop' only as a placeholder: REJECT rules are then refused (compileVm), never silently dropped.
      const reject = o.reject !== 'auto' ? o.reject : p.reject ? 'native' : p.brNetfilter ? 'br_netfilter' : 'drop';
      const stateful = o.stateful !== 'auto' ? o.stateful : p.ct ? 'native' : p.brNetfilter ? 'br_netfilter' : 'off';
      b = { reject, stateful, rejectMark: o.rejectMark, establishedMark: o.establishedMark };
    }
    this.backends = b;
    return Ok(b);
  }

  /** The backends chosen for VM firewalls (after the first `attachVm`), with reasons. */
  vmDecisions(): Plan['decisions'] {
    return this.backends ? this.decisions(this.backends) : [];
  }

  /** The plan that installs or replaces one VM's chains (pure, given resolved backends). */
  compileVm(spec: VmSpec, backends: VmBackends): Result<Plan, ValidationError> {
    const p = parseVm(spec);
    if (!p.ok) return Err(new ValidationError(`VM firewall`, p.issues));
    const layout = vmLayoutIssue(p.vm, backends);
    if (layout) return Err(new ValidationError('VM firewall', [layout]));
    if (backends.reject === 'drop' && this.vmOptions.reject !== 'drop' && p.vm.rules.some((r) => r.action === 'REJECT')) {
      return Err(
        new ValidationError('VM firewall', [
          {
            path: `vm ${p.vm.vmId}.rules`,
            message:
              'REJECT cannot be honoured on this kernel (no bridge reject, no br_netfilter): load br_netfilter with bridge-nf-call-iptables=1, or choose vmOptionsSet({ reject: "drop" }) to drop such frames knowingly',
          },
        ]),
      );
    }
    const prev = this.vms.get(p.vm.vmId);
    const plan = emptyPlan(this.owner, this.netns);
    plan.tables = [this.tableRef];
    if (backends.reject === 'br_netfilter' || backends.stateful === 'br_netfilter') plan.tables.push({ family: 'inet', name: companionTable(this.table) });
    plan.nft = [...vmBaseCommands(this.table, backends), ...vmAttachCommands(this.table, p.vm, backends, prev)];
    plan.decisions = this.decisions(backends);
    return Ok(plan);
  }

  /**
   * Install a VM's firewall: its IN and OUT chains and its dispatch entries, in
   * one transaction. Other VMs' chains are not touched. Calling it for an
   * attached VM behaves like {@link updateVm}.
   */
  async attachVm(spec: VmSpec): Promise<Result<{ decisions: Plan['decisions'] }, NetfenceError>> {
    return this.serial(async () => {
    const b = await this.resolveBackends();
    if (b.err) return Err(b.val);
    const p = this.compileVm(spec, b.val);
    if (p.err) return Err(p.val);
    const r = await this.small(p.val.nft, p.val.tables);
    if (r.err) return Err(r.val);
    const parsed = parseVm(spec);
    if (parsed.ok) this.vms.set(parsed.vm.vmId, parsed.vm);
    return Ok({ decisions: p.val.decisions });
    });
  }

  /**
   * Replace a VM's rules atomically: one nft transaction flushes its chains and
   * adds the new rules, so no packet sees a half-updated or empty rule set.
   */
  async updateVm(spec: VmSpec): Promise<Result<{ decisions: Plan['decisions'] }, NetfenceError>> {
    return this.serial(async () => {
    const id = (spec as { vmId?: unknown })?.vmId;
    if (typeof id !== 'string' || !this.vms.has(id)) return Err(new ValidationError('updateVm', [{ path: 'vmId', message: `VM ${String(id)} is not attached (use attachVm)` }]));
    return this.attachVm(spec);
    });
  }

  /** Remove a VM's chains and dispatch entries in one transaction; other VMs are untouched. */
  async detachVm(vmId: string): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const vm = this.vms.get(vmId);
    if (!vm) return Err(new ValidationError('detachVm', [{ path: 'vmId', message: `VM ${vmId} is not attached` }]));
    const b = await this.resolveBackends();
    if (b.err) return Err(b.val);
    const r = await this.small(vmDetachCommands(this.table, vm, b.val));
    if (r.ok) this.vms.delete(vmId);
    return r;
    });
  }

  /** Ids of attached VMs. */
  attachedVms(): string[] {
    return [...this.vms.keys()];
  }
}
