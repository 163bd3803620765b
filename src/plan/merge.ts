/**
 * Several plans as one: what a declarative file applies in ONE transaction
 * (one nft batch, then every step, one rollback for all of it).
 * @module
 */
import { ValidationError, type ValidationIssue } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { tableKey } from './ownership.js';
import { emptyPlan, type Plan } from './types.js';

/** One plan to merge and the label that keeps its step ids apart (`firewall:web`, `limit:2`). */
export interface PlanPart {
  label: string;
  plan: Plan;
}

/**
 * Merge plans into one plan of `owner` in `netns` (pure): the tables of all
 * of them (a table may appear in several parts — e.g. one part deletes a
 * table another re-creates — and is owned once), their nft commands in
 * order as one batch, their steps in order (ids made unique with
 * `@<label>`, keeping each id's prefix such as `xdp:`), XDP attachments,
 * queue bindings and decisions (subjects prefixed with the label). Refused:
 * parts that target another namespace. The merged plan's tables all get
 * `owner`'s mark: merge plans of one owner.
 */
export function mergePlans(owner: string, netns: string | undefined, parts: readonly PlanPart[]): Result<Plan, ValidationError> {
  const plan = emptyPlan(owner, netns);
  const issues: ValidationIssue[] = [];
  const seenTables = new Set<string>();
  const seenSteps = new Set<string>();
  for (const { label, plan: p } of parts) {
    if ((p.netns ?? undefined) !== (netns ?? undefined)) {
      issues.push({ path: label, message: `targets netns ${p.netns ?? '(this one)'}, the merged plan ${netns ?? '(this one)'}` });
      continue;
    }
    for (const t of p.tables) {
      const k = tableKey(t);
      if (seenTables.has(k)) continue;
      seenTables.add(k);
      plan.tables.push(t);
    }
    plan.nft.push(...p.nft);
    for (const s of p.steps) {
      let id = `${s.id}@${label}`;
      for (let n = 2; seenSteps.has(id); n++) id = `${s.id}@${label}#${n}`;
      seenSteps.add(id);
      plan.steps.push({ ...s, id });
    }
    plan.xdp.push(...p.xdp);
    plan.queue.push(...p.queue);
    plan.decisions.push(...p.decisions.map((d) => ({ ...d, subject: `${label}: ${d.subject}` })));
  }
  if (issues.length) return Err(new ValidationError('merged plan', issues));
  return Ok(plan);
}
