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

/** A schema choosing another schema from the input value (no `invalid_union` noise in errors). */
export function select<T>(choose: (v: unknown, ctx: TransformCtx) => z.ZodType | undefined): z.ZodType<T> {
  return z.unknown().transform((v, ctx) => {
    const schema = choose(v, ctx);
    if (!schema) return z.NEVER;
    return reparse(schema, v, ctx) as T;
  }) as unknown as z.ZodType<T>;
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
  return z.unknown().transform((v, ctx) => {
    table ??= bodies();
    if (!isPlainObject(v)) {
      ctx.addIssue({ code: 'custom', message: `a ${opts.what} must be an object with exactly one key naming its kind`, input: v });
      return z.NEVER;
    }
    const keys = Object.keys(v);
    if (keys.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `a ${opts.what} must have exactly one key naming its kind, got ${keys.length === 0 ? 'none' : keys.map((k) => JSON.stringify(k)).join(', ')}`,
        input: v,
      });
      return z.NEVER;
    }
    const kind = keys[0]!;
    const refusal = opts.refused?.[kind];
    const schema = Object.prototype.hasOwnProperty.call(table, kind) ? table[kind] : undefined;
    if (!schema || refusal !== undefined) {
      if (opts.opaque) return brandOpaque(v) as unknown as T;
      ctx.addIssue({
        code: 'custom',
        path: [kind],
        message: refusal ?? `unknown ${opts.what} kind ${JSON.stringify(kind)}`,
        input: v,
      });
      return z.NEVER;
    }
    const body = reparse(schema, v[kind], ctx, [kind]);
    return { [kind]: body } as T;
  }) as unknown as z.ZodType<T>;
}
