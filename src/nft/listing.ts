/**
 * Reading what nft lists: the one place where the output of `nft -j list ...`
 * is turned into typed data, through the *tolerant* schema (any nft
 * 1.0.x–1.1.x: unknown keys are kept, unknown statement and object kinds
 * become opaque nodes instead of failing). Every listing netfence reads —
 * snapshots, rule handles, set counters, ownership marks, capability probes —
 * goes through {@link parseListingText} (the nft runner calls it) and is
 * consumed with {@link listingObjects}.
 *
 * For speed, the elements of sets and maps (`elem`, up to millions of them)
 * are only checked to be an array or an immediate: they are passed back to
 * nft unchanged by a restore, and counted or read by value elsewhere.
 * @module
 */
import { Err, Ok, type Result } from '../result.js';
import { ValidationError, fromZodIssues } from '../errors.js';
import { isOpaque, isPlainObject } from './schema/common.js';
import { tolerant } from './schema/index.js';
import type { Command, DocumentItem, Metainfo, RulesetObject } from './schema/commands.js';
import type { Immediate, SetItem } from './schema/expressions.js';

/** A parsed nft JSON listing: the `nftables` array (metainfo first, then objects), parsed tolerantly. */
export interface NftListing {
  nftables: DocumentItem[];
}

/** Every ruleset object kind, with its type (`{ table: Table }` → `table`). */
type ObjectMap = { [O in RulesetObject as keyof O & string]: O[keyof O & keyof O] };
/** One listed object of a known kind: `{ kind: 'rule', value: Rule }`, ... */
export type ListedObject = { [K in keyof ObjectMap]: { kind: K; value: ObjectMap[K] } }[keyof ObjectMap];
/** The kinds of {@link ListedObject}. */
export type ListedKind = ListedObject['kind'];

const KINDS_WITH_ELEMENTS = new Set(['set', 'map', 'element']);

function parseItem(item: unknown, index: number, issues: { path: string; message: string }[]): DocumentItem | undefined {
  // Set and map elements are not parsed (see the module comment): parse the object without them.
  let elem: unknown;
  let kind: string | undefined;
  if (isPlainObject(item)) {
    const keys = Object.keys(item);
    kind = keys.length === 1 ? keys[0] : undefined;
    const body = kind !== undefined ? item[kind] : undefined;
    if (kind !== undefined && KINDS_WITH_ELEMENTS.has(kind) && isPlainObject(body) && 'elem' in body) {
      elem = body.elem;
      if (!Array.isArray(elem) && typeof elem !== 'string' && typeof elem !== 'number' && typeof elem !== 'boolean') {
        issues.push({ path: `nftables.${index}.${kind}.elem`, message: 'must be an array of elements' });
        return undefined;
      }
      const { elem: _skip, ...rest } = body;
      // `element` objects need their elem: give the schema an empty list, put the real one back after.
      item = { [kind]: kind === 'element' ? { ...rest, elem: [] } : rest };
    }
  }
  const r = tolerant.DocumentItem.safeParse(item);
  if (!r.success) {
    issues.push(...fromZodIssues('', r.error.issues).issues.map((i) => ({ path: `nftables.${index}${i.path ? `.${i.path}` : ''}`, message: i.message })));
    return undefined;
  }
  if (elem !== undefined && kind !== undefined) {
    const v = r.data as unknown as Record<string, Record<string, unknown>>;
    (v[kind] as Record<string, unknown>).elem = elem as SetItem[] | Immediate;
  }
  return r.data;
}

/**
 * Parse the JSON text (or an already parsed value) of one `nft -j list`
 * output through the tolerant schema. Empty output is an empty listing.
 */
export function parseListingText(json: unknown): Result<NftListing, ValidationError> {
  let value: unknown = json;
  if (typeof json === 'string') {
    const text = json.trim();
    if (text === '') return Ok({ nftables: [] });
    try {
      value = JSON.parse(text) as unknown;
    } catch (e) {
      return Err(new ValidationError('nft listing', [{ path: '', message: `not valid JSON: ${(e as Error).message}` }]));
    }
  }
  if (!isPlainObject(value) || !Array.isArray(value.nftables)) return Err(new ValidationError('nft listing', [{ path: 'nftables', message: 'no "nftables" array' }]));
  const issues: { path: string; message: string }[] = [];
  const out: DocumentItem[] = [];
  value.nftables.forEach((item, i) => {
    const p = parseItem(item, i, issues);
    if (p !== undefined) out.push(p);
  });
  if (issues.length) return Err(new ValidationError('nft listing', issues.slice(0, 20)));
  return Ok({ nftables: out });
}

/**
 * The objects of a listing of the kinds netfence models, in listing order,
 * each as `{kind, value}` (typed by kind). Metainfo, commands and kinds this
 * version does not model (opaque nodes) are left out; {@link listingItems}
 * has them all. `listing` is what {@link parseListingText} (and so `nftList`)
 * returns; a plain array of items is read as it is.
 */
export function listingObjects(listing: NftListing | { readonly nftables: readonly unknown[] } | readonly unknown[]): ListedObject[] {
  const out: ListedObject[] = [];
  for (const { kind, value, opaque } of listingItems(listing)) if (!opaque) out.push({ kind, value } as unknown as ListedObject);
  return out;
}

/**
 * Every object of a listing except metainfo, also of kinds netfence does not
 * model (`opaque: true`; the original JSON), e.g. for restoring a snapshot
 * exactly.
 */
export function listingItems(listing: NftListing | { readonly nftables: readonly unknown[] } | readonly unknown[]): { kind: string; value: Record<string, unknown>; opaque: boolean }[] {
  const items: readonly unknown[] = isArray(listing) ? listing : listing.nftables;
  const out: { kind: string; value: Record<string, unknown>; opaque: boolean }[] = [];
  for (const item of items) {
    if (!isPlainObject(item)) continue;
    const keys = Object.keys(item);
    if (keys.length !== 1) continue;
    const kind = keys[0] as string;
    if (kind === 'metainfo' || COMMAND_VERBS.has(kind)) continue;
    const value = (item as Record<string, unknown>)[kind];
    if (isPlainObject(value)) out.push({ kind, value, opaque: isOpaque(item) });
  }
  return out;
}

function isArray(l: { readonly nftables: readonly unknown[] } | readonly unknown[]): l is readonly unknown[] {
  return Array.isArray(l);
}

const COMMAND_VERBS = new Set(['add', 'create', 'insert', 'replace', 'delete', 'destroy', 'list', 'reset', 'flush', 'rename']);

/** The metainfo of a listing (nft version, JSON schema version), if it has one. */
export function listingMetainfo(listing: NftListing): Metainfo['metainfo'] | undefined {
  for (const item of listing.nftables) if (isPlainObject(item) && 'metainfo' in item) return (item as unknown as Metainfo).metainfo;
  return undefined;
}

/**
 * Turn listed objects back into `add` commands (read-only fields such as
 * `handle` are the caller's business). The listing was parsed tolerantly, so
 * the result is typed but not strictly validated: it is what nft itself
 * printed.
 */
export function addCommand(kind: string, value: Record<string, unknown>): Command {
  return { add: { [kind]: value } } as unknown as Command;
}
