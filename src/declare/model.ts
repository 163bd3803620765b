/**
 * A comparable model of one nftables table — chains (with their base-chain
 * properties and rules by id), sets and maps (with their elements) — built
 * from the commands a class compiles or from the kernel's listing, and the
 * per-object difference of two models. Pure.
 * @module
 */
import { listingToCommands } from '../plan/snapshot.js';
import type { TableRef } from '../plan/types.js';
import type { NftListing } from '../nft/listing.js';
import { renderCommand } from '../nft/render.js';
import { ruleIdOf } from '../util/rule-comment.js';

/** One rule: its id (from the `nf:<id>` comment, or its text) and its nft text. */
export interface ModelRule {
  id: string;
  text: string;
}

/** A table as compared by `plan`. */
export interface TableModel {
  /** Chains by name: base-chain properties (`type filter hook input priority 0 policy drop`, empty for a regular chain) and rules in order. */
  chains: Record<string, { props: string; rules: ModelRule[] }>;
  /** Sets, maps, flowtables and named objects by `kind name`: properties (type, flags...) and elements. */
  objects: Record<string, { props: string; elements: string[] }>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One set/map element as text: `198.18.0.0/24`, `198.18.0.1-198.18.0.9`, `a . b`, `key : verdict`. */
export function elementText(e: unknown): string {
  if (typeof e === 'string' || typeof e === 'number' || typeof e === 'boolean') return String(e);
  if (Array.isArray(e)) return e.length === 2 ? `${elementText(e[0])} : ${elementText(e[1])}` : e.map(elementText).join(' . ');
  if (isObj(e)) {
    const [k] = Object.keys(e);
    const v = k !== undefined ? e[k] : undefined;
    if (k === 'prefix' && isObj(v)) return `${elementText(v.addr)}/${String(v.len)}`;
    if (k === 'range' && Array.isArray(v)) return `${elementText(v[0])}-${elementText(v[1])}`;
    if (k === 'concat' && Array.isArray(v)) return v.map(elementText).join(' . ');
    if (k === 'elem' && isObj(v)) return elementText(v.val);
    if (k === 'set' && Array.isArray(v)) return `{ ${v.map(elementText).join(', ')} }`;
    if ((k === 'jump' || k === 'goto') && isObj(v)) return `${k} ${String(v.target)}`;
    if (k !== undefined && v === null) return k; // verdicts: { accept: null }
  }
  return JSON.stringify(e);
}

function elemsOf(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(elementText);
}

/** nft text of a rule without its counters' values and handle. */
function ruleText(rule: Obj): string {
  const { handle: _h, ...rest } = rule;
  const text = renderCommand({ add: { rule: rest } });
  return text
    .replace(/^add rule \S+ \S+ \S+ /, '')
    .replace(/counter packets \d+ bytes \d+/g, 'counter')
    .replace(/\s+comment "[^"]*"$/, '')
    .trim();
}

function chainProps(c: Obj): string {
  if (c.hook === undefined) return '';
  const parts = [`type ${String(c.type ?? 'filter')}`, `hook ${String(c.hook)}`];
  if (c.dev !== undefined) parts.push(`device ${String(c.dev)}`);
  parts.push(`priority ${String(c.prio ?? 0)}`, `policy ${String(c.policy ?? 'accept')}`);
  return parts.join(' ');
}

const PROP_SKIP = new Set(['family', 'table', 'name', 'handle', 'elem', 'comment', 'packets', 'bytes', 'used', 'stmt']);
function objProps(o: Obj): string {
  return Object.entries(o)
    .filter(([k]) => !PROP_SKIP.has(k))
    .map(([k, v]) => `${k} ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(', ');
}

/**
 * The model of `table` after `commands` (add/insert/delete/flush of tables,
 * chains, rules, sets, maps, elements; commands on other tables ignored).
 * Ownership marks (`netfence_owner_*` counters) are left out.
 */
export function modelFromCommands(commands: readonly unknown[], table: TableRef): TableModel {
  let m: TableModel = { chains: {}, objects: {} };
  const ruleIds = new Map<string, number>();
  for (const c of commands) {
    if (!isObj(c)) continue;
    const [verb] = Object.keys(c);
    const body = verb !== undefined ? c[verb] : undefined;
    if (!isObj(body)) continue;
    const [kind] = Object.keys(body);
    const o = kind !== undefined ? body[kind] : undefined;
    if (!isObj(o) || o.family !== table.family) continue;
    const tname = kind === 'table' ? o.name : o.table;
    if (tname !== table.name) continue;
    if (kind === 'table') {
      if (verb === 'delete' || verb === 'destroy' || verb === 'flush') m = { chains: {}, objects: {} };
      continue;
    }
    const name = String(o.name ?? '');
    if (kind === 'chain') {
      if (verb === 'add' || verb === 'create') m.chains[name] ??= { props: chainProps(o), rules: [] };
      else if (verb === 'delete' || verb === 'destroy') delete m.chains[name];
      else if (verb === 'flush' && m.chains[name]) m.chains[name].rules = [];
      continue;
    }
    if (kind === 'rule') {
      const chain = m.chains[String(o.chain)];
      if (!chain || (verb !== 'add' && verb !== 'insert')) continue;
      let id = ruleIdOf(o.comment) ?? ruleText(o);
      const n = (ruleIds.get(`${String(o.chain)}/${id}`) ?? 0) + 1;
      ruleIds.set(`${String(o.chain)}/${id}`, n);
      if (n > 1) id = `${id}#${n}`;
      const r = { id, text: ruleText(o) };
      if (verb === 'insert') chain.rules.unshift(r);
      else chain.rules.push(r);
      continue;
    }
    if (kind === 'element') {
      const s = m.objects[`set ${name}`] ?? m.objects[`map ${name}`];
      if (!s) continue;
      const els = elemsOf(o.elem);
      if (verb === 'add' || verb === 'create') s.elements.push(...els.filter((e) => !s.elements.includes(e)));
      else if (verb === 'delete' || verb === 'destroy') s.elements = s.elements.filter((e) => !els.includes(e));
      continue;
    }
    if (kind === 'counter' && name.startsWith('netfence_owner')) continue;
    const key = `${kind} ${name}`;
    if (verb === 'add' || verb === 'create') {
      const prev = m.objects[key];
      const els = elemsOf(o.elem);
      if (prev) prev.elements.push(...els.filter((e) => !prev.elements.includes(e)));
      else m.objects[key] = { props: objProps(o), elements: els };
    } else if (verb === 'delete' || verb === 'destroy') delete m.objects[key];
    else if (verb === 'flush' && m.objects[key]) m.objects[key].elements = [];
  }
  return m;
}

/** The model of `table` in a kernel listing. */
export function modelFromListing(listing: NftListing, table: TableRef): TableModel {
  return modelFromCommands(listingToCommands(listing, table), table);
}

/** What differs between the table in the kernel and the declared one. */
export interface TableChanges {
  chainsAdded: string[];
  chainsRemoved: string[];
  /** Base-chain properties that differ (`policy accept` → `policy drop`). */
  chainsChanged: { chain: string; from: string; to: string }[];
  rulesAdded: { chain: string; id: string; text: string }[];
  rulesRemoved: { chain: string; id: string; text: string }[];
  /** Same id, different content (compared with what was applied last, see `previous`). */
  rulesChanged: { chain: string; id: string; from: string; to: string }[];
  /** Rules present on both sides whose order differs. */
  rulesReordered: string[];
  objectsAdded: string[];
  objectsRemoved: string[];
  objectsChanged: { object: string; from: string; to: string }[];
  elementsAdded: { object: string; elements: string[] }[];
  elementsRemoved: { object: string; elements: string[] }[];
}

/** Whether a {@link TableChanges} holds any change. */
export function hasTableChanges(c: TableChanges): boolean {
  return Object.values(c).some((v) => Array.isArray(v) && v.length > 0);
}

/**
 * Compare the kernel's table (`current`) with the declared one (`desired`).
 * Rule texts and object properties are compared with `previous` — the model
 * recorded at the last apply from this file — when there is one, because nft
 * lists rules back in its own normal form; without it, with the kernel's.
 */
export function diffTables(current: TableModel, desired: TableModel, previous?: TableModel): TableChanges {
  const out: TableChanges = {
    chainsAdded: [], chainsRemoved: [], chainsChanged: [], rulesAdded: [], rulesRemoved: [], rulesChanged: [], rulesReordered: [],
    objectsAdded: [], objectsRemoved: [], objectsChanged: [], elementsAdded: [], elementsRemoved: [],
  };
  for (const [name, d] of Object.entries(desired.chains)) {
    const c = current.chains[name];
    if (!c) {
      out.chainsAdded.push(name);
      for (const r of d.rules) out.rulesAdded.push({ chain: name, ...r });
      continue;
    }
    if (c.props !== d.props) out.chainsChanged.push({ chain: name, from: c.props || 'regular chain', to: d.props || 'regular chain' });
    const cur = new Map(c.rules.map((r) => [r.id, r]));
    const want = new Set(d.rules.map((r) => r.id));
    for (const r of d.rules) {
      const k = cur.get(r.id);
      if (!k) out.rulesAdded.push({ chain: name, ...r });
      else {
        const before = previous?.chains[name]?.rules.find((p) => p.id === r.id)?.text ?? k.text;
        if (before !== r.text) out.rulesChanged.push({ chain: name, id: r.id, from: before, to: r.text });
      }
    }
    for (const r of c.rules) if (!want.has(r.id)) out.rulesRemoved.push({ chain: name, ...r });
    const both = d.rules.map((r) => r.id).filter((id) => cur.has(id));
    const kOrder = c.rules.map((r) => r.id).filter((id) => want.has(id));
    if (both.join('\n') !== kOrder.join('\n')) out.rulesReordered.push(name);
  }
  for (const [name, c] of Object.entries(current.chains)) {
    if (desired.chains[name]) continue;
    out.chainsRemoved.push(name);
    for (const r of c.rules) out.rulesRemoved.push({ chain: name, ...r });
  }
  for (const [key, d] of Object.entries(desired.objects)) {
    const c = current.objects[key];
    if (!c) {
      out.objectsAdded.push(key);
      if (d.elements.length) out.elementsAdded.push({ object: key, elements: d.elements });
      continue;
    }
    const before = previous?.objects[key]?.props ?? c.props;
    if (before !== d.props) out.objectsChanged.push({ object: key, from: before, to: d.props });
    const cur = new Set(c.elements);
    const want = new Set(d.elements);
    const add = d.elements.filter((e) => !cur.has(e));
    const del = c.elements.filter((e) => !want.has(e));
    if (add.length) out.elementsAdded.push({ object: key, elements: add });
    if (del.length) out.elementsRemoved.push({ object: key, elements: del });
  }
  for (const key of Object.keys(current.objects)) if (!desired.objects[key]) out.objectsRemoved.push(key);
  return out;
}
