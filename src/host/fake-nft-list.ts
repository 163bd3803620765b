/**
 * Listings of the fake nftables (src/host/fake-nft.ts) in the shape
 * `nft -j list` prints (nft 1.0.6's order: table, objects, sets and maps,
 * flowtables, chains, rules; rules with handle and comment).
 * @module
 */
import { findTable, needTable } from './fake-nft-eval.js';
import { expire, OBJECT_KINDS, rec, Refused, splitItem, str, type FakeChain, type FakeObject, type FakeRuleset, type FakeSet, type FakeTable, type ResolvedNftOptions } from './fake-nft-model.js';

function tableItem(t: FakeTable): unknown {
  return { table: { family: t.family, name: t.name, handle: t.handle, ...(t.comment !== undefined ? { comment: t.comment } : {}), ...(t.flags !== undefined ? { flags: t.flags } : {}) } };
}
function chainItem(t: FakeTable, c: FakeChain): unknown {
  return { chain: { family: t.family, table: t.name, name: c.name, handle: c.handle, ...c.spec } };
}
function objectItem(t: FakeTable, o: FakeObject): unknown {
  return { [o.kind]: { family: t.family, name: o.name, table: t.name, handle: o.handle, ...o.spec } };
}
function setItem(o: ResolvedNftOptions, t: FakeTable, s: FakeSet, terse: boolean): unknown {
  expire(o, s);
  const { type, map, ...rest } = s.spec;
  const now = o.now();
  const elem = [...s.elems.values()].map((e) => {
    if (e.expiresAt === undefined) return e.item;
    const { key, data } = splitItem(e.item);
    const w = rec(rec(Array.isArray(e.item) ? e.item[0] : e.item).elem);
    const listed = { elem: { ...w, val: key, timeout: typeof w.timeout === 'number' ? w.timeout : s.spec.timeout, expires: Math.max(0, Math.floor((e.expiresAt - now) / 1000)) } };
    return data === undefined ? listed : [listed, data];
  });
  return {
    [s.kind]: {
      family: t.family, name: s.name, table: t.name, type, handle: s.handle, ...(map !== undefined ? { map } : {}), ...rest,
      ...(!terse && elem.length ? { elem } : {}),
    },
  };
}
function ruleItems(t: FakeTable, c: FakeChain): unknown[] {
  return c.rules.map((r) => ({
    rule: {
      family: t.family, table: t.name, chain: c.name, handle: r.handle, ...(r.comment !== undefined ? { comment: r.comment } : {}),
      expr: r.expr.map((s) => (rec(s).counter !== undefined && typeof rec(s).counter !== 'string' ? { counter: { ...r.counter } } : s)),
    },
  }));
}

/** Everything of one table, in nft 1.0.6's order: table, objects, sets and maps, flowtables, chains, rules. */
function tableFull(o: ResolvedNftOptions, t: FakeTable, terse: boolean): unknown[] {
  const objs = [...t.objects.values()].sort((a, b) => a.handle - b.handle);
  return [
    tableItem(t),
    ...objs.filter((o) => o.kind !== 'flowtable').map((o) => objectItem(t, o)),
    ...[...t.sets.values()].sort((a, b) => a.handle - b.handle).map((s) => setItem(o, t, s, terse)),
    ...objs.filter((o) => o.kind === 'flowtable').map((o) => objectItem(t, o)),
    ...[...t.chains.values()].sort((a, b) => a.handle - b.handle).map((c) => chainItem(t, c)),
    ...[...t.chains.values()].sort((a, b) => a.handle - b.handle).flatMap((c) => ruleItems(t, c)),
  ];
}

/** The listing items (no metainfo) of a JSON `list` command body, as `nft -j list` prints them; throws {@link Refused} for a missing object. */
export function listObjects(o: ResolvedNftOptions, rs: FakeRuleset, kind: string, body: Record<string, unknown>, terse: boolean): unknown[] {
  const scope = [...rs.tables.values()]
    .filter((t) => body.family === undefined || t.family === body.family)
    .filter((t) => body.table === undefined || t.name === body.table)
    .sort((a, b) => a.handle - b.handle);
  const notFound = (): never => {
    throw new Refused('No such file or directory');
  };
  if (body.table !== undefined && scope.length === 0) notFound();
  switch (kind) {
    case 'ruleset':
      return scope.flatMap((t) => tableFull(o, t, terse));
    case 'tables':
      return scope.map(tableItem);
    case 'table': {
      const t = findTable(rs, body, 'name');
      return t ? tableFull(o, t, terse) : notFound();
    }
    case 'chains':
      return scope.flatMap((t) => [...t.chains.values()].map((c) => chainItem(t, c)));
    case 'chain': {
      const t = needTable(rs, body);
      const c = t.chains.get(str(body.name) ?? '') ?? notFound();
      return [chainItem(t, c), ...ruleItems(t, c)];
    }
    case 'sets':
    case 'maps':
    case 'meters':
      return scope.flatMap((t) => [...t.sets.values()].filter((s) => s.kind === (kind === 'maps' ? 'map' : 'set')).map((s) => setItem(o, t, s, true)));
    case 'set':
    case 'map':
    case 'meter': {
      const t = findTable(rs, body, 'table') ?? notFound();
      const s = t.sets.get(str(body.name) ?? '');
      return s && (s.kind === kind || kind === 'meter') ? [setItem(o, t, s, terse)] : notFound();
    }
    default: {
      const plural = kind.endsWith('s') && kind !== 'ct helpers' ? kind.slice(0, -1) : kind === 'ct helpers' ? 'ct helper' : kind;
      if (!OBJECT_KINDS.has(plural)) throw new Refused(`Unknown object passed to list command.`);
      if (plural === kind) {
        const t = findTable(rs, body, 'table') ?? notFound();
        const o = t.objects.get(`${kind} ${str(body.name) ?? ''}`) ?? notFound();
        return [objectItem(t, o)];
      }
      return scope.flatMap((t) => [...t.objects.values()].filter((o) => o.kind === plural).sort((a, b) => a.handle - b.handle).map((o) => objectItem(t, o)));
    }
  }
}
