/**
 * `plan`, `apply` and `destroy` of a declarative file. `plan` compiles every
 * declared object with its own class, reads what is in the kernel (the owned
 * tables, tc classes, XDP attachments and entries) and what the file applied
 * last (its record, see state.ts), and returns a diff per object. `apply`
 * merges the plans of the objects that change into ONE plan of the file's
 * owner and applies it through the executor: one nft batch, then the steps,
 * and any failure restores everything, including the record. `destroy`
 * removes what the file declares, in one transaction too.
 * @module
 */
import { join } from 'node:path';
import { ApplyError, NetfenceError } from '../errors.js';
import { hostFiles } from '../host/files.js';
import { run } from '../host/run.js';
import { nftList } from '../host/nft.js';
import { apply, type AppliedPlan, type ApplyOptions } from '../plan/executor.js';
import { mergePlans, type PlanPart } from '../plan/merge.js';
import { foreignOwner, OwnershipError, probeOwnership, tableKey } from '../plan/ownership.js';
import { emptyPlan, type Plan, type TableRef } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { backendByName } from '../throttle/backends/index.js';
import { throttleCaps } from '../throttle/caps.js';
import { compileRemove, type LimitRecord } from '../throttle/compile.js';
import { formatRate } from '../throttle/rate.js';
import { parseTcClassStats } from '../throttle/stats.js';
import { compileXdpDestroy } from '../xdp/compile.js';
import { parseEntries } from '../xdp/entries.js';
import { NftBlocklist } from '../xdp/nft-backend.js';
import { XdpBlocklist } from '../xdp/xdp-blocklist.js';
import type { XdpBlocklistOptions } from '../xdp/types.js';
import type { LoadedDeclaration } from './load.js';
import { diffTables, hasTableChanges, modelFromCommands, modelFromListing, type TableChanges, type TableModel } from './model.js';
import { compileDeclaration, type DesiredObject, type ObjectRecord } from './objects.js';
import { ensureStateDir, readState, stateStep, type DeclareState } from './state.js';

/** Options of {@link planDeclaration}, {@link applyDeclaration} and {@link destroyDeclaration}. */
export interface DeclareOptions {
  /** Network namespace (a name under /run/netns); the current one if absent. */
  netns?: string | undefined;
  /**
   * Called as the work moves on (compiling with the host's capabilities,
   * comparing each object, applying, loading blocklist entries), with one
   * short line saying what is being done: for progress where people wait.
   */
  onProgress?: ((what: string) => void) | undefined;
}

/** What happens to one declared object. */
export type ObjectAction = 'add' | 'change' | 'remove' | 'none';

/** The difference for one object between the kernel and the file. */
export interface ObjectDiff {
  /** `firewall inet web`, `vm-firewall bridge br0fw`, `smartproxy`, `limits default`, `blocklist bl0`. */
  key: string;
  kind: ObjectRecord['kind'];
  action: ObjectAction;
  /** Per owned table (firewalls, SmartProxy): what differs. */
  tables?: { table: string; exists: boolean; changes: TableChanges }[];
  /** Limits and blocklists: one line per difference (`l1 egress veth0: rate 10 Mbit/s -> 20 Mbit/s`). */
  details: string[];
  /** Blocklists: entries to add and to remove. */
  entries?: { added: string[]; removed: string[] };
}

/** The result of {@link planDeclaration}: a diff per object. */
export interface DeclarationDiff {
  owner: string;
  netns: string | undefined;
  source: string;
  objects: ObjectDiff[];
  /** How many objects change (action other than `none`). */
  changes: number;
}

/** A computed plan, with what apply needs. @internal */
interface Computed {
  diff: DeclarationDiff;
  desired: DesiredObject[];
  state: DeclareState | undefined;
  stateText: string | undefined;
  /** Desired blocklist entries, canonical, by key. */
  entries: Map<string, string[]>;
}

const EMPTY: TableModel = { chains: {}, objects: {} };

async function tableState(t: TableRef, owner: string, netns: string | undefined): Promise<Result<TableModel | undefined, NetfenceError>> {
  const p = await probeOwnership(t, owner, netns);
  if (p.err) return Err(p.val);
  if (p.val === 'absent') return Ok(undefined);
  if (p.val === 'not-owned') return Err(new OwnershipError(t, await foreignOwner(t, netns), owner));
  const l = await nftList(['table', t.family, t.name], { netns, timeoutMs: 600_000 });
  if (l.err) return Err(l.val);
  return Ok(modelFromListing(l.val, t));
}

function limitLabel(r: LimitRecord): string {
  return `l${r.id} ${r.spec.direction} ${r.spec.iface}`;
}

function limitSummary(r: LimitRecord): string {
  const s = r.spec;
  const parts = [s.rate !== undefined ? `rate ${formatRate(s.rate)}` : undefined, s.quota ? `quota ${s.quota.bytes} bytes (${s.quota.action})` : undefined, s.match ? `match ${JSON.stringify(s.match)}` : undefined, `backend ${r.backend}`];
  return `${limitLabel(r)}: ${parts.filter(Boolean).join(', ')}`;
}

function specChanges(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])]) {
    const x = JSON.stringify(a[k]);
    const y = JSON.stringify(b[k]);
    if (x === y) continue;
    const show = (v: unknown) => (v === undefined ? '(none)' : k === 'rate' && typeof v === 'number' ? formatRate(v) : JSON.stringify(v));
    out.push(`${k} ${show(a[k])} -> ${show(b[k])}`);
  }
  return out;
}

/** Whether a recorded limit is in the kernel: its owned table, or its tc class. */
async function limitPresent(r: LimitRecord, owner: string, netns: string | undefined): Promise<boolean> {
  if (r.usesNft) {
    const p = await probeOwnership({ family: 'inet', name: r.table }, owner, netns);
    if (!p.ok || p.val !== 'owned') return false;
  }
  if (r.kernelRateBps !== undefined && !backendByName(r.backend).policesInNft && r.backend !== 'tc-police') {
    const c = await run(['tc', '-s', '-j', 'class', 'show', 'dev', r.dev], { netns, what: 'read tc classes' });
    if (!c.ok || parseTcClassStats(c.val.stdout, r.classid) === undefined) return false;
  }
  return true;
}

type BlocklistRecord = Extract<ObjectRecord, { kind: 'blocklist' }>;
type LimitsRecord = Extract<ObjectRecord, { kind: 'limits' }>;

/** Whether the blocklist is in the kernel with the given backend, and its entries (canonical) if so. */
async function blocklistState(rec: BlocklistRecord, owner: string, netns: string | undefined): Promise<Result<{ backend: 'xdp' | 'nft' | undefined; entries: string[] }, NetfenceError>> {
  const bl = new XdpBlocklist({ ...(rec.options as XdpBlocklistOptions), ...(netns !== undefined ? { netns } : {}) });
  if (hostFiles().exists(join(rec.pinDir, 'prog'))) {
    const f = await bl.hostFacts();
    if (f.ok && f.val.attached && f.val.attached.id === f.val.ourProgId) {
      const l = await bl.list();
      bl.close();
      if (l.err) return Err(l.val);
      return Ok({ backend: 'xdp', entries: l.val.map((e) => e.entry).sort() });
    }
  }
  const ref: TableRef = { family: 'netdev', name: rec.nftTable };
  const p = await probeOwnership(ref, owner, netns);
  if (p.err) return Err(p.val);
  if (p.val === 'not-owned') return Err(new OwnershipError(ref, await foreignOwner(ref, netns), owner));
  if (p.val === 'absent') return Ok({ backend: undefined, entries: [] });
  const l = await new NftBlocklist(rec.nftTable, rec.iface, netns, owner).list();
  if (l.err) return Err(l.val);
  return Ok({ backend: 'nft', entries: l.val.map((e) => e.entry.text).sort() });
}

async function diffObject(d: DesiredObject, prev: ObjectRecord | undefined, owner: string, netns: string | undefined): Promise<Result<ObjectDiff, NetfenceError>> {
  const rec = d.record;
  const out: ObjectDiff = { key: d.key, kind: rec.kind, action: 'none', details: [] };
  if (rec.kind === 'firewall' || rec.kind === 'vm-firewall' || rec.kind === 'smartproxy') {
    const prevModels = prev && 'models' in prev ? prev.models : undefined;
    out.tables = [];
    for (const t of rec.tables) {
      const k = tableKey(t);
      const cur = await tableState(t, owner, netns);
      if (cur.err) return Err(cur.val);
      const want = rec.models[k] ?? modelFromCommands(d.plan.nft, t);
      out.tables.push({ table: k, exists: cur.val !== undefined, changes: diffTables(cur.val ?? EMPTY, want, cur.val ? prevModels?.[k] : undefined) });
    }
    out.action = out.tables.every((t) => !t.exists) ? 'add' : out.tables.some((t) => !t.exists || hasTableChanges(t.changes)) ? 'change' : 'none';
    return Ok(out);
  }
  if (rec.kind === 'limits') {
    const p = prev?.kind === 'limits' ? prev : undefined;
    if (!p) {
      out.action = 'add';
      out.details = rec.records.map((r) => `+ ${limitSummary(r)}`);
      return Ok(out);
    }
    const n = Math.max(p.records.length, rec.records.length);
    for (let i = 0; i < n; i++) {
      const a = p.records[i];
      const b = rec.records[i];
      if (!a && b) out.details.push(`+ ${limitSummary(b)}`);
      else if (a && !b) out.details.push(`- ${limitSummary(a)}`);
      else if (a && b) {
        const c = specChanges(a.spec as unknown as Record<string, unknown>, b.spec as unknown as Record<string, unknown>);
        if (a.backend !== b.backend) c.push(`backend ${a.backend} -> ${b.backend}`);
        if (c.length) out.details.push(`~ ${limitLabel(b)}: ${c.join(', ')}`);
      }
    }
    for (const r of p.records) if (!(await limitPresent(r, owner, netns))) out.details.push(`! ${limitLabel(r)}: missing in the kernel (re-created)`);
    out.action = out.details.length ? 'change' : 'none';
    return Ok(out);
  }
  const bl = rec as BlocklistRecord;
  const s = await blocklistState(bl, owner, netns);
  if (s.err) return Err(s.val);
  const p = prev?.kind === 'blocklist' ? prev : undefined;
  const cur = new Set(s.val.entries);
  const want = new Set(bl.entries);
  out.entries = { added: bl.entries.filter((e) => !cur.has(e)), removed: s.val.entries.filter((e) => !want.has(e)) };
  if (s.val.backend === undefined) {
    out.action = 'add';
    out.details.push(`+ attach to ${bl.iface} (backend ${bl.backend})`);
  } else {
    if (s.val.backend !== bl.backend) out.details.push(`~ backend ${s.val.backend} -> ${bl.backend}`);
    if (!p) out.details.push('~ not recorded by this file: applied again');
    else out.details.push(...specChanges(p.options, bl.options).map((c) => `~ ${c}`));
    out.action = out.details.length || out.entries.added.length || out.entries.removed.length ? 'change' : 'none';
  }
  return Ok(out);
}

function removedDiff(key: string, rec: ObjectRecord): ObjectDiff {
  const out: ObjectDiff = { key, kind: rec.kind, action: 'remove', details: [] };
  if (rec.kind === 'limits') out.details = rec.records.map((r) => `- ${limitSummary(r)}`);
  else if (rec.kind === 'blocklist') out.details = [`- detach from ${rec.iface} (backend ${rec.backend})`];
  else out.details = rec.tables.map((t) => `- table ${tableKey(t)}`);
  return out;
}

async function compute(loaded: LoadedDeclaration, o: DeclareOptions): Promise<Result<Computed, NetfenceError>> {
  const { declaration, owner, source } = loaded;
  const netns = o.netns;
  o.onProgress?.('compiling the declared objects (detecting what the host supports)');
  const desired = await compileDeclaration(declaration, owner, netns);
  if (desired.err) return Err(desired.val);
  const { state, text } = readState(owner, netns);
  const objects: ObjectDiff[] = [];
  const entries = new Map<string, string[]>();
  for (const d of desired.val) {
    o.onProgress?.(`comparing ${d.key} with the kernel`);
    const r = await diffObject(d, state?.objects[d.key], owner, netns);
    if (r.err) return Err(r.val);
    objects.push(r.val);
    if (d.record.kind === 'blocklist') entries.set(d.key, d.record.entries);
  }
  const declared = new Set(desired.val.map((d) => d.key));
  for (const [key, rec] of Object.entries(state?.objects ?? {})) if (!declared.has(key)) objects.push(removedDiff(key, rec));
  return Ok({ diff: { owner, netns, source, objects, changes: objects.filter((x) => x.action !== 'none').length }, desired: desired.val, state, stateText: text, entries });
}

/**
 * What applying the file would change, per object (reads only). Errors:
 * a {@link ValidationError} for what the classes refuse, an
 * `OwnershipError` when a declared table exists and is not the file's.
 */
export async function planDeclaration(loaded: LoadedDeclaration, options: DeclareOptions = {}): Promise<Result<DeclarationDiff, NetfenceError>> {
  const c = await compute(loaded, options);
  return c.err ? Err(c.val) : Ok(c.val.diff);
}

/** Removal plans of recorded limits (newest first; each shared site removed with its last limit). */
async function limitsRemovePlan(rec: LimitsRecord, owner: string, netns: string | undefined): Promise<Plan> {
  const plan = emptyPlan(owner, netns);
  const left = new Map<string, number>();
  const siteOf = (r: LimitRecord) => `${r.backend}:${r.site.direction}:${r.site.iface}`;
  for (const r of rec.records) left.set(siteOf(r), (left.get(siteOf(r)) ?? 0) + 1);
  const caps = rec.records.some((r) => r.cgroup) ? await throttleCaps(netns) : undefined;
  for (const r of [...rec.records].reverse()) {
    const k = siteOf(r);
    const n = (left.get(k) ?? 1) - 1;
    left.set(k, n);
    const p = compileRemove(r, backendByName(r.backend), { owner, netns, lastOnSite: n === 0, cgroupMount: caps?.cgroup2Mount, pidsInGroup: [] });
    plan.tables.push(...p.tables.filter((t) => !plan.tables.some((u) => tableKey(u) === tableKey(t))));
    plan.nft.push(...p.nft);
    plan.steps.push(...p.steps);
  }
  return plan;
}

async function blocklistRemovePlan(rec: BlocklistRecord, owner: string, netns: string | undefined): Promise<Result<Plan, NetfenceError>> {
  const plan = emptyPlan(owner, netns);
  if (hostFiles().exists(rec.pinDir)) {
    const bl = new XdpBlocklist({ ...(rec.options as XdpBlocklistOptions), ...(netns !== undefined ? { netns } : {}) });
    const f = await bl.hostFacts();
    if (f.err) return Err(f.val);
    const p = compileXdpDestroy(bl.options, bl.name, bl.pinDir, { attached: f.val.attached, ourProgId: f.val.ourProgId, pinned: true }, false);
    plan.steps.push(...p.steps);
  }
  const ref: TableRef = { family: 'netdev', name: rec.nftTable };
  const p = await probeOwnership(ref, owner, netns);
  if (p.ok && p.val === 'owned') {
    plan.tables.push(ref);
    plan.nft.push({ delete: { table: { family: ref.family, name: ref.name } } });
  }
  return Ok(plan);
}

/** The plan that deletes the owned tables among `tables` that exist. */
async function tablesRemovePlan(tables: readonly TableRef[], owner: string, netns: string | undefined): Promise<Result<Plan, NetfenceError>> {
  const plan = emptyPlan(owner, netns);
  for (const t of tables) {
    const p = await probeOwnership(t, owner, netns);
    if (p.err) return Err(p.val);
    if (p.val === 'not-owned') return Err(new OwnershipError(t, await foreignOwner(t, netns), owner));
    if (p.val === 'owned') {
      plan.tables.push(t);
      plan.nft.push({ delete: { table: { family: t.family, name: t.name } } });
    }
  }
  return Ok(plan);
}

async function removePart(key: string, rec: ObjectRecord, owner: string, netns: string | undefined): Promise<Result<PlanPart, NetfenceError>> {
  if (rec.kind === 'limits') return Ok({ label: `${key.replace(/\s+/g, ':')}:remove`, plan: await limitsRemovePlan(rec, owner, netns) });
  const p = rec.kind === 'blocklist' ? await blocklistRemovePlan(rec, owner, netns) : await tablesRemovePlan(rec.tables, owner, netns);
  return p.err ? Err(p.val) : Ok({ label: `${key.replace(/\s+/g, ':')}:remove`, plan: p.val });
}

/** Options of {@link applyDeclaration}. */
export interface ApplyDeclarationOptions extends DeclareOptions {
  /** Revert unless confirmed within this many milliseconds (the executor's `confirmWithinMs`). */
  confirmWithinMs?: number | undefined;
  /** Further executor options (health check, confirm timeout callback). */
  apply?: Omit<ApplyOptions, 'confirmWithinMs'> | undefined;
}

/** The result of {@link applyDeclaration}. */
export interface AppliedDeclaration {
  /** What changed. */
  diff: DeclarationDiff;
  /** The executor's handle of the transaction (undefined when nothing changed). */
  applied: AppliedPlan | undefined;
  /** The merged plan that was applied (undefined when nothing changed). */
  plan: Plan | undefined;
}

function label(key: string): string {
  return key.replace(/\s+/g, ':');
}

async function setEntries(d: DesiredObject, entries: string[], owner: string, netns: string | undefined): Promise<Result<void, NetfenceError>> {
  const rec = d.record as BlocklistRecord;
  const parsed = parseEntries(entries, `${d.key} entries`);
  if (parsed.err) return Err(parsed.val);
  if (rec.backend === 'nft') return new NftBlocklist(rec.nftTable, rec.iface, netns, owner).replace(parsed.val);
  const bl = d.blocklist!;
  const r = await bl.replace(entries);
  bl.close();
  return r.err ? Err(r.val) : Ok(undefined);
}

/**
 * Apply the file as ONE transaction: the plans of every object that changes
 * (and the removal of objects the file no longer declares) merged into one
 * plan of the file's owner, applied by the executor, with the file's record
 * written by a step of the same plan. Blocklist entries (the data plane) are
 * set right after the transaction; if that fails, the transaction is rolled back.
 */
export async function applyDeclaration(loaded: LoadedDeclaration, options: ApplyDeclarationOptions = {}): Promise<Result<AppliedDeclaration, NetfenceError>> {
  const { owner } = loaded;
  const netns = options.netns;
  const c = await compute(loaded, options);
  if (c.err) return Err(c.val);
  const { diff, desired, state, stateText } = c.val;
  if (diff.changes === 0) return Ok({ diff, applied: undefined, plan: undefined });
  const parts: PlanPart[] = [];
  const byKey = new Map(desired.map((d) => [d.key, d]));
  const entryWork: DesiredObject[] = [];
  for (const o of diff.objects) {
    if (o.action === 'none') continue;
    const prev = state?.objects[o.key];
    if (o.action === 'remove') {
      const p = await removePart(o.key, prev!, owner, netns);
      if (p.err) return Err(p.val);
      parts.push(p.val);
      continue;
    }
    const d = byKey.get(o.key)!;
    if (d.record.kind === 'limits') {
      if (prev?.kind === 'limits') parts.push({ label: `${label(o.key)}:remove`, plan: await limitsRemovePlan(prev, owner, netns) });
      parts.push({ label: label(o.key), plan: d.plan });
    } else if (d.record.kind === 'blocklist') {
      if (o.action === 'add' || o.details.length > 0) {
        const cur = prev?.kind === 'blocklist' ? prev : undefined;
        if (cur && cur.backend !== d.record.backend) {
          const r = await removePart(o.key, cur, owner, netns);
          if (r.err) return Err(r.val);
          parts.push(r.val);
        }
        parts.push({ label: label(o.key), plan: d.plan });
      }
      if (o.entries && (o.entries.added.length || o.entries.removed.length || o.action === 'add')) entryWork.push(d);
    } else parts.push({ label: label(o.key), plan: d.plan });
  }
  const next: DeclareState = { version: 1, owner, netns, objects: Object.fromEntries(desired.map((d) => [d.key, d.record])) };
  const merged = mergePlans(owner, netns, parts);
  if (merged.err) return Err(merged.val);
  const plan = merged.val;
  ensureStateDir();
  plan.steps.push(stateStep(owner, netns, next, stateText));
  options.onProgress?.(`applying one transaction (${plan.nft.length} nft command(s), ${plan.steps.length} step(s))${options.confirmWithinMs !== undefined ? ' and arming the confirm watchdog' : ''}`);
  const r = await apply(plan, { ...(options.apply ?? {}), ...(options.confirmWithinMs !== undefined ? { confirmWithinMs: options.confirmWithinMs } : {}) });
  if (r.err) return Err(r.val);
  for (const d of entryWork) {
    options.onProgress?.(`loading the entries of ${d.key}`);
    const e = await setEntries(d, c.val.entries.get(d.key) ?? [], owner, netns);
    if (e.err) {
      const back = await r.val.rollback();
      return Err(new ApplyError(`${d.key} entries`, `setting the entries of ${d.key} failed: ${e.val.message.split('\n')[0]}; ${back.ok ? 'the previous state was restored' : `RESTORE INCOMPLETE: ${back.val.message.split('\n')[0]}`}`, { restored: back.ok, cause: e.val }));
    }
  }
  if (options.confirmWithinMs === undefined) {
    // in force: the XDP programs the transaction replaced are no longer needed
    for (const d of desired) {
      if (d.record.kind !== 'blocklist') continue;
      const prevProg = join(d.record.pinDir, 'prog_prev');
      if (hostFiles().exists(prevProg)) hostFiles().unlink(prevProg);
    }
  }
  return Ok({ diff, applied: r.val, plan });
}

/** The result of {@link destroyDeclaration}. */
export interface DestroyedDeclaration {
  /** The objects removed (action `remove`), or found absent (`none`). */
  objects: ObjectDiff[];
  plan: Plan | undefined;
}

/**
 * Remove exactly what the file declares (tables the file's owner owns,
 * limits and blocklists it recorded), in one transaction. Objects that are
 * not there are skipped; tables owned by anybody else refuse the whole
 * operation (nothing is removed).
 */
export async function destroyDeclaration(loaded: LoadedDeclaration, options: DeclareOptions = {}): Promise<Result<DestroyedDeclaration, NetfenceError>> {
  const { owner } = loaded;
  const netns = options.netns;
  options.onProgress?.('compiling the declared objects (detecting what the host supports)');
  const desired = await compileDeclaration(loaded.declaration, owner, netns);
  if (desired.err) return Err(desired.val);
  const { state, text } = readState(owner, netns);
  const parts: PlanPart[] = [];
  const objects: ObjectDiff[] = [];
  for (const d of desired.val) {
    const rec = state?.objects[d.key] ?? (d.record.kind === 'limits' ? { ...d.record, records: [] } : d.record); // limits: only those the file recorded
    const p = await removePart(d.key, rec, owner, netns);
    if (p.err) return Err(p.val);
    const empty = p.val.plan.nft.length === 0 && p.val.plan.steps.length === 0;
    objects.push({ ...removedDiff(d.key, rec), action: empty ? 'none' : 'remove' });
    if (!empty) parts.push(p.val);
  }
  const keep = Object.fromEntries(Object.entries(state?.objects ?? {}).filter(([k]) => !desired.val.some((d) => d.key === k)));
  if (parts.length === 0 && !state) return Ok({ objects, plan: undefined });
  const merged = mergePlans(owner, netns, parts);
  if (merged.err) return Err(merged.val);
  const plan = merged.val;
  ensureStateDir();
  plan.steps.push(stateStep(owner, netns, Object.keys(keep).length ? { version: 1, owner, netns, objects: keep } : undefined, text));
  options.onProgress?.(`removing ${parts.length} object(s) in one transaction`);
  const r = await apply(plan);
  if (r.err) return Err(r.val);
  return Ok({ objects, plan });
}

