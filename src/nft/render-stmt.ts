/**
 * nft text of statements (`counter`, `dnat ip to 198.18.0.1`, `limit rate
 * over 10/second`, verdicts). Part of the renderer, see render.ts.
 * @module
 */
import { isPlainObject } from './schema/common.js';
import type { Statement } from './schema/statements.js';
import { BINOP_PREC, flags, json, q, quote, renderExpr, single, str, type Obj } from './render-expr.js';

function natText(kind: string, b: Obj | null): string {
  if (b === null) return kind;
  const parts = [kind];
  if (b.type_flags !== undefined) {
    const tf = flags(b.type_flags, ' ');
    if (b.family !== undefined) parts.push(str(b.family));
    parts.push(tf);
  } else if (b.family !== undefined) parts.push(str(b.family));
  if (b.addr !== undefined || b.port !== undefined) {
    let to = '';
    if (b.addr !== undefined) to = b.port !== undefined ? bracketed(b.addr) : renderExpr(b.addr);
    if (b.port !== undefined) to += `:${renderExpr(b.port)}`;
    parts.push(`to ${to}`);
  }
  if (b.flags !== undefined) parts.push(flags(b.flags));
  return parts.join(' ');
}

/** An address for `addr:port`: IPv6 literals (and ranges of them) in brackets. */
function bracketed(addr: unknown): string {
  const v6 = (x: unknown) => (typeof x === 'string' && x.includes(':') ? `[${x}]` : renderExpr(x));
  const kv = single(addr);
  if (kv && kv[0] === 'range' && Array.isArray(kv[1])) return `${v6(kv[1][0])}-${v6(kv[1][1])}`;
  return v6(addr);
}

function logFlags(v: unknown): string {
  const list = (Array.isArray(v) ? v : [v]).map(str);
  const tcp = list.filter((f) => f.startsWith('tcp ')).map((f) => f.slice(4));
  const out = list.filter((f) => !f.startsWith('tcp ')).map((f) => `flags ${f}`);
  if (tcp.length) out.push(`flags tcp ${tcp.join(',')}`);
  return out.join(' ');
}

export function rate(b: Obj): string {
  const unit = b.rate_unit !== undefined && b.rate_unit !== 'packets' ? ` ${str(b.rate_unit)}` : '';
  let s = `limit rate ${b.inv ? 'over ' : ''}${str(b.rate)}${unit}/${str(b.per)}`;
  if (b.burst !== undefined && b.burst !== 0) s += ` burst ${str(b.burst)} ${b.rate_unit !== undefined && b.rate_unit !== 'packets' ? str(b.burst_unit ?? 'bytes') : 'packets'}`;
  return s;
}

/** Render a statement as nft text. Unknown kinds are rendered as JSON. */
export function renderStatement(s: Statement | unknown): string {
  const kv = single(s);
  if (!kv) return json(s);
  const [kind, body] = kv;
  const b = (isPlainObject(body) ? body : {}) as Obj;
  const isRef = body !== null && !isPlainObject(body) ? true : isPlainObject(body) && single(body) !== undefined && !['packets', 'bytes', 'val', 'rate', 'per', 'mss', 'wscale', 'flags', 'used'].some((k) => k in body);
  switch (kind) {
    case 'match': {
      const op = str(b.op);
      const left = renderExpr(b.left);
      let right = renderExpr(b.right);
      if (typeof b.right === 'boolean') right = b.right ? 'exists' : 'missing';
      const leftKind = single(b.left)?.[0];
      if (op === 'in' || (op === '==' && !(leftKind !== undefined && leftKind in BINOP_PREC))) return `${left} ${right}`;
      return `${left} ${op} ${right}`;
    }
    case 'accept': case 'drop': case 'continue': case 'return':
      return kind;
    case 'jump': case 'goto':
      return `${kind} ${quote(str(b.target))}`;
    case 'counter':
      if (body === null) return 'counter';
      if (isRef) return `counter name ${renderExpr(body)}`;
      if (b.packets === 0 && b.bytes === 0) return 'counter';
      return `counter packets ${str(b.packets)} bytes ${str(b.bytes)}`;
    case 'mangle':
      return `${renderExpr(b.key)} set ${renderExpr(b.value)}`;
    case 'quota':
      if (isRef) return `quota name ${renderExpr(body)}`;
      return `quota ${b.inv ? 'over ' : ''}${str(b.val)} ${str(b.val_unit ?? 'bytes')}${b.used ? ` used ${str(b.used)} ${str(b.used_unit ?? 'bytes')}` : ''}`;
    case 'last':
      return body === null ? 'last' : `last used ${str(b.used)}ms`;
    case 'limit':
      return isRef ? `limit name ${renderExpr(body)}` : rate(b);
    case 'flow':
      return `flow ${str(b.op)} ${str(b.flowtable)}`;
    case 'fwd':
      return b.addr !== undefined ? `fwd ${b.family !== undefined ? `${str(b.family)} ` : ''}to ${renderExpr(b.addr)} device ${renderExpr(b.dev)}` : `fwd to ${renderExpr(b.dev)}`;
    case 'notrack':
      return 'notrack';
    case 'dup':
      return `dup to ${renderExpr(b.addr)}${b.dev !== undefined ? ` device ${renderExpr(b.dev)}` : ''}`;
    case 'snat': case 'dnat': case 'masquerade': case 'redirect':
      return natText(kind, body === null ? null : b);
    case 'reject':
      if (body === null || b.type === undefined) return 'reject';
      return `reject with ${str(b.type)}${b.expr !== undefined ? ` ${str(b.expr)}` : ''}`;
    case 'set': case 'map': {
      const stmts = Array.isArray(b.stmt) && b.stmt.length ? ` ${b.stmt.map((x) => renderStatement(x)).join(' ')}` : '';
      const data = kind === 'map' ? ` : ${renderExpr(b.data)}` : '';
      return `${str(b.op)} ${str(kind === 'map' ? b.map : b.set)} { ${renderExpr(b.elem)}${stmts}${data} }`;
    }
    case 'log': {
      if (body === null) return 'log';
      const p: string[] = ['log'];
      if (b.prefix !== undefined) p.push(`prefix ${q(b.prefix)}`);
      if (b.group !== undefined) p.push(`group ${str(b.group)}`);
      if (b.snaplen !== undefined) p.push(`snaplen ${str(b.snaplen)}`);
      if (b['queue-threshold'] !== undefined) p.push(`queue-threshold ${str(b['queue-threshold'])}`);
      if (b.level !== undefined) p.push(`level ${str(b.level)}`);
      if (b.flags !== undefined) p.push(logFlags(b.flags));
      return p.join(' ');
    }
    case 'ct helper': case 'ct timeout': case 'ct expectation':
      return `${kind} set ${typeof body === 'string' ? q(body) : renderExpr(body)}`;
    case 'secmark':
      return `meta secmark set ${typeof body === 'string' ? q(body) : renderExpr(body)}`;
    case 'tunnel':
      return `tunnel name ${typeof body === 'string' ? q(body) : renderExpr(body)}`;
    case 'meter':
      return `meter ${str(b.name)}${b.size !== undefined ? ` size ${str(b.size)}` : ''} { ${renderExpr(b.key)} ${renderStatement(b.stmt)} }`;
    case 'queue': {
      if (body === null) return 'queue';
      const p = ['queue'];
      if (b.flags !== undefined) p.push(`flags ${flags(b.flags)}`);
      if (b.num !== undefined) p.push(`${b.flags !== undefined ? 'to' : 'num'} ${renderExpr(b.num)}`);
      return p.join(' ');
    }
    case 'ct count':
      return `ct count ${b.inv ? 'over ' : ''}${str(b.val)}`;
    case 'tproxy': {
      let to = '';
      if (b.addr !== undefined) to = bracketed(b.addr);
      if (b.port !== undefined) to += `:${renderExpr(b.port)}`;
      return `tproxy ${b.family !== undefined ? `${str(b.family)} ` : ''}to ${to}`;
    }
    case 'synproxy': {
      if (body === null) return 'synproxy';
      if (isRef) return `synproxy name ${renderExpr(body)}`;
      const p = ['synproxy'];
      if (b.mss !== undefined) p.push(`mss ${str(b.mss)}`);
      if (b.wscale !== undefined) p.push(`wscale ${str(b.wscale)}`);
      if (b.flags !== undefined) p.push(flags(b.flags, ' '));
      return p.join(' ');
    }
    case 'reset':
      return `reset ${renderExpr(body)}`;
    case 'vmap':
      return `${renderExpr(b.key)} vmap ${renderExpr(b.data)}`;
    case 'xt':
      return `xt ${str(b.type)} ${q(b.name)}`;
    default:
      return json(s);
  }
}

/** Render a rule's statement list. */
export function renderStatements(stmts: readonly (Statement | unknown)[]): string {
  return stmts.map((s) => renderStatement(s)).join(' ');
}
