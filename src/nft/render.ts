/**
 * Render nft JSON (commands, statements, expressions) as readable nft text,
 * e.g. `add rule inet t c ip saddr 198.18.0.1 tcp dport { 22, 80 } counter accept`.
 * Used for plans shown to humans and in error messages. It follows nft's
 * own output closely for common rules but is not byte-identical in every
 * corner (numbers are printed as given, without datatype formatting);
 * anything it does not know is shown as compact JSON.
 * @module
 */
import { isOpaque, isPlainObject } from './schema/common.js';
import type { Expression } from './schema/expressions.js';
import type { Statement } from './schema/statements.js';
import type { Command, Document, DocumentItem } from './schema/commands.js';

type Obj = Record<string, unknown>;

const json = (v: unknown): string => JSON.stringify(v) ?? String(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : json(v));
/** Quote a string for nft text when it is not a plain word. */
export function quote(s: string): string {
  return /^[A-Za-z0-9_./:*@-]+$/.test(s) && s !== '' ? s : `"${s.replace(/(["\\])/g, '\\$1')}"`;
}
const q = (v: unknown): string => (typeof v === 'string' ? `"${v.replace(/(["\\])/g, '\\$1')}"` : json(v));

function single(v: unknown): [string, unknown] | undefined {
  if (!isPlainObject(v) || isOpaque(v)) return undefined;
  const keys = Object.keys(v);
  return keys.length === 1 ? [keys[0]!, v[keys[0]!]] : undefined;
}

const UNQUALIFIED_META = new Set(['iif', 'oif', 'iifname', 'oifname', 'iifgroup', 'oifgroup']);
const BINOP_PREC: Record<string, number> = { '|': 1, '^': 2, '&': 3, '<<': 4, '>>': 4 };

function flags(v: unknown, sep = ','): string {
  return Array.isArray(v) ? v.map(str).join(sep) : str(v);
}

function renderSetItems(items: unknown): string {
  if (!Array.isArray(items)) return renderExpr(items as Expression);
  const parts = items.map((it) =>
    Array.isArray(it) && it.length === 2 ? `${renderExpr(it[0] as Expression)} : ${renderExpr(it[1] as Expression)}` : renderExpr(it as Expression),
  );
  return `{ ${parts.join(', ')} }`;
}

function withDir(key: string, o: Obj): string {
  const parts: string[] = [];
  if (o.dir !== undefined) parts.push(str(o.dir));
  if (o.family !== undefined && !key.includes(' ')) parts.push(str(o.family));
  parts.push(key);
  return parts.join(' ');
}

function elemProps(o: Obj): string {
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

function rate(b: Obj): string {
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

function devs(v: unknown): string {
  return Array.isArray(v) ? `{ ${v.map((d) => q(d)).join(', ')} }` : q(v);
}

function setType(v: unknown): string {
  if (typeof v === 'string') return `type ${v}`;
  if (Array.isArray(v)) return `type ${v.map(str).join(' . ')}`;
  if (isPlainObject(v) && 'typeof' in v) return `typeof ${renderExpr(v.typeof)}`;
  return `type ${json(v)}`;
}

function block(parts: string[]): string {
  return parts.length ? ` { ${parts.map((p) => `${p};`).join(' ')} }` : '';
}

/** Render a ruleset object after a verb (`add`, `delete`, ...). */
function renderObject(verb: string, kind: string, o: Obj): string {
  const fam = str(o.family);
  const id = (n: unknown) => (n !== undefined ? quote(str(n)) : o.handle !== undefined ? `handle ${str(o.handle)}` : '');
  const identOnly = ['delete', 'destroy', 'list', 'flush', 'reset'].includes(verb);
  const comment = o.comment !== undefined ? [`comment ${q(o.comment)}`] : [];
  switch (kind) {
    case 'table': {
      if (identOnly) return `${verb} table ${fam} ${id(o.name)}`;
      const parts = [...(o.flags !== undefined ? [`flags ${flags(o.flags)}`] : []), ...comment];
      return `${verb} table ${fam} ${quote(str(o.name))}${block(parts)}`;
    }
    case 'chain': {
      if (verb === 'rename') return `rename chain ${fam} ${quote(str(o.table))} ${quote(str(o.name))} ${quote(str(o.newname))}`;
      if (identOnly) return `${verb} chain ${fam} ${quote(str(o.table))} ${id(o.name)}`;
      const parts: string[] = [];
      if (o.hook !== undefined) {
        parts.push(`type ${str(o.type)} hook ${str(o.hook)}${o.dev !== undefined ? ` devices = ${devs(o.dev)}` : ''} priority ${str(o.prio)}`);
        if (o.policy !== undefined) parts.push(`policy ${str(o.policy)}`);
      }
      parts.push(...comment);
      return `${verb} chain ${fam} ${quote(str(o.table))} ${quote(str(o.name))}${block(parts)}`;
    }
    case 'rule': {
      const where = `${fam} ${quote(str(o.table))} ${quote(str(o.chain))}`;
      if (verb === 'delete' || verb === 'destroy' || verb === 'reset') return `${verb} rule ${where} handle ${str(o.handle)}`;
      const pos = o.handle !== undefined ? (verb === 'replace' ? ` handle ${str(o.handle)}` : ` position ${str(o.handle)}`) : o.index !== undefined ? ` index ${str(o.index)}` : '';
      const stmts = Array.isArray(o.expr) ? renderStatements(o.expr) : '';
      return `${verb} rule ${where}${pos} ${stmts}${o.comment !== undefined ? ` comment ${q(o.comment)}` : ''}`;
    }
    case 'set': case 'map': case 'meter': {
      if (identOnly && o.elem === undefined) return `${verb} ${kind} ${fam} ${quote(str(o.table))} ${id(o.name)}`;
      const parts: string[] = [];
      if (o.type !== undefined) {
        let t = setType(o.type);
        if (o.map !== undefined) t += ` : ${setType(o.map).replace(/^type /, '')}`;
        parts.push(t);
      }
      if (o.flags !== undefined) parts.push(`flags ${flags(o.flags)}`);
      if (o.timeout !== undefined) parts.push(`timeout ${str(o.timeout)}s`);
      if (o['gc-interval'] !== undefined) parts.push(`gc-interval ${str(o['gc-interval'])}s`);
      if (o.size !== undefined) parts.push(`size ${str(o.size)}`);
      if (o.policy !== undefined) parts.push(`policy ${str(o.policy)}`);
      if (o['auto-merge']) parts.push('auto-merge');
      if (Array.isArray(o.stmt) && o.stmt.length) parts.push(renderStatements(o.stmt));
      parts.push(...comment);
      if (o.elem !== undefined) parts.push(`elements = ${renderSetItems(Array.isArray(o.elem) ? o.elem : [o.elem])}`);
      return `${verb} ${kind} ${fam} ${quote(str(o.table))} ${quote(str(o.name))}${block(parts)}`;
    }
    case 'element':
      return `${verb} element ${fam} ${quote(str(o.table))} ${quote(str(o.name))} ${renderSetItems(Array.isArray(o.elem) ? o.elem : [o.elem])}`;
    case 'flowtable': {
      if (identOnly) return `${verb} flowtable ${fam} ${quote(str(o.table))} ${id(o.name)}`;
      const parts = [`hook ${str(o.hook)} priority ${str(o.prio)}`];
      if (o.dev !== undefined) parts.push(`devices = ${devs(o.dev)}`);
      return `${verb} flowtable ${fam} ${quote(str(o.table))} ${quote(str(o.name))}${block(parts)}`;
    }
    default: {
      if (o.family === undefined) return `${verb} ${kind}${o.table !== undefined ? ` ${quote(str(o.table))}` : ''}`;
      if (identOnly) return `${verb} ${kind} ${fam} ${quote(str(o.table))} ${id(o.name)}`;
      const parts: string[] = [];
      switch (kind) {
        case 'counter': parts.push(`packets ${str(o.packets ?? 0)} bytes ${str(o.bytes ?? 0)}`); break;
        case 'quota': parts.push(`${o.inv ? 'over ' : ''}${str(o.bytes ?? 0)} bytes${o.used ? ` used ${str(o.used)} bytes` : ''}`); break;
        case 'limit': parts.push(rate(o).replace(/^limit /, '')); break;
        case 'ct helper': parts.push(`type ${q(o.type)} protocol ${str(o.protocol)}`); if (o.l3proto !== undefined) parts.push(`l3proto ${str(o.l3proto)}`); break;
        case 'ct timeout':
          parts.push(`protocol ${str(o.protocol)}`);
          if (o.l3proto !== undefined) parts.push(`l3proto ${str(o.l3proto)}`);
          if (isPlainObject(o.policy)) parts.push(`policy = { ${Object.entries(o.policy).map(([k, v]) => `${k} : ${str(v)}`).join(', ')} }`);
          break;
        case 'ct expectation':
          for (const k of ['protocol', 'dport', 'timeout', 'size', 'l3proto']) if (o[k] !== undefined) parts.push(`${k} ${str(o[k])}`);
          break;
        case 'secmark': parts.push(q(o.context)); break;
        case 'tunnel': {
          if (o.id !== undefined) parts.push(`id ${str(o.id)}`);
          for (const [k, kw] of [['src-ipv4', 'ip saddr'], ['dst-ipv4', 'ip daddr'], ['src-ipv6', 'ip6 saddr'], ['dst-ipv6', 'ip6 daddr']] as const) {
            if (o[k] !== undefined) parts.push(`${kw} ${renderExpr(o[k])}`);
          }
          for (const k of ['sport', 'dport', 'ttl', 'tos']) if (o[k] !== undefined) parts.push(`${k} ${str(o[k])}`);
          const t = o.tunnel;
          if (o.type === 'geneve' && Array.isArray(t)) {
            for (const g of t) if (isPlainObject(g)) parts.push(`geneve { class ${str(g.class)} opt-type ${str(g['opt-type'])} data ${q(g.data)} }`);
          } else if (o.type !== undefined && isPlainObject(t)) {
            parts.push(`${str(o.type)} { ${Object.entries(t).map(([k, v]) => `${k} ${str(v)}`).join(' ')} }`);
          } else if (o.type !== undefined) parts.push(str(o.type));
          break;
        }
        case 'synproxy': parts.push(`mss ${str(o.mss)}`, `wscale ${str(o.wscale)}${o.flags !== undefined ? ` ${flags(o.flags, ' ')}` : ''}`); break;
        default: {
          const { family: _f, table: _t, name: _n, handle: _h, comment: _c, ...rest } = o;
          for (const [k, v] of Object.entries(rest)) parts.push(`${k} ${typeof v === 'object' ? json(v) : str(v)}`);
        }
      }
      parts.push(...comment);
      return `${verb} ${kind} ${fam} ${quote(str(o.table))} ${quote(str(o.name))}${block(parts)}`;
    }
  }
}

const VERBS = new Set(['add', 'create', 'insert', 'replace', 'delete', 'destroy', 'list', 'reset', 'flush', 'rename']);

/** Render one command (or a bare listing object, shown as `add`) as an nft text line. */
export function renderCommand(c: Command | DocumentItem | unknown): string {
  const kv = single(c);
  if (!kv) return json(c);
  const [key, body] = kv;
  if (key === 'metainfo') {
    const m = (isPlainObject(body) ? body : {}) as Obj;
    return `# nftables ${str(m.version ?? '?')}${m.release_name !== undefined ? ` (${str(m.release_name)})` : ''}, JSON schema ${str(m.json_schema_version ?? '?')}`;
  }
  if (!VERBS.has(key)) return renderObject('add', key, (isPlainObject(body) ? body : {}) as Obj);
  const inner = single(body);
  if (!inner) return json(c);
  const [kind, o] = inner;
  if (o === null) return `${key} ${kind}`;
  if (!isPlainObject(o)) return json(c);
  if (kind.endsWith('s') || kind === 'ruleset') {
    const scope = [o.family, o.table, o.chain].filter((x) => x !== undefined).map((x) => quote(str(x)));
    return [key, kind, ...scope].join(' ');
  }
  return renderObject(key, kind, o);
}

/** Render a whole document, one command per line. */
export function renderDocument(doc: Document | unknown): string {
  const items = isPlainObject(doc) && Array.isArray(doc.nftables) ? doc.nftables : undefined;
  if (!items) return json(doc);
  return items.map((i) => renderCommand(i)).join('\n');
}
