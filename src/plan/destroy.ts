/**
 * `destroy()`: delete the tables an owner created, in one transaction,
 * refusing all of them if any is not the owner's.
 * @module
 */
import { NetfenceError, ValidationError } from '../errors.js';
import { nftApply } from '../host/nft.js';
import { Err, Ok, type Result } from '../result.js';
import { NetnsName } from '../validate.js';
import { nftBatchFeatures } from './nft-features.js';
import { PlanOwner } from './ownership.js';
import { preflight, withLock } from './preflight.js';
import type { TableRef } from './types.js';
import { TableRefSchema } from './validate-plan.js';

/** Options for {@link destroy}. */
export interface DestroyOptions {
  /** Network namespace; the current one if undefined. */
  netns?: string | undefined;
  /** Only tables marked with this owner are deleted. */
  owner: string;
}

/**
 * Delete tables created by `owner` (in one transaction). Tables that do not
 * exist are skipped; if any existing table is not owned by `owner`, nothing
 * is deleted and an {@link index!OwnershipError} is returned.
 */
export async function destroy(tables: readonly TableRef[], options: DestroyOptions): Promise<Result<{ deleted: TableRef[] }, NetfenceError>> {
  const issues: { path: string; message: string }[] = [];
  tables.forEach((t, i) => {
    const r = TableRefSchema.safeParse(t);
    if (!r.success) issues.push({ path: `tables.${i}`, message: r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ') });
  });
  if (options.netns !== undefined && !NetnsName.safeParse(options.netns).success) issues.push({ path: 'netns', message: 'invalid namespace name' });
  if (!PlanOwner.safeParse(options.owner).success) issues.push({ path: 'owner', message: 'must be a valid owner (the plan owner that created the tables)' });
  if (issues.length) return Err(new ValidationError('destroy request', issues));
  return withLock(options.netns, async (): Promise<Result<{ deleted: TableRef[] }, NetfenceError>> => {
    const [pf, features] = await Promise.all([preflight(tables, options.owner, options.netns, false), nftBatchFeatures()]);
    if (pf.err) return Err(pf.val);
    const doomed = pf.val.tables.filter((s) => s.existed).map((s) => s.table);
    // `destroy` where the nft has it: a table someone else removed meanwhile is then no error.
    const verb = features.destroy ? 'destroy' : 'delete';
    const r = await nftApply(
      doomed.map((t) => ({ [verb]: { table: { family: t.family, name: t.name } } })),
      { netns: options.netns, what: 'nft destroy' },
    );
    if (r.err) return Err(r.val);
    return Ok({ deleted: doomed });
  }, (e) => Err(e), `destroy ${options.owner}`);
}
