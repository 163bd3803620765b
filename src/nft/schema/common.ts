/**
 * Shared building blocks of the libnftables JSON schemas: parsing modes,
 * families, "known string" fields, and the keyed dispatcher used for
 * statements and expressions (`{"<kind>": <body>}` objects).
 * @module
 */
import { z } from 'zod';

/**
 * How strictly to parse.
 * - `strict`: what netfence emits. Unknown keys and unknown statement /
 *   expression kinds are refused; fixed-vocabulary fields (flags, hooks, keys)
 *   must be values nft knows.
 * - `tolerant`: what any nft 1.0.x–1.1.x lists. Unknown keys pass through,
 *   unknown statement / expression kinds become {@link OpaqueNode}s.
 */
export type SchemaMode = 'strict' | 'tolerant';

/** Symbol marking a statement or expression (or top-level item) that tolerant parsing did not recognise. */
export const OPAQUE: unique symbol = Symbol.for('netfence.nft.opaque');

/**
 * A statement, expression or top-level item of a kind this version of
 * netfence does not model. Only tolerant parsing produces it; the original
 * JSON is kept as is (the brand is a non-enumerable symbol, invisible to
 * `JSON.stringify`).
 */
export interface OpaqueNode {
  readonly [OPAQUE]: true;
  readonly [key: string]: unknown;
}

/** Whether a parsed node is an {@link OpaqueNode}. */
export function isOpaque(value: unknown): value is OpaqueNode {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[OPAQUE] === true;
}

/** Address families of nftables tables. */
export const FAMILIES = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'] as const;
/** An nftables table family. */
export type Family = (typeof FAMILIES)[number];
/** Schema of {@link Family}. */
export const Family = z.enum(FAMILIES);

/** Families accepted where nft wants an L3 family (nat, tproxy, fwd, rt, ipsec). */
export const L3_FAMILIES = ['ip', 'ip6'] as const;
/** `ip` or `ip6`. */
export type L3Family = (typeof L3_FAMILIES)[number];

/** A string that is one of `list` (with editor completion) but typed open-ended, because newer nft versions add values. */
export type Known<T extends string> = T | (string & {});

/**
 * A string field with a known vocabulary: strict mode refuses values outside
 * `list`, tolerant mode accepts any string. The TypeScript type is the same
 * in both modes: the known literals plus `string`.
 */
export function known<const T extends string>(mode: SchemaMode, list: readonly T[], what: string): z.ZodType<Known<T>> {
  if (mode === 'tolerant') return z.string() as unknown as z.ZodType<Known<T>>;
  const set = new Set<string>(list);
  return z
    .string()
    .refine((s) => set.has(s), { message: `unknown ${what}; expected one of: ${list.join(', ')}` }) as unknown as z.ZodType<Known<T>>;
}

/** An object schema that is strict (unknown keys refused) or loose (unknown keys kept) depending on mode. */
export function obj<S extends z.ZodRawShape>(mode: SchemaMode, shape: S): z.ZodType<z.output<z.ZodObject<S>>> {
  return (mode === 'strict' ? z.strictObject(shape) : z.looseObject(shape)) as unknown as z.ZodType<z.output<z.ZodObject<S>>>;
}

/** A value nft accepts either as one string or as an array of strings. */
export function oneOrMany<T>(item: z.ZodType<T>): z.ZodType<T | T[]> {
  return z.union([item, z.array(item)]);
}

/** Non-negative integer (handles, counters, sizes). */
export const UInt = z.number().int().min(0);
/** Any integer. */
export const Int = z.number().int();

/** A plain JSON object check. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function brandOpaque(v: Record<string, unknown>): OpaqueNode {
  const copy: Record<string, unknown> = { ...v };
  Object.defineProperty(copy, OPAQUE, { value: true, enumerable: false });
  return copy as unknown as OpaqueNode;
}

/** The refinement context of a zod transform. */
export type TransformCtx = z.core.$RefinementCtx<unknown>;

/**
 * Parse `value` with `schema` inside a transform, re-reporting its issues
 * under `path`. Returns the parsed value or `z.NEVER`.
 */
export function reparse<T>(schema: z.ZodType<T>, value: unknown, ctx: TransformCtx, path: PropertyKey[] = []): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  for (const issue of r.error.issues) ctx.addIssue({ ...issue, path: [...path, ...issue.path] } as Parameters<TransformCtx['addIssue']>[0]);
  return z.NEVER;
}

/** The payload a zod schema parses (value and the issues found so far). */
type Payload = z.core.ParsePayload;
/** The parse context zod hands to a schema. */
type ParseCtx = z.core.ParseContext<z.core.$ZodIssue>;

/**
 * A schema whose parse step is `parse` itself: the payload goes straight to
 * the chosen inner schema's `_zod.run`, with no transform, no nested
 * `safeParse` and no re-reported issues (each of those costs about as much as
 * parsing a small object, and the dispatchers below run for every statement
 * and expression of every rule).
 */
function direct<T>(parse: (payload: Payload, ctx: ParseCtx) => Payload): z.ZodType<T> {
  const s = z.unknown();
  s._zod.parse = parse as typeof s._zod.parse;
  s._zod.run = parse as typeof s._zod.run;
  return s as unknown as z.ZodType<T>;
}

/** Run `schema` on its own payload (synchronous schemas only). */
function runOn(schema: z.ZodType, value: unknown, ctx: ParseCtx): Payload {
  const r = schema._zod.run({ value, issues: [] }, ctx);
  if (r instanceof Promise) throw new Error('nft schemas are synchronous');
  return r;
}

/**
 * A context whose `addIssue` reports on `payload` (the shape of a zod
 * transform's context). A class, so that no function is created per parse.
 */
class IssueCtx {
  constructor(private readonly payload: Payload) {}
  get value(): unknown {
    return this.payload.value;
  }
  get issues(): Payload['issues'] {
    return this.payload.issues;
  }
  addIssue(issue: string | Record<string, unknown>): void {
    const i = typeof issue === 'string' ? { message: issue } : issue;
    this.payload.issues.push({ code: 'custom', input: this.payload.value, path: [], ...i } as never);
  }
}

function fail(payload: Payload, message: string, path: PropertyKey[] = []): Payload {
  payload.issues.push({ code: 'custom', message, input: payload.value, path } as never);
  return payload;
}

/** A schema choosing another schema from the input value (no `invalid_union` noise in errors). */
export function select<T>(choose: (v: unknown, ctx: TransformCtx) => z.ZodType | undefined): z.ZodType<T> {
  return direct<T>((payload, ctx) => {
    const schema = choose(payload.value, new IssueCtx(payload) as unknown as TransformCtx);
    if (!schema) return payload;
    const r = schema._zod.run(payload, ctx);
    if (r instanceof Promise) throw new Error('nft schemas are synchronous');
    return r;
  });
}

/** Options of {@link keyed}. */
export interface KeyedOptions {
  /** What is being parsed, for messages ("statement", "expression"). */
  what: string;
  /** Tolerant: unknown kinds become opaque nodes instead of failing. */
  opaque: boolean;
  /** Kinds that nft knows but refuses (e.g. `xt` on input): message to give. */
  refused?: Record<string, string>;
}

/**
 * A dispatcher over objects with exactly one key, the kind: `{"payload": {...}}`.
 * The body is parsed with the schema registered for that key, and issues are
 * reported under the key (e.g. `expr.0.match.left.payload.field`), which a
 * plain `z.union` cannot do. Schemas are looked up lazily so that recursive
 * definitions work.
 */
export function keyed<T>(bodies: () => Record<string, z.ZodType>, opts: KeyedOptions): z.ZodType<T> {
  let table: Record<string, z.ZodType> | undefined;
  return direct<T>((payload, ctx) => {
    table ??= bodies();
    const v = payload.value;
    if (!isPlainObject(v)) return fail(payload, `a ${opts.what} must be an object with exactly one key naming its kind`);
    let kind: string | undefined;
    let n = 0;
    for (const key in v) {
      if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
      if (n++ === 0) kind = key;
    }
    if (n !== 1 || kind === undefined) {
      const keys = Object.keys(v);
      return fail(payload, `a ${opts.what} must have exactly one key naming its kind, got ${keys.length === 0 ? 'none' : keys.map((k) => JSON.stringify(k)).join(', ')}`);
    }
    const refusal = opts.refused?.[kind];
    const schema = Object.prototype.hasOwnProperty.call(table, kind) ? table[kind] : undefined;
    if (!schema || refusal !== undefined) {
      if (opts.opaque) {
        payload.value = brandOpaque(v);
        return payload;
      }
      return fail(payload, refusal ?? `unknown ${opts.what} kind ${JSON.stringify(kind)}`, [kind]);
    }
    const r = runOn(schema, v[kind], ctx);
    if (r.issues.length) {
      for (const iss of r.issues) {
        (iss as { path?: PropertyKey[] }).path ??= [];
        (iss as { path: PropertyKey[] }).path.unshift(kind);
        payload.issues.push(iss);
      }
    }
    payload.value = { [kind]: r.value };
    return payload;
  });
}
