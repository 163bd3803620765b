/**
 * Small typed constructors for the most common pieces of nft JSON, so that
 * builders (Firewall, Throttler, ...) write `rule(t, 'input', [match(payload('tcp', 'dport'), '==', 22), accept()])`
 * instead of raw object literals. Everything returned is plain data of the
 * schema types; validate a finished document with `parseDocument(doc, { mode: 'emit' })`.
 * @module
 */
import { parsePrefix } from '../validate.js';
import type { Family, Known } from './schema/common.js';
import type {
  BinopExpr, ConcatExpr, CtExpr, CtKey, ElemExpr, Expression, Immediate, MatchOp, MetaExpr, MetaKey, PayloadExpr, PayloadProtocol, PrefixExpr,
  RangeExpr, SetExpr, SetItem, MapExpr, VerdictExpr,
} from './schema/expressions.js';
import type { CounterStmt, MatchStmt, MangleStmt, Statement, VmapStmt, LogStmt, NatBody, RejectStmt, REJECT_TYPES } from './schema/statements.js';
import type { Chain, Element, Flowtable, NamedSet, Rule, SetType, Table, HOOKS, CHAIN_TYPES } from './schema/objects.js';
import type { Command, Document, DocumentItem, RulesetObject } from './schema/commands.js';

/** Where a table lives. */
export interface TableId { family: Family; table: string }

/** `{"table": {...}}` */
export function table(family: Family, name: string, opts: { comment?: string; flags?: Table['flags'] } = {}): { table: Table } {
  return { table: { family, name, ...opts } };
}

/** Options of a base chain. */
export interface BaseChainOptions {
  type: Known<(typeof CHAIN_TYPES)[number]>;
  hook: Known<(typeof HOOKS)[number]>;
  prio: number;
  policy?: 'accept' | 'drop';
  dev?: string | string[];
  comment?: string;
}

/** `{"chain": {...}}`: a regular chain, or a base chain when `base` is given. */
export function chain(t: TableId, name: string, base?: BaseChainOptions | { comment?: string }): { chain: Chain } {
  return { chain: { family: t.family, table: t.table, name, ...(base ?? {}) } };
}

/** `{"rule": {...}}` */
export function rule(t: TableId, chainName: string, expr: Statement[], opts: { comment?: string; handle?: number; index?: number } = {}): { rule: Rule } {
  return { rule: { family: t.family, table: t.table, chain: chainName, expr, ...opts } };
}

/** Options of a named set or map. */
export type SetOptions = Omit<NamedSet, 'family' | 'table' | 'name' | 'type'>;

/** `{"set": {...}}` */
export function set(t: TableId, name: string, type: SetType, opts: SetOptions = {}): { set: NamedSet } {
  return { set: { family: t.family, table: t.table, name, type, ...opts } };
}

/** `{"map": {...}}` mapping keys of `type` to values of `map` (a datatype, or `verdict`). */
export function map(t: TableId, name: string, type: SetType, data: SetType, opts: Omit<SetOptions, 'map'> = {}): { map: NamedSet } {
  return { map: { family: t.family, table: t.table, name, type, map: data, ...opts } };
}

/** `{"element": {...}}`: elements for add/delete element commands. */
export function elements(t: TableId, setName: string, elem: SetItem[]): { element: Element } {
  return { element: { family: t.family, table: t.table, name: setName, elem } };
}

/** `{"flowtable": {...}}` (hook `ingress`). */
export function flowtable(t: TableId, name: string, opts: { prio: number; dev?: string | string[] | undefined }): { flowtable: Flowtable } {
  return { flowtable: { family: t.family, table: t.table, name, hook: 'ingress', prio: opts.prio, ...(opts.dev !== undefined ? { dev: opts.dev } : {}) } };
}

/** `{"match": {left, op, right}}` */
export function match(left: Expression, op: MatchOp, right: Expression): MatchStmt {
  return { match: { op, left, right } };
}
/** `left == right` (the most common match). */
export function eq(left: Expression, right: Expression): MatchStmt {
  return match(left, '==', right);
}
/** `{"mangle": {key, value}}` (`key set value`). */
export function mangle(key: Expression, value: Expression): MangleStmt {
  return { mangle: { key, value } };
}
/**
 * Expressions that carry no value of their own (`tcp dport`, `meta l4proto`, `counter`, `accept`) are
 * built once and shared, frozen: a firewall of 10,000 rules then holds about half as many objects,
 * which the garbage collector would otherwise copy while the plan is compiled. Commands are data
 * and never changed after they are built.
 */
function frozen<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) Object.freeze(v);
  return Object.freeze(o);
}
const payloads = new Map<string, PayloadExpr>();
const metas = new Map<string, MetaExpr>();

/** `{"payload": {protocol, field}}` (`tcp dport`). Shared and frozen (see `frozen`). */
export function payload(protocol: PayloadProtocol, field: string): PayloadExpr {
  const k = `${protocol} ${field}`;
  let e = payloads.get(k);
  if (!e) {
    e = frozen({ payload: { protocol, field } });
    if (payloads.size < 4096) payloads.set(k, e);
  }
  return e;
}
/** `{"meta": {key}}` (`meta mark`, `iifname`). Shared and frozen. */
export function meta(key: MetaKey): MetaExpr {
  let e = metas.get(key);
  if (!e) {
    e = frozen({ meta: { key } });
    if (metas.size < 256) metas.set(key, e);
  }
  return e;
}
/** `{"ct": {key, dir?}}` (`ct state`). */
export function ct(key: CtKey, dir?: 'original' | 'reply'): CtExpr {
  return { ct: dir ? { key, dir } : { key } };
}
/** `{"prefix": {addr, len}}` */
export function prefix(addr: string, len: number): PrefixExpr {
  return { prefix: { addr, len } };
}
/** `{"range": [low, high]}` */
export function range(low: Expression, high: Expression): RangeExpr {
  return { range: [low, high] };
}
/** `{"concat": [...]}` */
export function concat(...parts: Expression[]): ConcatExpr {
  return { concat: parts };
}
/** An anonymous set `{"set": [...]}`. */
export function anonSet(items: readonly SetItem[]): SetExpr {
  return { set: [...items] };
}
/** Bitwise and `a & b`. */
export function and(a: Expression, b: Expression): BinopExpr {
  return { '&': [a, b] };
}
/** Bitwise or `a | b`. */
export function or(a: Expression, b: Expression): BinopExpr {
  return { '|': [a, b] };
}
/**
 * An address, prefix or range written as text: `"198.18.0.1"` (an
 * address), `"198.18.0.0/15"` (a prefix; `/32` and `/128` are the plain
 * address), `"198.18.0.1-198.18.0.9"` (a range). Text that is none of these
 * is returned as is (a symbol for nft to resolve, or refused by it).
 */
export function addr(text: string): Expression {
  const dash = text.indexOf('-');
  if (dash > 0) return range(text.slice(0, dash), text.slice(dash + 1));
  const p = parsePrefix(text);
  if (!p) return text;
  const max = p.family === 4 ? 32 : 128;
  return p.explicit && p.len < max ? prefix(p.address, p.len) : p.address;
}
/** A set element with properties: `{"elem": {"val": ..., "timeout": s}}`. */
export function elem(val: Expression, opts: Omit<ElemExpr['elem'], 'val'> = {}): ElemExpr {
  return { elem: { val, ...opts } };
}
/** `{"map": {key, data}}` (`key map data`). */
export function lookup(key: Expression, data: Expression): MapExpr {
  return { map: { key, data } };
}
/** `{"vmap": {key, data}}` (`key vmap { ... }`). */
export function vmap(key: Expression, data: Expression): VmapStmt {
  return { vmap: { key, data } };
}
/** A reference to a named set, `"@name"`. */
export function setRef(name: string): Immediate {
  return `@${name}`;
}

const ACCEPT: { accept: null } = Object.freeze({ accept: null });
const DROP: { drop: null } = Object.freeze({ drop: null });
const CONTINUE: { continue: null } = Object.freeze({ continue: null });
const RETURN: { return: null } = Object.freeze({ return: null });

/** Verdict statements and expressions. */
export const verdict = {
  /** `accept` (shared and frozen) */
  accept: (): { accept: null } => ACCEPT,
  /** `drop` (shared and frozen) */
  drop: (): { drop: null } => DROP,
  /** `continue` (shared and frozen) */
  continue: (): { continue: null } => CONTINUE,
  /** `return` (shared and frozen) */
  return: (): { return: null } => RETURN,
  /** `jump <chain>` */
  jump: (target: string): { jump: { target: string } } => ({ jump: { target } }),
  /** `goto <chain>` */
  goto: (target: string): { goto: { target: string } } => ({ goto: { target } }),
} satisfies Record<string, (...a: string[]) => VerdictExpr>;

/** `accept` statement. */
export const accept = verdict.accept;
/** `drop` statement. */
export const drop = verdict.drop;
/** `jump <chain>` statement. */
export const jump = verdict.jump;
/** `goto <chain>` statement. */
export const goto = verdict.goto;
/** `return` statement. */
export const ret = verdict.return;
/** `continue` statement. */
export const cont = verdict.continue;

const COUNTER: CounterStmt = Object.freeze({ counter: null });
/** `counter` (anonymous; shared and frozen). */
export function counter(): CounterStmt {
  return COUNTER;
}
/** `log [prefix ...]`. */
export function log(opts: NonNullable<LogStmt['log']> = {}): LogStmt {
  return { log: Object.keys(opts).length ? opts : null };
}
/** `reject [with <type> <expr>]`: `reject()`, `reject('tcp reset')`, `reject('icmpx', 'port-unreachable')`. */
export function reject(type?: Known<(typeof REJECT_TYPES)[number]>, expr?: string | number): RejectStmt {
  if (type === undefined) return { reject: null };
  return { reject: expr === undefined ? { type } : { type, expr } };
}
/** `snat`/`dnat`/`masquerade`/`redirect`. */
export function nat(kind: 'snat' | 'dnat' | 'masquerade' | 'redirect', body: NatBody | null = null): Statement {
  return { [kind]: body } as Statement;
}

/** Wrap objects in commands. */
export const cmd = {
  /** `add` */
  add: (o: RulesetObject): Command => ({ add: o }),
  /** `create` */
  create: (o: Exclude<RulesetObject, { rule: Rule }>): Command => ({ create: o }),
  /** `insert rule` */
  insert: (o: { rule: Rule }): Command => ({ insert: o }),
  /** `replace rule` (the rule needs its handle). */
  replace: (o: { rule: Rule }): Command => ({ replace: o }),
  /** `delete table|chain|set|... <name>` or `delete rule ... handle N`. */
  delete: (o: Extract<Command, { delete: unknown }>['delete']): Command => ({ delete: o }),
  /** `destroy` (nft ≥ 1.0.8: delete, no error when missing). */
  destroy: (o: Extract<Command, { destroy: unknown }>['destroy']): Command => ({ destroy: o }),
  /** `flush table|chain|set|map|ruleset`. */
  flush: (o: Extract<Command, { flush: unknown }>['flush']): Command => ({ flush: o }),
};

/** `{"nftables": [...]}` */
export function document(items: DocumentItem[]): Document {
  return { nftables: items };
}
