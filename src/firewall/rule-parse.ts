/**
 * `RuleSpec.safeParse` with a fast path for the common rule (issue 14): a
 * plain object whose fields are all strings, numbers or booleans is checked
 * field by field — the hot fields (id, protocol, ports, action, counter,
 * nfproto) by direct tests equal to their schemas, the others with their own
 * zod schema — instead of zod's object parse, which costs most of a
 * 10,000-rule firewall's validation. The result is the one zod gives (same
 * fields, same order, values unchanged: these schemas do not transform
 * primitives); anything else — a list, an object value, an unknown or
 * undefined field, a value the field refuses — is parsed by zod itself, so
 * every error and every unusual form is reported exactly as before.
 * A unit test compares both on generated inputs.
 * @module
 */
import { ActionWord, L4Proto, RULE_ID_CHARS, RuleSpec, type Rule } from './spec.js';

const SHAPE = RuleSpec.shape as Record<string, { safeParse(v: unknown): { success: boolean; data?: unknown } }>;
const KEYS = Object.keys(SHAPE);
const INDEX = new Map(KEYS.map((k, i) => [k, i]));
if (KEYS[0] !== 'id') throw new Error('RuleSpec: id must be its first field');
const L4 = new Set<unknown>(L4Proto.options);
const WORDS = new Set<unknown>(ActionWord.options);
const port = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;

/** Direct tests of the hot fields, each true exactly when the field's schema accepts a primitive value. */
const DIRECT: Partial<Record<string, (v: unknown) => boolean>> = {
  id: (v) => typeof v === 'string' && v.length >= 1 && v.length <= 96 && RULE_ID_CHARS.test(v),
  protocol: (v) => L4.has(v),
  sport: port,
  dport: port,
  action: (v) => WORDS.has(v),
  counter: (v) => typeof v === 'boolean',
  nfproto: (v) => v === 'ipv4' || v === 'ipv6',
};

/** Whether field `key` accepts the primitive `v` unchanged. */
function fieldAccepts(key: string, v: unknown): boolean {
  const direct = DIRECT[key];
  if (direct) return direct(v);
  const r = SHAPE[key]!.safeParse(v);
  return r.success && r.data === v;
}

/** The fast path: the parsed rule, or undefined when zod must decide. */
function plainRule(spec: unknown): Rule | undefined {
  if (typeof spec !== 'object' || spec === null) return undefined;
  const proto: unknown = Object.getPrototypeOf(spec);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const given = Object.keys(spec);
  const n = given.length;
  if (Object.getOwnPropertyNames(spec).length !== n) return undefined; // hidden fields: zod reads them
  const at: number[] = new Array<number>(n); // shape positions of the given fields, kept sorted
  const vals: unknown[] = new Array<unknown>(n);
  let hasId = false;
  for (let j = 0; j < n; j++) {
    const k = given[j] as string;
    const pos = INDEX.get(k);
    if (pos === undefined) return undefined; // unknown field: zod's strict error
    const v: unknown = (spec as Record<string, unknown>)[k]; // read once (a getter could change)
    const t = typeof v;
    if (t !== 'string' && t !== 'number' && t !== 'boolean') return undefined;
    if (!fieldAccepts(k, v)) return undefined;
    if (pos === 0) hasId = true;
    let i = j; // insertion into shape order (a rule has a handful of fields)
    while (i > 0 && (at[i - 1] as number) > pos) {
      at[i] = at[i - 1] as number;
      vals[i] = vals[i - 1];
      i--;
    }
    at[i] = pos;
    vals[i] = v;
  }
  if (!hasId) return undefined; // id is required: zod names it
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) out[KEYS[at[i] as number] as string] = vals[i];
  return out as Rule;
}

/** Exactly `RuleSpec.safeParse(spec)`, faster for rules of plain fields. */
export function parseRule(spec: unknown): ReturnType<typeof RuleSpec.safeParse> {
  const fast = plainRule(spec);
  if (fast) return { success: true, data: fast } as ReturnType<typeof RuleSpec.safeParse>;
  return RuleSpec.safeParse(spec);
}
