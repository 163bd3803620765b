/**
 * How the fake nftables (src/host/fake-nft.ts) evaluates one command against
 * a ruleset: the kernel's and nft's answers, as measured (see fake-nft.ts).
 * @module
 */
import { canonical, expire, flagsOf, FAMILIES, itemsOf, kernel, keyInterval, OBJECT_KINDS, references, Refused, splitItem, str, tableKey, type FakeRuleset, type FakeSet, type FakeTable, type FakeRule, type ResolvedNftOptions } from './fake-nft-model.js';

function familyOf(body: Record<string, unknown>): string {
  const f = str(body.family);
  if (!f || !FAMILIES.has(f)) throw new Refused(`Unknown family '${String(body.family)}'.`);
  return f;
}

export function findTable(rs: FakeRuleset, body: Record<string, unknown>, tableField: 'table' | 'name'): FakeTable | undefined {
  const family = familyOf(body);
  const name = str(body[tableField]);
  if (tableField === 'name' && name === undefined && typeof body.handle === 'number') {
    return [...rs.tables.values()].find((t) => t.family === family && t.handle === body.handle);
  }
  return name === undefined ? undefined : rs.tables.get(tableKey(family, name));
}

export function needTable(rs: FakeRuleset, body: Record<string, unknown>, tableField: 'table' | 'name' = 'table'): FakeTable {
  const t = findTable(rs, body, tableField);
  if (!t) throw kernel('ENOENT');
  return t;
}

/** Find a named thing in a table by `name` or `handle`. */
function byNameOrHandle<T extends { name: string; handle: number }>(m: Map<string, T>, body: Record<string, unknown>, filter: (x: T) => boolean = () => true): T | undefined {
  const name = str(body.name);
  if (name !== undefined) {
    const x = m.get(name);
    return x && filter(x) ? x : undefined;
  }
  return typeof body.handle === 'number' ? [...m.values()].find((x) => x.handle === body.handle && filter(x)) : undefined;
}

/** Apply one command to `rs` (a copy of the ruleset); throws {@link Refused} as nft refuses it. */
export function applyCommand(o: ResolvedNftOptions, rs: FakeRuleset, verb: string, kind: string, body: Record<string, unknown>): void {
  switch (verb) {
    case 'add':
    case 'create':
      return add(o, rs, kind, body, verb === 'create');
    case 'insert':
    case 'replace':
      if (kind !== 'rule') throw new Refused(`Unknown object passed to ${verb} command.`);
      return addRule(rs, body, verb);
    case 'delete':
    case 'destroy':
      return del(o, rs, kind, body, verb === 'destroy');
    case 'flush':
      return flush(rs, kind, body);
    case 'rename': {
      const t = needTable(rs, body);
      const c = t.chains.get(str(body.name) ?? '');
      const to = str(body.newname) ?? '';
      if (!c) throw kernel('ENOENT');
      if (t.chains.has(to)) throw kernel('EEXIST');
      t.chains.delete(c.name);
      c.name = to;
      t.chains.set(to, c);
      return;
    }
    case 'reset':
      return reset(rs, kind, body);
    default:
      throw new Refused(`Unknown command '${verb}'.`);
  }
}

function add(o: ResolvedNftOptions, rs: FakeRuleset, kind: string, body: Record<string, unknown>, create: boolean): void {
  if (kind === 'table') {
    const family = familyOf(body);
    const name = str(body.name) ?? '';
    const old = rs.tables.get(tableKey(family, name));
    if (old && create) throw kernel('EEXIST');
    const t: FakeTable = old ?? { family, name, handle: rs.nextTableHandle++, nextHandle: 1, chains: new Map(), sets: new Map(), objects: new Map() };
    if (o.tableComments) {
      if (body.comment !== undefined) t.comment = str(body.comment);
      if (body.flags !== undefined) t.flags = body.flags;
    }
    rs.tables.set(tableKey(family, name), t);
    return;
  }
  if (kind === 'rule') return addRule(rs, body, 'add');
  const t = needTable(rs, body);
  const name = str(body.name) ?? '';
  for (const d of kind === 'chain' || kind === 'flowtable' ? [body.dev].flat() : []) if (typeof d === 'string' && !o.hasDevice(d)) throw kernel('ENOENT');
  if (kind === 'chain') {
    const { family: _f, table: _t, name: _n, handle: _h, ...spec } = body;
    const old = t.chains.get(name);
    if (old) {
      if (create) throw kernel('EEXIST');
      for (const k of ['type', 'hook', 'prio', 'dev'] as const) if (spec[k] !== undefined && canonical(spec[k]) !== canonical(old.spec[k])) throw kernel('EOPNOTSUPP');
      if (old.spec.hook === undefined && spec.hook !== undefined) throw kernel('EOPNOTSUPP');
      Object.assign(old.spec, spec);
      return;
    }
    t.chains.set(name, { name, handle: t.nextHandle++, spec, rules: [] });
    return;
  }
  if (kind === 'set' || kind === 'map') {
    const { family: _f, table: _t, name: _n, handle: _h, elem, ...spec } = body;
    let s = t.sets.get(name);
    if (s) {
      if (create) throw kernel('EEXIST');
      if (s.kind !== kind || canonical(s.spec.type) !== canonical(spec.type) || canonical(s.spec.map) !== canonical(spec.map) || canonical(flagsOf(s.spec).sort()) !== canonical(flagsOf(spec).sort())) throw kernel('EEXIST');
    } else {
      if (kind === 'map' && spec.map === undefined) throw new Refused('Map has no data type.');
      s = { kind, name, handle: t.nextHandle++, spec, elems: new Map() };
      t.sets.set(name, s);
    }
    if (elem !== undefined) addElements(o, t, s, elem, false);
    return;
  }
  if (kind === 'element') {
    const s = t.sets.get(name);
    if (!s) throw kernel('ENOENT');
    addElements(o, t, s, body.elem, create);
    return;
  }
  if (OBJECT_KINDS.has(kind)) {
    const key = `${kind} ${name}`;
    const { family: _f, table: _t, name: _n, handle: _h, ...spec } = body;
    const old = t.objects.get(key);
    if (old) {
      if (create) throw kernel('EEXIST');
      if (kind === 'flowtable') Object.assign(old.spec, spec);
      return;
    }
    if (kind === 'counter') spec.packets ??= 0, spec.bytes ??= 0;
    if (kind === 'quota') spec.used ??= 0, spec.inv ??= false;
    if (kind === 'limit') spec.burst ??= spec.rate_unit === undefined || spec.rate_unit === 'packets' ? 5 : 0;
    t.objects.set(key, { kind, name, handle: t.nextHandle++, spec });
    return;
  }
  throw new Refused(`Unknown object passed to add command.`);
}



function addElements(o: ResolvedNftOptions, t: FakeTable, s: FakeSet, elem: unknown, create: boolean): void {
  expire(o, s);
  const interval = flagsOf(s.spec).includes('interval');
  const merge = s.spec['auto-merge'] === true;
  const withTimeout = flagsOf(s.spec).includes('timeout') || typeof s.spec.timeout === 'number';
  for (const item of itemsOf(elem)) {
    const { key, data, timeout } = splitItem(item);
    if (s.kind === 'map' && data === undefined) throw new Refused('Map elements need a value.');
    if (s.kind === 'set' && data !== undefined) throw new Refused('Set elements cannot have a value.');
    if (timeout !== undefined && !withTimeout) throw kernel('EINVAL');
    if (data !== undefined) {
      const refs = references(data);
      for (const c of refs.chains) if (!t.chains.has(c)) throw kernel('ENOENT');
    }
    const k = canonical(key);
    const old = s.elems.get(k);
    if (old) {
      if (create) throw kernel('EEXIST');
      if (s.kind === 'map' && canonical(splitItem(old.item).data) !== canonical(data)) throw kernel('EEXIST');
    } else if (interval && !merge) {
      const iv = keyInterval(key);
      if (iv) {
        for (const other of s.elems.keys()) {
          const ov = keyInterval(JSON.parse(other) as unknown);
          if (ov && iv.lo <= ov.hi && ov.lo <= iv.hi) throw new Refused('interval overlaps with an existing one');
        }
      }
    }
    const ttl = timeout ?? (typeof s.spec.timeout === 'number' ? s.spec.timeout : undefined);
    s.elems.set(k, { item: structuredClone(item), expiresAt: ttl !== undefined ? o.now() + ttl * 1000 : undefined });
  }
}

function addRule(rs: FakeRuleset, body: Record<string, unknown>, verb: 'add' | 'insert' | 'replace'): void {
  const t = needTable(rs, body);
  const c = t.chains.get(str(body.chain) ?? '');
  if (!c) throw kernel('ENOENT');
  const expr = Array.isArray(body.expr) ? body.expr : [];
  checkRefs(t, expr);
  const handle = typeof body.handle === 'number' ? body.handle : undefined;
  const index = typeof body.index === 'number' ? body.index : undefined;
  const rule: FakeRule = { handle: 0, expr, comment: str(body.comment), counter: { packets: 0, bytes: 0 } };
  if (verb === 'replace') {
    const i = c.rules.findIndex((r) => r.handle === handle);
    if (handle === undefined || i < 0) throw kernel('ENOENT');
    c.rules[i] = { ...rule, handle: handle };
    return;
  }
  let at: number;
  if (index !== undefined) {
    if (index >= c.rules.length) throw kernel('ENOENT');
    at = verb === 'insert' ? index : index + 1;
  } else if (verb === 'insert' && handle !== undefined) {
    at = c.rules.findIndex((r) => r.handle === handle);
    if (at < 0) throw kernel('ENOENT');
  } else at = verb === 'insert' ? 0 : c.rules.length;
  rule.handle = t.nextHandle++;
  c.rules.splice(at, 0, rule);
}

function checkRefs(t: FakeTable, expr: unknown): void {
  const refs = references(expr);
  for (const c of refs.chains) if (!t.chains.has(c)) throw kernel('ENOENT');
  for (const s of refs.sets) if (!t.sets.has(s) && !t.objects.has(`flowtable ${s}`)) throw kernel('ENOENT');
  for (const o of refs.objects) if (!t.objects.has(o)) throw kernel('ENOENT');
}

/** Whether anything in `t` other than `except` refers to a chain / set / object. */
function inUse(t: FakeTable, what: 'chains' | 'sets' | 'objects', name: string): boolean {
  for (const c of t.chains.values()) for (const r of c.rules) if (references(r.expr)[what].has(name)) return true;
  if (what === 'chains') for (const s of t.sets.values()) for (const e of s.elems.values()) if (references(splitItem(e.item).data).chains.has(name)) return true;
  return false;
}

function del(o: ResolvedNftOptions, rs: FakeRuleset, kind: string, body: Record<string, unknown>, destroy: boolean): void {
  const missing = (): void => {
    if (!destroy) throw kernel('ENOENT');
  };
  if (kind === 'table') {
    const t = findTable(rs, body, 'name');
    if (!t) return missing();
    rs.tables.delete(tableKey(t.family, t.name));
    return;
  }
  const t = findTable(rs, body, 'table');
  if (!t) return missing();
  if (kind === 'chain') {
    const c = byNameOrHandle(t.chains, body);
    if (!c) return missing();
    if (inUse(t, 'chains', c.name)) throw kernel('EBUSY');
    t.chains.delete(c.name);
    return;
  }
  if (kind === 'rule') {
    const c = t.chains.get(str(body.chain) ?? '');
    const i = c ? c.rules.findIndex((r) => r.handle === body.handle) : -1;
    if (!c || i < 0) return missing();
    c.rules.splice(i, 1);
    return;
  }
  if (kind === 'set' || kind === 'map') {
    const s = byNameOrHandle(t.sets, body);
    if (!s) return missing();
    if (inUse(t, 'sets', s.name)) throw kernel('EBUSY');
    t.sets.delete(s.name);
    return;
  }
  if (kind === 'element') {
    const s = t.sets.get(str(body.name) ?? '');
    if (!s) return missing();
    expire(o, s);
    for (const item of itemsOf(body.elem)) {
      const k = canonical(splitItem(item).key);
      if (!s.elems.delete(k) && !destroy) throw kernel('ENOENT');
    }
    return;
  }
  if (OBJECT_KINDS.has(kind)) {
    const objs = new Map([...t.objects.values()].filter((o) => o.kind === kind).map((o) => [o.name, o]));
    const o = byNameOrHandle(objs, body);
    if (!o) return missing();
    if (kind === 'flowtable' ? inUse(t, 'sets', o.name) : inUse(t, 'objects', `${kind} ${o.name}`)) throw kernel('EBUSY');
    t.objects.delete(`${kind} ${o.name}`);
    return;
  }
  throw new Refused(`Unknown object passed to ${destroy ? 'destroy' : 'delete'} command.`);
}

function flush(rs: FakeRuleset, kind: string, body: Record<string, unknown>): void {
  if (kind === 'ruleset') {
    const family = str(body.family);
    for (const [k, t] of rs.tables) if (family === undefined || t.family === family) rs.tables.delete(k);
    return;
  }
  if (kind === 'table') {
    for (const c of needTable(rs, body, 'name').chains.values()) c.rules = [];
    return;
  }
  const t = needTable(rs, body);
  if (kind === 'chain') {
    const c = t.chains.get(str(body.name) ?? '');
    if (!c) throw kernel('ENOENT');
    c.rules = [];
    return;
  }
  if (kind === 'set' || kind === 'map' || kind === 'meter') {
    const s = t.sets.get(str(body.name) ?? '');
    if (!s) throw kernel('ENOENT');
    s.elems.clear();
    return;
  }
  throw new Refused('Unknown object passed to flush command.');
}

function reset(rs: FakeRuleset, kind: string, body: Record<string, unknown>): void {
  const tables = body.table === undefined && kind.endsWith('s') ? [...rs.tables.values()].filter((t) => body.family === undefined || t.family === body.family) : [needTable(rs, body)];
  for (const t of tables) {
    if (kind === 'rule' || kind === 'rules') {
      for (const c of t.chains.values()) if (body.chain === undefined || c.name === body.chain) for (const r of c.rules) if (body.handle === undefined || r.handle === body.handle) r.counter = { packets: 0, bytes: 0 };
      continue;
    }
    const k = kind.replace(/s$/, '');
    for (const o of t.objects.values()) {
      if (o.kind !== k || (kind === k && o.name !== body.name)) continue;
      if (k === 'counter') Object.assign(o.spec, { packets: 0, bytes: 0 });
      if (k === 'quota') o.spec.used = 0;
    }
  }
}
