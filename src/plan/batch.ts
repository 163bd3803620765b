/**
 * The nft batch the executor sends for a plan (pure): the ownership marks of
 * the plan's tables, the plan's own commands, the marks again for tables the
 * plan re-creates; and how a batch failure maps back to `plan.nft`.
 * @module
 */
import { CommandError } from '../errors.js';
import type { Command } from '../nft/schema/commands.js';
import { commandTarget, ownerComment, ownerMarkCommand, ownershipCommands, tableKey } from './ownership.js';
import type { NftBatchFeatures } from './nft-features.js';
import type { Plan } from './types.js';

/** The nft batch {@link apply} sends for a plan, and how to read it. */
export interface PlanBatch {
  /** Every command, in order: ownership marks, the plan's `nft`, marks again for re-created tables. */
  commands: Command[];
  /** Index in `commands` of `plan.nft[0]`. */
  offset: number;
  /** For each owned table (`family name`): whether it must exist after the batch. */
  expectPresent: Map<string, boolean>;
}

/**
 * The exact nft batch that {@link apply} and {@link check} send for `plan`
 * (pure, no I/O): `add table` and the owner's mark for every table of the
 * plan, then the plan's commands, then the mark again for every table the
 * plan deletes and re-creates (a full replacement). `features` are what the
 * nft in use offers (apply and check probe them): with `tableComment`, every
 * `add`/`create` of an owned table without a comment of its own gets
 * `netfence:<owner>`.
 */
export function planBatch(plan: Plan, features: NftBatchFeatures = {}): PlanBatch {
  return buildBatch(plan, features);
}

/** `plan.nft` with the owner comment on every add/create of an owned table that has no comment (same length). */
function withTableComments(plan: Plan): Command[] {
  const owned = new Set(plan.tables.map(tableKey));
  return plan.nft.map((c) => {
    const t = commandTarget(c);
    if (!t.ok || t.target.object !== 'table' || (t.target.verb !== 'add' && t.target.verb !== 'create') || !owned.has(tableKey(t.target.table))) return c;
    const body = (c as Record<string, { table: Record<string, unknown> }>)[t.target.verb]?.table;
    if (!body || 'comment' in body) return c;
    return { [t.target.verb]: { table: { ...body, comment: ownerComment(plan.owner) } } } as unknown as Command;
  });
}

export function buildBatch(plan: Plan, features: NftBatchFeatures = {}): PlanBatch {
  const prefix = plan.tables.flatMap((t) => ownershipCommands(t, plan.owner, features));
  const expectPresent = new Map<string, boolean>(plan.tables.map((t) => [tableKey(t), true]));
  const deleted = new Set<string>();
  for (const c of plan.nft) {
    const t = commandTarget(c);
    if (!t.ok || t.target.object !== 'table') continue;
    const k = tableKey(t.target.table);
    if (t.target.verb === 'delete' || t.target.verb === 'destroy') {
      expectPresent.set(k, false);
      deleted.add(k);
    } else if (t.target.verb === 'add' || t.target.verb === 'create') expectPresent.set(k, true);
  }
  // A plan that deletes and re-creates its table (full replacement) must get the mark back.
  const suffix = plan.tables.filter((t) => deleted.has(tableKey(t)) && expectPresent.get(tableKey(t))).map((t) => ownerMarkCommand(t, plan.owner));
  const body = features.tableComment ? withTableComments(plan) : plan.nft;
  return { commands: [...prefix, ...body, ...suffix], offset: prefix.length, expectPresent };
}

/** Re-express a batch failure in terms of the plan's own `nft` array. */
export function mapNftError(e: CommandError, offset: number, planLen: number): CommandError {
  const i = e.failure.failedIndex;
  if (i === undefined) return e;
  const inPlan = i >= offset && i < offset + planLen;
  return new CommandError(
    'nft',
    {
      ...e.failure,
      failedIndex: inPlan ? i - offset : undefined,
      failedText: inPlan ? e.failure.failedText : `(netfence ownership command) ${e.failure.failedText ?? ''}`,
    },
    e.hint ? { hint: e.hint, cause: e } : { cause: e },
  );
}
