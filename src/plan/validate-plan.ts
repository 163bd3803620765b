/**
 * Validation of a {@link Plan} before anything reaches a tool: its shape
 * (zod), every name in it, and that each nft command touches only a table the
 * plan owns.
 * @module
 */
import { isAbsolute, normalize } from 'node:path';
import { z } from 'zod';
import { fromZodIssues, ValidationError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { IfName, NetnsName, NftName } from '../validate.js';
import { checkCommands } from '../nft/parse.js';
import { commandTarget, PlanOwner, TableFamily, tableKey } from './ownership.js';
import type { Plan } from './types.js';
import { XdpActionSchemas } from './actions-xdp.js';

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'csh', 'tcsh', 'fish', 'busybox']);

const Path = z
  .string()
  .min(1, 'must not be empty')
  .max(4096, 'too long')
  .refine((p) => !p.includes('\0'), 'must not contain NUL bytes')
  .refine((p) => isAbsolute(p) && normalize(p) === p && !p.split('/').includes('..'), 'must be an absolute, normalized path without ..');

const ArgvItem = z.string().max(65536, 'argument too long').refine((a) => !a.includes('\0'), 'must not contain NUL bytes');

const Argv = z
  .array(ArgvItem)
  .min(1, 'must not be empty')
  .refine((a) => !SHELLS.has((a[0] ?? '').split('/').pop() ?? ''), 'must not start a shell: give the tool and its arguments as argv');

const flag = { ignoreFailure: z.boolean().optional() };

/** zod schema of one host {@link Action}. */
export const ActionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('exec'), argv: Argv, input: z.string().optional(), ...flag }).strict(),
  z.object({ kind: z.literal('mkdir'), path: Path, ...flag }).strict(),
  z.object({ kind: z.literal('rmdir'), path: Path, ...flag }).strict(),
  z.object({ kind: z.literal('write'), path: Path, data: z.string(), ...flag }).strict(),
  z.object({ kind: z.literal('unlink'), path: Path, ...flag }).strict(),
  z.object({ kind: z.literal('nft-prune'), family: TableFamily, table: NftName, chains: z.array(NftName).max(64), deleteTable: z.boolean(), ...flag }).strict(),
  ...XdpActionSchemas,
]);

/** zod schema of a {@link Step}. */
export const StepSchema = z.object({
  id: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters').regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
  description: z.string().max(1000),
  do: z.array(ActionSchema),
  undo: z.array(ActionSchema),
});

/** zod schema of a table reference. */
export const TableRefSchema = z.object({ family: TableFamily, name: NftName }).strict();

/** zod schema of a whole {@link Plan}. */
export const PlanSchema = z.object({
  owner: PlanOwner,
  netns: NetnsName.optional(),
  tables: z.array(TableRefSchema),
  nft: z.array(z.unknown()),
  steps: z.array(StepSchema),
  xdp: z.array(
    z.object({
      iface: IfName,
      object: Path,
      program: z.string().min(1).max(64).regex(/^[A-Za-z0-9_./-]+$/, 'must be a program or section name'),
      mode: z.enum(['native', 'generic', 'auto']),
      pinDir: Path,
    }),
  ),
  queue: z.array(
    z.object({
      queue: z.number().int().min(0).max(65535),
      count: z.number().int().min(1).max(65536),
      via: z.enum(['nft', 'xtables']),
      failOpen: z.boolean(),
    }),
  ),
  decisions: z.array(z.object({ subject: z.string(), chosen: z.string(), reason: z.string() })),
});

/** Plans a netfence compiler has just built and hands straight to the executor (see {@link markCompiled}). */
const compiledNow = new WeakSet<object>();

/**
 * Mark `plan` as built a moment ago by a netfence compiler from input that
 * compiler validated with zod, and handed to the executor in the same
 * synchronous call (`Firewall.apply()`: compile, then `apply()`, whose
 * validation runs before its first `await`). The next {@link validatePlan} of
 * this plan object then skips the strict schema parse of its nft commands:
 * they are the compiler's own output, which the unit tests check against the
 * strict schema, and nft still refuses a bad one atomically, naming it. Shape,
 * names and table ownership are still checked. The mark is consumed by that
 * validation: validating the same object again parses everything.
 * @internal
 */
export function markCompiled<P extends Plan>(plan: P): P {
  compiledNow.add(plan);
  return plan;
}

/**
 * Validate a plan: shape and names (zod), unique step ids and tables, every nft
 * command targeting one of `plan.tables` (so a plan can never touch another
 * program's table or the whole ruleset), every nft command valid under the
 * strict nft schema (set elements are not parsed, for speed), and XDP attachments implemented by
 * steps (builders translate `plan.xdp` into steps whose ids start with `xdp:`).
 */
export function validatePlan(plan: unknown): Result<Plan, ValidationError> {
  const compiled = typeof plan === 'object' && plan !== null && compiledNow.delete(plan);
  const r = PlanSchema.safeParse(plan);
  if (!r.success) return Err(fromZodIssues('plan', r.error.issues));
  const p = plan as Plan;
  const issues: { path: string; message: string }[] = [];
  const owned = new Set<string>();
  p.tables.forEach((t, i) => {
    const k = tableKey(t);
    if (owned.has(k)) issues.push({ path: `tables.${i}`, message: `table ${k} is listed twice` });
    owned.add(k);
  });
  const ids = new Set<string>();
  p.steps.forEach((s, i) => {
    if (ids.has(s.id)) issues.push({ path: `steps.${i}.id`, message: `duplicate step id "${s.id}"` });
    ids.add(s.id);
  });
  p.nft.forEach((c, i) => {
    const t = commandTarget(c);
    if (!t.ok) issues.push({ path: `nft.${i}`, message: t.reason });
    else if (!owned.has(tableKey(t.target.table))) {
      issues.push({ path: `nft.${i}`, message: `touches table ${tableKey(t.target.table)}, which is not in plan.tables (a plan may only touch the tables it owns)` });
    }
  });
  // What goes to nft is checked with the strict schema before anything is sent (set elements skipped for speed).
  if (issues.length === 0 && !compiled) issues.push(...checkCommands(p.nft));
  if (p.xdp.length > 0 && !p.steps.some((s) => s.id.startsWith('xdp:'))) {
    issues.push({ path: 'xdp', message: 'XDP attachments must be implemented by steps whose id starts with "xdp:" (the executor does not attach programs by itself)' });
  }
  if (issues.length) return Err(new ValidationError('plan', issues));
  return Ok(p);
}
