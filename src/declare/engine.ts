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
import { ApplyError, type NetfenceError } from '../errors.js';
import { hostFiles } from '../host/files.js';
import { apply, type AppliedPlan, type ApplyOptions } from '../plan/executor.js';
import { mergePlans, type PlanPart } from '../plan/merge.js';
import type { Plan } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import { parseEntries } from '../xdp/entries.js';
import { NftBlocklist } from '../xdp/nft-backend.js';
import { diffObject, removedDiff, type BlocklistRecord, type DeclarationDiff, type ObjectDiff } from './diff.js';
import type { LoadedDeclaration } from './load.js';
import { compileDeclaration, type DesiredObject } from './objects.js';
import { limitsRemovePlan, partLabel, removePart } from './remove.js';
import { ensureStateDir, readState, stateStep, type DeclareState } from './state.js';

export type { DeclarationDiff, ObjectAction, ObjectDiff } from './diff.js';

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

/** A computed plan, with what apply needs. @internal */
interface Computed {
  diff: DeclarationDiff;
  desired: DesiredObject[];
  state: DeclareState | undefined;
  stateText: string | undefined;
  /** Desired blocklist entries, canonical, by key. */
  entries: Map<string, string[]>;
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
      if (prev?.kind === 'limits') parts.push({ label: `${partLabel(o.key)}:remove`, plan: await limitsRemovePlan(prev, owner, netns) });
      parts.push({ label: partLabel(o.key), plan: d.plan });
    } else if (d.record.kind === 'blocklist') {
      if (o.action === 'add' || o.details.length > 0) {
        const cur = prev?.kind === 'blocklist' ? prev : undefined;
        if (cur && cur.backend !== d.record.backend) {
          const r = await removePart(o.key, cur, owner, netns);
          if (r.err) return Err(r.val);
          parts.push(r.val);
        }
        parts.push({ label: partLabel(o.key), plan: d.plan });
      }
      if (o.entries && (o.entries.added.length || o.entries.removed.length || o.action === 'add')) entryWork.push(d);
    } else parts.push({ label: partLabel(o.key), plan: d.plan });
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

