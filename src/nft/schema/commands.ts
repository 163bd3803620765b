/**
 * Commands and documents of the libnftables JSON format:
 * `{"nftables": [{"metainfo": ...}, {"add": {"table": ...}}, ...]}`.
 * Modelled on nft's JSON parser (`json_parse_cmd` and friends).
 * @module
 */
import { z } from 'zod';
import { type Family, type OpaqueNode, type SchemaMode, Family as FamilySchema, UInt, isPlainObject, keyed, obj, select } from './common.js';
import type {
  Chain, Counter, CtExpectation, CtHelper, CtTimeout, Element, Flowtable, Limit, NamedMap, NamedSet, ObjectSchemas,
  Quota, Rule, Secmark, Synproxy, Table, Tunnel,
} from './objects.js';

/** Command verbs. */
export const COMMAND_VERBS = ['add', 'create', 'insert', 'replace', 'delete', 'destroy', 'list', 'reset', 'flush', 'rename'] as const;
/** A command verb. */
export type CommandVerb = (typeof COMMAND_VERBS)[number];

/** Library information, first item of every listing. */
export interface Metainfo {
  metainfo: { version?: string | undefined; release_name?: string | undefined; json_schema_version?: number | undefined };
}

/** Any ruleset object, keyed by its kind (`{"table": {...}}`). */
export type RulesetObject =
  | { table: Table } | { chain: Chain } | { rule: Rule } | { set: NamedSet } | { map: NamedMap } | { element: Element }
  | { flowtable: Flowtable } | { counter: Counter } | { quota: Quota } | { 'ct helper': CtHelper }
  | { 'ct timeout': CtTimeout } | { 'ct expectation': CtExpectation } | { limit: Limit } | { secmark: Secmark }
  | { synproxy: Synproxy } | { tunnel: Tunnel };

/** Identifies an object for delete/destroy/list/flush/reset: family, table, and name or handle. */
export interface ObjectRef {
  family: Family;
  table?: string | undefined;
  name?: string | undefined;
  handle?: number | undefined;
  chain?: string | undefined;
}
/** Scope of plural list/reset/flush commands (`{"list": {"ruleset": null}}`). */
export type Scope = null | { family?: Family | undefined; table?: string | undefined; chain?: string | undefined };

/** Kinds usable with add/create. */
export const ADD_KINDS = [
  'table', 'chain', 'rule', 'set', 'map', 'element', 'flowtable', 'counter', 'quota', 'ct helper', 'ct timeout',
  'ct expectation', 'tunnel', 'limit', 'secmark', 'synproxy',
] as const;
/** Kinds usable with list (singular ones take an object reference, plural ones a scope). */
export const LIST_KINDS = [
  'table', 'tables', 'chain', 'chains', 'set', 'sets', 'map', 'maps', 'counter', 'counters', 'quota', 'quotas',
  'ct helper', 'ct helpers', 'ct timeout', 'ct expectation', 'tunnel', 'tunnels', 'limit', 'limits', 'ruleset',
  'meter', 'meters', 'flowtables', 'secmark', 'secmarks',
] as const;
/** Kinds usable with reset. */
export const RESET_KINDS = ['counter', 'counters', 'quota', 'quotas', 'rule', 'rules', 'element', 'set', 'map'] as const;
/** Kinds usable with flush. */
export const FLUSH_KINDS = ['table', 'chain', 'set', 'map', 'meter', 'ruleset'] as const;

/** `{ "<kind>": reference }` for each kind in `K`. */
export type RefOf<K extends string> = { [P in K]: { [Q in P]: ObjectRef | Scope } }[K];

/** `add` / `create`: create an object (create fails if it exists; there is no create rule). */
export type AddCommand = { add: RulesetObject };
/** `create`: like add, but fails if the object exists. */
export type CreateCommand = { create: Exclude<RulesetObject, { rule: Rule }> };
/** `insert`: insert a rule (at the start, or before `handle`/`index`). */
export type InsertCommand = { insert: { rule: Rule } };
/** `replace`: replace the rule identified by `handle`. */
export type ReplaceCommand = { replace: { rule: Rule } };
/** `delete`: delete an object (identified by name or handle; elements by value). */
export type DeleteCommand = { delete: RefOf<Exclude<(typeof ADD_KINDS)[number], 'element'>> | { element: Element } };
/** `destroy` (nft ≥ 1.0.8): like delete, but no error when the object does not exist. */
export type DestroyCommand = { destroy: RefOf<Exclude<(typeof ADD_KINDS)[number], 'element'>> | { element: Element } };
/** `list`. */
export type ListCommand = { list: RefOf<(typeof LIST_KINDS)[number]> };
/** `reset`: zero counters/quotas. */
export type ResetCommand = { reset: RefOf<Exclude<(typeof RESET_KINDS)[number], 'element'>> | { element: Element } };
/** `flush`: empty a table, chain, set, map or the ruleset. */
export type FlushCommand = { flush: RefOf<(typeof FLUSH_KINDS)[number]> };
/** `rename`: rename a chain. */
export type RenameCommand = { rename: { chain: { family: Family; table: string; name: string; newname: string } } };

/** Any command. */
export type Command =
  | AddCommand | CreateCommand | InsertCommand | ReplaceCommand | DeleteCommand | DestroyCommand | ListCommand
  | ResetCommand | FlushCommand | RenameCommand;

/** One item of the `nftables` array: a command, metainfo, or (as in listings) a bare object, which nft treats as `add`. */
export type DocumentItem = Command | Metainfo | RulesetObject | OpaqueNode;

/** A libnftables JSON document. */
export interface Document { nftables: DocumentItem[] }

/** The command schemas of one mode. */
export interface CommandSchemas {
  /** Any command. */
  Command: z.ZodType<Command>;
  /** A bare ruleset object (listing item). */
  RulesetObject: z.ZodType<RulesetObject>;
  /** One item of the `nftables` array. */
  DocumentItem: z.ZodType<DocumentItem>;
  /** A whole document. */
  Document: z.ZodType<Document>;
}

/** Build the command and document schemas for a mode. */
export function makeCommandSchemas(mode: SchemaMode, objects: ObjectSchemas): CommandSchemas {
  const name = z.string().min(1);
  const ref = obj(mode, { family: FamilySchema, table: name, name: name.optional(), handle: UInt.optional() }).refine(
    (r) => r.name !== undefined || r.handle !== undefined,
    { message: 'either name or handle is required' },
  );
  const tableRef = obj(mode, { family: FamilySchema, name: name.optional(), handle: UInt.optional() }).refine(
    (r) => r.name !== undefined || r.handle !== undefined,
    { message: 'either name or handle is required' },
  );
  const byName = obj(mode, { family: FamilySchema, table: name, name });
  const ruleRef = obj(mode, { family: FamilySchema, table: name, chain: name, handle: UInt });
  const scope = select((v) => (v === null ? z.null() : obj(mode, { family: FamilySchema.optional(), table: name.optional() })));
  const rulesScope = obj(mode, { family: FamilySchema.optional(), table: name.optional(), chain: name.optional() });
  const o = objects as unknown as Record<string, z.ZodType>;
  const pick = (kinds: readonly string[]) => Object.fromEntries(kinds.map((kind) => [kind, o[kind]!]));
  const refs = (kinds: readonly string[], table: z.ZodType = tableRef) =>
    Object.fromEntries(kinds.map((kind) => [kind, kind === 'table' ? table : kind === 'rule' ? ruleRef : kind === 'element' ? o.element! : kind === 'ct helper' ? byName : ref]));
  const body = (what: string, table: Record<string, z.ZodType>) => keyed(() => table, { what, opaque: false });

  const addKinds = pick(ADD_KINDS);
  const { rule: _rule, ...createKinds } = addKinds;
  const listKinds: Record<string, z.ZodType> = {};
  for (const kind of LIST_KINDS) {
    if (kind === 'table') listKinds[kind] = obj(mode, { family: FamilySchema, name });
    else if (kind === 'chain' || kind === 'set' || kind === 'map' || kind === 'meter') listKinds[kind] = byName;
    else if (kind.endsWith('s') || kind === 'ruleset') listKinds[kind] = scope;
    else listKinds[kind] = byName;
  }
  const resetKinds: Record<string, z.ZodType> = {
    counter: byName, quota: byName, counters: scope, quotas: scope, rule: ruleRef, rules: rulesScope,
    element: o.element!, set: byName, map: byName,
  };
  const flushKinds: Record<string, z.ZodType> = {
    table: obj(mode, { family: FamilySchema, name }), chain: byName, set: byName, map: byName, meter: byName, ruleset: scope,
  };
  const ruleOnly = { rule: o.rule! };
  const verbs: Record<string, z.ZodType> = {
    add: body('add command object', addKinds),
    create: body('create command object', createKinds),
    insert: body('insert command object', ruleOnly),
    replace: body('replace command object', {
      rule: o.rule!.refine((r) => (r as Rule).handle !== undefined, { message: 'replace needs the handle of the rule to replace', path: ['handle'] }),
    }),
    delete: body('delete command object', refs(ADD_KINDS)),
    destroy: body('destroy command object', refs(ADD_KINDS)),
    list: body('list command object', listKinds),
    reset: body('reset command object', resetKinds),
    flush: body('flush command object', flushKinds),
    rename: body('rename command object', { chain: obj(mode, { family: FamilySchema, table: name, name, newname: name }) }),
  };
  const Command = keyed<Command>(() => verbs, { what: 'command', opaque: false });
  const RulesetObject = keyed<RulesetObject>(() => addKinds, { what: 'ruleset object', opaque: mode === 'tolerant' });
  const metainfo = obj(mode, { version: z.string().optional(), release_name: z.string().optional(), json_schema_version: UInt.optional() });
  const verbSet = new globalThis.Set<string>(COMMAND_VERBS);
  const Metainfo = keyed<Metainfo>(() => ({ metainfo }), { what: 'metainfo', opaque: false });
  const DocumentItem = select<DocumentItem>((v, ctx) => {
    if (!isPlainObject(v)) {
      ctx.addIssue({ code: 'custom', message: 'each item of "nftables" must be an object', input: v });
      return undefined;
    }
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === 'metainfo') return Metainfo;
    if (keys.length === 1 && verbSet.has(keys[0]!)) return Command;
    return RulesetObject;
  });
  const Document = obj(mode, { nftables: z.array(DocumentItem) }) as z.ZodType<Document>;
  return { Command, RulesetObject, DocumentItem, Document };
}
