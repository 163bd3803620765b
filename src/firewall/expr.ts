/**
 * libnftables JSON constructors used by the firewall compiler. Every piece of
 * JSON the Firewall and the SmartProxy manager emit is built here, so that the
 * shape of the format lives in one module (the nft schema module validates the
 * result strictly in unit tests).
 *
 * Only constructs accepted by both nft 1.0.6 and 1.1.x are produced (e.g.
 * dynamic sets with per-element statements are emitted as `meter`, because
 * nft 1.0.6's JSON parser does not know the `dynamic` set flag).
 * @module
 */
import { parsePrefix } from '../validate.js';

/** A JSON expression (opaque here: the nft schema module types it). */
export type Expr = unknown;
/** A JSON statement. */
export type Stmt = Record<string, unknown>;
/** Table families. */
export type Family = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

/** `{"payload":{"protocol":p,"field":f}}` */
export const payload = (protocol: string, field: string): Expr => ({ payload: { protocol, field } });
/** `{"meta":{"key":k}}` */
export const meta = (key: string): Expr => ({ meta: { key } });
/** `{"ct":{"key":k}}` */
export const ct = (key: string): Expr => ({ ct: { key } });
/** A match statement `left op right`. */
export const match = (left: Expr, right: Expr, op: '==' | '!=' | 'in' | '<' | '>' | '<=' | '>=' = '=='): Stmt => ({ match: { op, left, right } });
/** An anonymous set literal `{ a, b }`. */
export const setOf = (items: readonly Expr[]): Expr => ({ set: [...items] });
/** A range `a-b`. */
export const range = (a: Expr, b: Expr): Expr => ({ range: [a, b] });
/** A prefix `addr/len`. */
export const prefix = (addr: string, len: number): Expr => ({ prefix: { addr, len } });
/** A concatenation `a . b`. */
export const concat = (items: readonly Expr[]): Expr => ({ concat: [...items] });
/** Bitwise and `a & b`. */
export const and = (a: Expr, b: Expr): Expr => ({ '&': [a, b] });
/** Bitwise or `a | b`. */
export const or = (a: Expr, b: Expr): Expr => ({ '|': [a, b] });

/** Verdicts. */
export const accept = (): Stmt => ({ accept: null });
export const drop = (): Stmt => ({ drop: null });
export const ret = (): Stmt => ({ return: null });
export const cont = (): Stmt => ({ continue: null });
export const jump = (target: string): Stmt => ({ jump: { target } });
export const goto_ = (target: string): Stmt => ({ goto: { target } });
/** An anonymous counter. */
export const counter = (): Stmt => ({ counter: null });
/** `vmap` lookup: `key vmap @map` or an anonymous verdict map. */
export const vmap = (key: Expr, data: Expr): Stmt => ({ vmap: { key, data } });
/** `meta/ct key set value`. */
export const mangle = (key: Expr, value: Expr): Stmt => ({ mangle: { key, value } });

/** A single address or prefix as a JSON value (`"1.2.3.4"` or a prefix object). */
export function addrValue(text: string): Expr {
  const dash = text.indexOf('-');
  if (dash > 0) return range(text.slice(0, dash), text.slice(dash + 1));
  const p = parsePrefix(text);
  if (!p) return text;
  const max = p.family === 4 ? 32 : 128;
  return p.explicit && p.len < max ? prefix(p.address, p.len) : p.address;
}

/** `{"add":{kind:obj}}` */
export const add = (kind: string, obj: Record<string, unknown>): unknown => ({ add: { [kind]: obj } });
/** `{"delete":{kind:obj}}` */
export const del = (kind: string, obj: Record<string, unknown>): unknown => ({ delete: { [kind]: obj } });
/** `{"flush":{kind:obj}}` */
export const flush = (kind: string, obj: Record<string, unknown>): unknown => ({ flush: { [kind]: obj } });
