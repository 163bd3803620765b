/**
 * nft text of expressions (`ip saddr`, `{ 22, 80 }`, `ct state established`)
 * and the small helpers the statement and command renderers share. Part of
 * the renderer, see render.ts.
 * @module
 */
import { isOpaque, isPlainObject } from './schema/common.js';
import type { Expression } from './schema/expressions.js';
import type { Statement } from './schema/statements.js';
// render-stmt imports this module too: the functions only call each other at run time.
import { renderStatement } from './render-stmt.js';

/** A JSON object, as the renderer reads it. */
export type Obj = Record<string, unknown>;

export const json = (v: unknown): string => JSON.stringify(v) ?? String(v);
export const str = (v: unknown): string => (typeof v === 'string' ? v : json(v));
/** Quote a string for nft text when it is not a plain word. */
export function quote(s: string): string {
  return /^[A-Za-z0-9_./:*@-]+$/.test(s) && s !== '' ? s : `"${s.replace(/(["\\])/g, '\\$1')}"`;
}
export const q = (v: unknown): string => (typeof v === 'string' ? `"${v.replace(/(["\\])/g, '\\$1')}"` : json(v));

export function single(v: unknown): [string, unknown] | undefined {
  if (!isPlainObject(v) || isOpaque(v)) return undefined;
  const keys = Object.keys(v);
  return keys.length === 1 ? [keys[0]!, v[keys[0]!]] : undefined;
}

export const UNQUALIFIED_META = new Set(['iif', 'oif', 'iifname', 'oifname', 'iifgroup', 'oifgroup']);
export const BINOP_PREC: Record<string, number> = { '|': 1, '^': 2, '&': 3, '<<': 4, '>>': 4 };

export function flags(v: unknown, sep = ','): string {
  return Array.isArray(v) ? v.map(str).join(sep) : str(v);
}

export function renderSetItems(items: unknown): string {
  if (!Array.isArray(items)) return renderExpr(items as Expression);
  const parts = items.map((it) =>
    Array.isArray(it) && it.length === 2 ? `${renderExpr(it[0] as Expression)} : ${renderExpr(it[1] as Expression)}` : renderExpr(it as Expression),
  );
  return `{ ${parts.join(', ')} }`;
}

export function withDir(key: string, o: Obj): string {
  const parts: string[] = [];
  if (o.dir !== undefined) parts.push(str(o.dir));
  if (o.family !== undefined && !key.includes(' ')) parts.push(str(o.family));
  parts.push(key);
  return parts.join(' ');
}

export function elemProps(o: Obj): string {
  const extra: string[] = [];
  if (o.timeout !== undefined) extra.push(`timeout ${str(o.timeout)}s`);
  if (o.expires !== undefined) extra.push(`expires ${str(o.expires)}s`);
  for (const [k, v] of Object.entries(o)) {
    if (['val', 'timeout', 'expires', 'comment'].includes(k)) continue;
    extra.push(renderStatement({ [k]: v } as Statement));
  }
  if (o.comment !== undefined) extra.push(`comment ${q(o.comment)}`);
  return extra.length ? ` ${extra.join(' ')}` : '';
}

/** Render an expression as nft text. Unknown kinds are rendered as JSON. */
export function renderExpr(e: Expression | unknown): string {
  if (typeof e === 'string') return quote(e);
  if (typeof e === 'number' || typeof e === 'boolean') return String(e);
  if (Array.isArray(e)) return e.map((x) => renderExpr(x)).join(',');
  const kv = single(e);
  if (!kv) return json(e);
  const [kind, body] = kv;
  const b = (isPlainObject(body) ? body : {}) as Obj;
  switch (kind) {
    case 'payload':
      if (b.base !== undefined) return `@${str(b.base)},${str(b.offset)},${str(b.len)}`;
      return `${b.tunnel !== undefined ? `${str(b.tunnel)} ` : ''}${str(b.protocol)} ${str(b.field)}`;
    case 'meta':
      return UNQUALIFIED_META.has(str(b.key)) ? str(b.key) : `meta ${str(b.key)}`;
    case 'ct':
      return `ct ${withDir(str(b.key), b)}`;
    case 'exthdr':
      if (b.field === undefined) return `exthdr ${str(b.name)}`;
      return `${str(b.name)} ${str(b.field)}${b.offset !== undefined ? `[${str(b.offset)}]` : ''}`;
    case 'tcp option':
      if (b.base !== undefined) {
        if (b.offset === 0 && (b.len === 8 || b.len === 0)) return `tcp option ${str(b.base)}`;
        return `tcp option @${str(b.base)},${str(b.offset)},${str(b.len)}`;
      }
      return `tcp option ${str(b.name)}${b.field !== undefined ? ` ${str(b.field)}` : ''}`;
    case 'ip option':
      return `ip option ${str(b.name)}${b.field !== undefined ? ` ${str(b.field)}` : ''}`;
    case 'sctp chunk':
      return `sctp chunk ${str(b.name)}${b.field !== undefined ? ` ${str(b.field)}` : ''}`;
    case 'dccp option':
      return `dccp option ${str(b.type)}`;
    case 'osf':
      return `osf ${b.ttl !== undefined ? `ttl ${str(b.ttl)} ` : ''}${str(b.key)}`;
    case 'ipsec':
      return `ipsec ${b.dir !== undefined ? `${str(b.dir)} ` : ''}${b.spnum ? `spnum ${str(b.spnum)} ` : ''}${b.family !== undefined ? `${str(b.family)} ` : ''}${str(b.key)}`;
    case 'socket':
      return `socket ${str(b.key)}${b.level !== undefined ? ` level ${str(b.level)}` : ''}`;
    case 'rt':
      return `rt ${b.family !== undefined ? `${str(b.family)} ` : ''}${str(b.key)}`;
    case 'numgen':
      return `numgen ${str(b.mode)} mod ${str(b.mod)}${b.offset ? ` offset ${str(b.offset)}` : ''}`;
    case 'tunnel':
      return `tunnel ${str(b.key)}`;
    case 'jhash':
      return `jhash ${renderExpr(b.expr)} mod ${str(b.mod)}${b.seed !== undefined ? ` seed 0x${Number(b.seed).toString(16)}` : ''}${b.offset ? ` offset ${str(b.offset)}` : ''}`;
    case 'symhash':
      return `symhash mod ${str(b.mod)}${b.offset ? ` offset ${str(b.offset)}` : ''}`;
    case 'fib':
      return `fib ${b.flags !== undefined ? flags(b.flags, ' . ') : ''} ${str(b.result) === 'check' ? 'check' : str(b.result)}`;
    case 'concat':
      return Array.isArray(body) ? body.map((x) => renderExpr(x)).join(' . ') : json(e);
    case 'set':
      return renderSetItems(body);
    case 'map':
      return `${renderExpr(b.key)} map ${renderExpr(b.data)}`;
    case 'prefix':
      return `${renderExpr(b.addr)}/${str(b.len)}`;
    case 'range':
      return Array.isArray(body) ? `${renderExpr(body[0])}-${renderExpr(body[1])}` : json(e);
    case 'elem':
      return `${renderExpr(b.val)}${elemProps(b)}`;
    case 'accept': case 'drop': case 'continue': case 'return':
      return kind;
    case 'jump': case 'goto':
      return `${kind} ${quote(str(b.target))}`;
    default:
      if (kind in BINOP_PREC && Array.isArray(body)) {
        const prec = BINOP_PREC[kind]!;
        return body
          .map((x, i) => {
            const inner = single(x);
            const s = renderExpr(x);
            if (inner && inner[0] in BINOP_PREC && (BINOP_PREC[inner[0]]! < prec || (i > 0 && BINOP_PREC[inner[0]]! <= prec))) return `(${s})`;
            return s;
          })
          .join(` ${kind} `);
      }
      return json(e);
  }
}
