/**
 * The Firewall builder: chains, typed rules, named sets and maps, NAT, and
 * per-VM bridge firewalls. `compile()` is pure and returns a {@link Plan};
 * `check()`, `apply()`, `rollback()` and `destroy()` go through the plan
 * executor; live changes (set elements, single rules, one VM) are one small
 * nft transaction each.
 * @module
 */
import { type ApplyError, NetfenceError, ValidationError, type ValidationIssue } from '../errors.js';
import { detectCapabilities } from '../capabilities/index.js';
import { emptyPlan, type Plan, type TableRef } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { SerialQueue } from '../util/serial.js';

import { elementExpr, idFromComment } from './compile.js';
import { failedAtStaleHandle } from './live-rules.js';
import * as x from '../nft/build.js';
import { fastPathRefreshCommands, type FlowtableCapabilitySource } from './flowtable.js';
import type { Command, Expression } from '../nft/schema/index.js';
import { checkPlan, destroyTables, listRules, listSets, probeBridge, submit, type AppliedPlan, type ApplyOptions } from './kernel.js';
import { SetElement, type ChainInput, type FastPathInput, type FirewallInit, type MapInput, type RuleInput, type SetInput } from './spec.js';
import { parseRule } from './rule-parse.js';
import { companionTable, parseVm, vmAttachCommands, vmBaseCommands, vmDetachCommands, vmLayoutIssue, preroutingLayout, type VmBackends, type VmSpec, VM_NAMES } from './vm.js';
import { type VmOptions } from './vm-options.js';
import { FirewallBuilder, key, safeName, type FirewallCompileOptions, type FirewallStatus } from './builder.js';

export type { ChainInput, FastPathInput, FirewallInit, MapInput, RuleInput, SetInput, VmSpec, VmBackends, FlowtableCapabilitySource, FirewallCompileOptions, FirewallStatus, VmOptions };

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
export class Firewall extends FirewallBuilder {
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
    const p = this.compileForApply({ capabilities: caps.val });
    if (p.err) return Err(p.val);
    const r = await submit(p.val, options);
    this.liveHandles.clear(); // the table was replaced (or may have been): every handle is new
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
    this.liveHandles.clear();
    return r.err ? Err(r.val) : Ok(undefined);
    });
  }

  /** Delete the firewall's table(s) from the kernel (only if netfence created them for this owner). */
  async destroy(): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const tables: TableRef[] = [this.tableRef];
    if (this.family === 'bridge') tables.push({ family: 'inet', name: companionTable(this.table) });
    const r = await destroyTables(tables, this.netns, this.owner);
    this.liveHandles.clear();
    if (r.ok) this.fastPathLive = undefined;
    return r.err ? Err(r.val) : Ok(undefined);
    });
  }

  /**
   * Run a small transaction on the live table (no recompilation). With a live
   * fast path, the same transaction flushes its offloaded flows, so
   * established flows meet the changed rules. `snapshot: 'never'` (element
   * and single-rule changes) does not list the sets: the batch is atomic, and
   * a failure after it commits is reported, not reverted. VM attach, update
   * and detach pass `'always'`: a failure after the batch (verification)
   * puts the table back as it was.
   */
  private async small(nft: Command[], tables: TableRef[] = [this.tableRef], snapshot: 'never' | 'always' = 'never', echo = false): Promise<Result<readonly unknown[] | undefined, ApplyError>> {
    const plan = emptyPlan(this.owner, this.netns);
    plan.tables = tables;
    plan.nft = this.fastPathLive ? [...nft, ...fastPathRefreshCommands(this.fastPathLive)] : nft;
    const r = await submit(plan, { snapshot, echo });
    return r.err ? Err(r.val) : Ok(r.val.echo);
  }

  /**
   * Handles of rules added live (`addRule`), from nft's echo, by rule id: so
   * that `removeRule` deletes them without listing the chain. Forgotten by a
   * full `apply()` (every handle changes) and `destroy()`; a handle that went
   * stale fails the delete atomically and the chain is listed instead.
   */
  private readonly liveHandles = new Map<string, { chain: string; handle: number }>();

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
    if (r.err) return Err(r.val);
    const s = this.sets.get(set);
    for (const p of e.val.parsed) s?.elems.set(key(p), p);
    return Ok(undefined);
    });
  }

  /** Remove elements from a live set: one `delete element` transaction. */
  async deleteElements(set: string, elements: unknown[]): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const e = this.elementsOf(set, elements);
    if (e.err) return Err(e.val);
    const r = await this.small([x.cmd.delete({ element: { family: this.family, table: this.table, name: set, elem: e.val.exprs } })]);
    if (r.err) return Err(r.val);
    const s = this.sets.get(set);
    for (const p of e.val.parsed) s?.elems.delete(key(p));
    return Ok(undefined);
    });
  }

  /**
   * Add one rule to a live chain: one transaction with one `add rule` (or
   * `insert rule` with `position: 'first'`). The rule is also added to the
   * builder, so a later `apply()` keeps it.
   */
  async addRule(chain: string, spec: RuleInput, options: { position?: 'last' | 'first' } = {}): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const r = parseRule(spec);
    const id = typeof (spec as { id?: unknown })?.id === 'string' ? (spec as { id: string }).id : '?';
    if (!r.success) return Err(new ValidationError(`rule ${id}`, r.error.issues.map((i) => ({ path: `rule ${id}.${i.path.map(String).join('.')}`, message: i.message }))));
    const c = this.chains.get(chain);
    if (!c) return Err(new ValidationError(`rule ${id}`, [{ path: `rule ${id}.chain`, message: `chain ${safeName(chain)} is not declared` }]));
    if (this.ruleChain.has(r.data.id)) return Err(new ValidationError(`rule ${id}`, [{ path: `rule ${id}.id`, message: 'duplicate rule id' }]));
    const issues: ValidationIssue[] = [];
    const cmd = this.ruleCommand(chain, r.data, issues, options.position === 'first' ? 'insert' : 'add');
    if (!cmd) return Err(new ValidationError(`rule ${id}`, issues));
    const res = await this.small([cmd], [this.tableRef], 'never', true);
    if (res.err) return Err(res.val);
    if (options.position === 'first') c.rules.unshift(r.data);
    else c.rules.push(r.data);
    this.ruleChain.set(r.data.id, chain);
    const echoed = res.val?.[0] as Record<string, { rule?: { handle?: unknown } }> | undefined;
    const handle = (echoed?.add ?? echoed?.insert)?.rule?.handle;
    if (typeof handle === 'number') this.liveHandles.set(r.data.id, { chain, handle });
    return Ok(undefined);
    });
  }

  /** Remove one rule by its id: finds its handle (listing only its chain) and deletes it in one transaction. */
  async removeRule(id: string): Promise<Result<void, NetfenceError>> {
    return this.serial(async () => {
    const chain = this.ruleChain.get(id);
    if (!chain) return Err(new ValidationError('removeRule', [{ path: 'id', message: `no rule with id ${id} in this firewall` }]));
    const del = (handles: number[]) => this.small(handles.map((handle) => x.cmd.delete({ rule: { family: this.family, table: this.table, chain, handle } })));
    const kept = this.liveHandles.get(id);
    this.liveHandles.delete(id);
    // A rule added live: its handle is known from nft's echo, no listing. Gone stale: list the chain.
    let res = kept && kept.chain === chain ? await del([kept.handle]) : undefined;
    if (!res || (res.err && failedAtStaleHandle(res.val))) {
      const l = await listRules(this.netns, this.family, this.table, [chain]);
      if (l.err) return Err(l.val);
      const found = l.val.filter((r) => idFromComment(r.comment) === id);
      if (found.length === 0) return Err(new NetfenceError('NOT_FOUND', `rule ${id} is not in chain ${chain} of table ${this.family} ${this.table} in the kernel`));
      res = await del(found.map((f) => f.handle));
    }
    if (res.err) return Err(res.val);
    const c = this.chains.get(chain);
    if (c) c.rules = c.rules.filter((r) => r.id !== id);
    this.ruleChain.delete(id);
    return Ok(undefined);
    });
  }

  /**
   * Per-rule counters (by id) and per-set counters (sets with `counter: true`), read from the kernel.
   * @deprecated use {@link stats} (same result; the name every class uses).
   */
  status(): Promise<Result<FirewallStatus, NetfenceError>> {
    return this.stats();
  }

  /** Per-rule counters (by id) and per-set counters (sets with `counter: true`), read from the kernel. */
  async stats(): Promise<Result<FirewallStatus, NetfenceError>> {
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

  protected async resolveBackends(): Promise<Result<VmBackends, NetfenceError>> {
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
    const r = await this.small(p.val.nft, p.val.tables, 'always');
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
    const tables = [this.tableRef];
    if (b.val.reject === 'br_netfilter' || b.val.stateful === 'br_netfilter') tables.push({ family: 'inet', name: companionTable(this.table) });
    const r = await this.small(vmDetachCommands(this.table, vm, b.val), tables, 'always');
    if (r.err) return Err(r.val);
    this.vms.delete(vmId);
    return Ok(undefined);
    });
  }

  /** Ids of attached VMs. */
  attachedVms(): string[] {
    return [...this.vms.keys()];
  }
}
