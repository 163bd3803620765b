/**
 * The declared objects, compiled by their own classes: a Firewall per
 * `firewalls`/`vmFirewalls` entry, the SmartProxy route compiler, a Throttler
 * for `throttle.limits`, an XdpBlocklist per `blocklists` entry. Each gives
 * its install plan and what `plan` compares. Host facts are read first (the
 * classes' own `hostFacts()`), compilation is theirs.
 * @module
 */
import { detectCapabilities } from '../capabilities/index.js';
import { NetfenceError, ValidationError } from '../errors.js';
import { Firewall } from '../firewall/firewall.js';
import { parseVm } from '../firewall/vm.js';
import { structure } from '../integrations/smartproxy/compile.js';
import { RouteCore, systemResolve } from '../integrations/smartproxy/core.js';
import { NO_FAST_PATH } from '../integrations/smartproxy/fastpath.js';
import type { IRouteConfig } from '../integrations/smartproxy/types.js';
import * as x from '../nft/build.js';
import { tableKey } from '../plan/ownership.js';
import { emptyPlan, type Plan, type TableRef } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { compileLimit, type LimitRecord } from '../throttle/compile.js';
import type { ThrottleHostFacts } from '../throttle/handle.js';
import { Throttler } from '../throttle/throttler.js';
import type { LimitRequest } from '../throttle/types.js';
import { parseEntries } from '../xdp/entries.js';
import { NftBlocklist } from '../xdp/nft-backend.js';
import { XdpBlocklist } from '../xdp/xdp-blocklist.js';
import type { XdpFacts } from '../xdp/compile.js';
import { modelFromCommands, type TableModel } from './model.js';
import type { BlocklistDecl, Declaration, FirewallDecl, VmFirewallDecl } from './schema.js';

/** What the file records about an applied object (in its state file), and compares next time. */
export type ObjectRecord =
  | { kind: 'firewall' | 'vm-firewall' | 'smartproxy'; tables: TableRef[]; models: Record<string, TableModel> }
  | { kind: 'limits'; name: string; specs: unknown[]; records: LimitRecord[] }
  | { kind: 'blocklist'; name: string; iface: string; backend: 'xdp' | 'nft'; options: Record<string, unknown>; pinDir: string; nftTable: string; entries: string[] };

/** A declared object compiled: its key, its install plan, and its record. */
export interface DesiredObject {
  /** `firewall inet web`, `vm-firewall br0fw`, `smartproxy`, `limits default`, `blocklist bl0`. */
  key: string;
  record: ObjectRecord;
  /** The plan that puts it into the kernel as declared (a full replacement of its tables). */
  plan: Plan;
  /** Blocklists: the blocklist object (entries are set through it after the transaction). */
  blocklist?: XdpBlocklist;
  /** Blocklists: the XDP host facts read (for a removal plan). */
  xdpFacts?: XdpFacts;
}

/** A Firewall that takes its VMs from a file: the VM specs are validated and compiled as `attachVm` would. */
class FileFirewall extends Firewall {
  async declareVms(specs: readonly unknown[]): Promise<Result<void, NetfenceError>> {
    const b = await this.resolveBackends();
    if (b.err) return Err(b.val);
    for (const spec of specs) {
      const c = this.compileVm(spec as Parameters<Firewall['compileVm']>[0], b.val); // the checks attachVm makes (REJECT honoured, layout)
      if (c.err) return Err(c.val);
      const p = parseVm(spec);
      if (p.ok) this.vms.set(p.vm.vmId, p.vm);
    }
    return Ok(undefined);
  }
}

/** A Throttler compiling several limits at once (ids 1..n, shared sites built once), as n `limit()` calls would. */
class FileThrottler extends Throttler {
  compileAll(reqs: readonly LimitRequest[], facts: readonly ThrottleHostFacts[]): Result<{ plan: Plan; record: LimitRecord }[], NetfenceError> {
    const out: { plan: Plan; record: LimitRecord }[] = [];
    for (const [i, req] of reqs.entries()) {
      const id = this.nextId++;
      const p = this.prepare(req, facts[i] as ThrottleHostFacts, id);
      if (p.err) return Err(p.val);
      const c = compileLimit(p.val.spec, p.val.ctx);
      const key = this.siteKey(p.val.ctx.backend.name, p.val.spec);
      const s = this.sites.get(key);
      if (s) s.count++;
      else this.sites.set(key, { info: p.val.ctx.site, backend: p.val.ctx.backend.name, count: 1 });
      out.push(c);
    }
    return Ok(out);
  }
}

function prefixed(what: string, e: NetfenceError): NetfenceError {
  if (e instanceof ValidationError) return new ValidationError(what, e.issues.map((i) => ({ path: i.path, message: i.message })));
  return new NetfenceError(e.code, `${what}: ${e.message}`, { cause: e, ...(e.hint ? { hint: e.hint } : {}) });
}

function tableModels(plan: Plan): Record<string, TableModel> {
  return Object.fromEntries(plan.tables.map((t) => [tableKey(t), modelFromCommands(plan.nft, t)]));
}

async function compileFirewall(f: FirewallDecl | VmFirewallDecl, vm: boolean, owner: string, netns: string | undefined, where: string): Promise<Result<DesiredObject, NetfenceError>> {
  const family = vm ? 'bridge' : ((f as FirewallDecl).family ?? 'inet');
  const fw = new FileFirewall({ table: f.table, family, ...(netns !== undefined ? { netns } : {}), owner });
  for (const [name, spec] of Object.entries(f.chains ?? {})) fw.chain(name, spec);
  for (const [chain, rules] of Object.entries(f.rules ?? {})) fw.rules(chain, rules);
  for (const [name, spec] of Object.entries(f.sets ?? {})) fw.set(name, spec);
  for (const [name, spec] of Object.entries(f.maps ?? {})) fw.map(name, spec);
  const fp = (f as FirewallDecl).fastPath;
  if (fp) fw.fastPath(fp);
  if (vm) {
    const v = f as VmFirewallDecl;
    if (v.vmOptions) fw.vmOptionsSet(v.vmOptions);
    const r = await fw.declareVms(v.vms);
    if (r.err) return Err(prefixed(where, r.val));
  }
  const caps = fp ? await detectCapabilities(netns !== undefined ? { netns } : {}) : undefined;
  const p = fw.compile({ capabilities: caps });
  if (p.err) return Err(prefixed(where, p.val));
  return Ok({ key: `${vm ? 'vm-firewall' : 'firewall'} ${family} ${f.table}`, plan: p.val, record: { kind: vm ? 'vm-firewall' : 'firewall', tables: p.val.tables, models: tableModels(p.val) } });
}

async function compileSmartProxy(d: NonNullable<Declaration['smartproxy']>, owner: string, netns: string | undefined): Promise<Result<DesiredObject, NetfenceError>> {
  const core = new RouteCore({ tableName: d.tableName, netns, owner, engine: 'lenient', preserveSourceIP: () => undefined, routeLocalnet: false, resolve: systemResolve, fastPath: NO_FAST_PATH });
  const compiled = [];
  for (const route of d.routes) {
    const p = await core.prepare(route as unknown as IRouteConfig);
    if (p.err) return Err(prefixed('smartproxy', p.val));
    if (p.val.kind === 'route' && p.val.compiled.enabled) compiled.push(p.val.compiled);
  }
  const tables = [...new Set([d.tableName, ...compiled.map((c) => c.table)])];
  const plan = emptyPlan(owner, netns);
  plan.tables = tables.map((name) => ({ family: 'inet', name }));
  const order = compiled.map((c, i) => ({ c, i })).sort((a, b) => b.c.priority - a.c.priority || a.i - b.i);
  for (const t of tables) {
    const ref = { family: 'inet' as const, name: t };
    plan.nft.push(x.cmd.add({ table: ref }), x.cmd.delete({ table: ref }), ...structure(t));
    for (const { c } of order) if (c.table === t) plan.nft.push(...c.sets.flatMap((s) => s.cmds));
    for (const { c } of order) if (c.table === t) plan.nft.push(...c.rules);
  }
  for (const c of compiled) plan.decisions.push(...c.decisions);
  return Ok({ key: 'smartproxy', plan, record: { kind: 'smartproxy', tables: plan.tables, models: tableModels(plan) } });
}

async function compileLimits(d: NonNullable<Declaration['throttle']>, owner: string, netns: string | undefined): Promise<Result<DesiredObject, NetfenceError>> {
  const t = new FileThrottler({ name: d.name, ...(netns !== undefined ? { netns } : {}) });
  const facts: ThrottleHostFacts[] = [];
  for (const [i, req] of d.limits.entries()) {
    const f = await t.hostFacts(req as LimitRequest);
    if (f.err) return Err(prefixed(`throttle.limits[${i}] (${req.direction} ${req.iface})`, f.val));
    facts.push(f.val);
  }
  const c = t.compileAll(d.limits as LimitRequest[], facts);
  if (c.err) return Err(prefixed('throttle.limits', c.val));
  const plan = emptyPlan(owner, netns);
  for (const { plan: p } of c.val) {
    plan.tables.push(...p.tables);
    plan.nft.push(...p.nft);
    plan.steps.push(...p.steps);
    plan.decisions.push(...p.decisions);
  }
  const records = c.val.map((r) => r.record);
  return Ok({ key: `limits ${d.name}`, plan, record: { kind: 'limits', name: d.name, specs: records.map((r) => r.spec), records } });
}

async function compileBlocklist(b: BlocklistDecl, i: number, owner: string, netns: string | undefined): Promise<Result<DesiredObject, NetfenceError>> {
  const where = `blocklists[${i}] (${b.name ?? b.iface})`;
  const { entries: raw, ...options } = b;
  const entries = parseEntries(raw ?? [], `${where}.entries`, { dedupe: true });
  if (entries.err) return Err(entries.val);
  const bl = new XdpBlocklist({ ...options, ...(netns !== undefined ? { netns } : {}) });
  const nftOf = () => new NftBlocklist(bl.nftTable, bl.options.iface, netns, owner).setupPlan(bl.options.matchDestination);
  const base = { name: bl.name, iface: bl.options.iface, options: { ...bl.options, netns: undefined } as Record<string, unknown>, pinDir: bl.pinDir, nftTable: bl.nftTable, entries: entries.val.map((e) => e.text).sort() };
  if (bl.options.backend === 'nft') return Ok({ key: `blocklist ${bl.name}`, plan: nftOf(), blocklist: bl, record: { kind: 'blocklist', backend: 'nft', ...base } });
  const f = await bl.hostFacts();
  const c = f.ok ? bl.compile(f.val) : f;
  if (c.ok) return Ok({ key: `blocklist ${bl.name}`, plan: c.val.plan, blocklist: bl, xdpFacts: f.ok ? f.val : undefined, record: { kind: 'blocklist', backend: 'xdp', ...base } });
  if (bl.options.backend === 'xdp' || c.val.code === 'XDP_BUSY') return Err(prefixed(where, c.val));
  const plan = nftOf();
  plan.decisions.push({ subject: `blocklist ${bl.name}`, chosen: 'nft', reason: `XDP not usable: ${c.val.message.split('\n')[0]}` });
  return Ok({ key: `blocklist ${bl.name}`, plan, blocklist: bl, record: { kind: 'blocklist', backend: 'nft', ...base } });
}

/** Compile every object the file declares (reads host facts; changes nothing). */
export async function compileDeclaration(d: Declaration, owner: string, netns: string | undefined): Promise<Result<DesiredObject[], NetfenceError>> {
  const out: DesiredObject[] = [];
  const push = (r: Result<DesiredObject, NetfenceError>): NetfenceError | undefined => {
    if (r.err) return r.val;
    out.push(r.val);
    return undefined;
  };
  for (const [i, f] of (d.firewalls ?? []).entries()) {
    const e = push(await compileFirewall(f, false, owner, netns, `firewalls[${i}] (${f.table})`));
    if (e) return Err(e);
  }
  for (const [i, f] of (d.vmFirewalls ?? []).entries()) {
    const e = push(await compileFirewall(f, true, owner, netns, `vmFirewalls[${i}] (${f.table})`));
    if (e) return Err(e);
  }
  if (d.smartproxy) {
    const e = push(await compileSmartProxy(d.smartproxy, owner, netns));
    if (e) return Err(e);
  }
  if (d.throttle && d.throttle.limits.length > 0) {
    const e = push(await compileLimits(d.throttle, owner, netns));
    if (e) return Err(e);
  }
  for (const [i, b] of (d.blocklists ?? []).entries()) {
    const e = push(await compileBlocklist(b, i, owner, netns));
    if (e) return Err(e);
  }
  return Ok(out);
}
