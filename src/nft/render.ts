/**
 * Render nft JSON (commands, statements, expressions) as readable nft text,
 * e.g. `add rule inet t c ip saddr 198.18.0.1 tcp dport { 22, 80 } counter accept`.
 * Used for plans shown to humans and in error messages. It follows nft's
 * own output closely for common rules but is not byte-identical in every
 * corner (numbers are printed as given, without datatype formatting);
 * anything it does not know is shown as compact JSON.
 * @module
 */
import { isPlainObject } from './schema/common.js';
import type { Command, Document, DocumentItem } from './schema/commands.js';
import { flags, json, q, quote, renderExpr, renderSetItems, single, str, type Obj } from './render-expr.js';
import { rate, renderStatements } from './render-stmt.js';

export { quote, renderExpr } from './render-expr.js';
export { renderStatement, renderStatements } from './render-stmt.js';

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
