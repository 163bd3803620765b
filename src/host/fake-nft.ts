/**
 * An in-memory nftables ruleset (one network namespace) that understands the
 * libnftables JSON commands netfence sends, the way nft and the kernel answer
 * them — the core of `FakeHost` (src/host/fake.ts), in the spirit of
 * knftables' Fake. No root, no kernel.
 *
 * A batch is one transaction: it is parsed first (the tolerant schema of
 * src/nft, unknown statement or expression kinds refused, as nft's parser
 * does: "Parsing command array at index N failed."), then evaluated on a copy
 * of the ruleset; the first failing command aborts the whole batch with nft's
 * error text ("Error: Could not process rule: No such file or directory", ...)
 * and nothing changes. Check mode (`nft -c`) evaluates the same way and
 * commits nothing.
 *
 * Modelled, as measured against nft 1.0.6 / Linux 6.x (see
 * test/unit/fake-nft.test.ts):
 * - add / create / insert / replace / delete / destroy / flush / rename /
 *   reset of tables, chains, rules, sets, maps, elements, flowtables and the
 *   named objects (counter, quota, limit, ct helper, ...);
 * - `create` of an existing object and `add` of an existing map key with
 *   another value: "File exists"; `delete` of a missing object or element:
 *   "No such file or directory"; `destroy` of a missing object: nothing;
 * - handles: tables per namespace, everything else from one counter per
 *   table; `insert` before `handle`/`index` (or first), `add` after `index`
 *   (or last) — JSON `add` ignores `handle`, as nft 1.0.6 and 1.1.x do;
 * - references: a rule needs its chain, its jump/goto targets, its `@sets`
 *   and named objects; deleting a chain, set or object still referenced by a
 *   rule or a map element is "Device or resource busy"; `delete chain` takes
 *   its rules with it;
 * - a base chain keeps its hook/type ("Operation not supported" otherwise),
 *   a set its key type ("File exists" otherwise);
 * - interval sets: elements must not overlap ("interval overlaps with an
 *   existing one") unless `auto-merge`; identical elements are accepted;
 * - element timeouts (from the element or the set) expire on the given clock;
 * - devices of netdev chains and flowtables must exist (`hasDevice`);
 * - nft version differences as options: `destroy` unknown before 1.0.8,
 *   table comments and flags dropped by 1.0.6 ({@link FakeNftOptions}).
 *
 * Not modelled: packets (counters only move when a test sets them), the
 * kernel's datatype checks of values (a port in an address set passes),
 * chain loops and hook-specific statement restrictions, `--echo`.
 * @module
 */
import { findOpaque, parseCommand } from '../nft/parse.js';
import { addressToBigInt, ipFamily, prefixInterval, type Interval } from '../net/ip.js';

/** Versions of nft behaviour the fake can imitate. */
export interface FakeNftOptions {
  /** `metainfo.version` of listings (default `1.1.6`). */
  version?: string | undefined;
  /** Whether the `destroy` command exists (nft >= 1.0.8; default true). */
  destroy?: boolean | undefined;
  /** Whether table comments and flags are kept (nft 1.0.6 drops them; default true). */
  tableComments?: boolean | undefined;
  /** Validate every command with the tolerant schema first (default true). */
  validate?: boolean | undefined;
  /** Clock for element timeouts, in ms (default `Date.now`). */
  now?: (() => number) | undefined;
  /**
   * Whether a network device exists (netdev chains and flowtables name
   * devices; nft fails with "No such file or directory" for a missing one).
   * Default: every device exists. FakeHost passes its namespace's links.
   */
  hasDevice?: ((name: string) => boolean) | undefined;
}

/** The options of nft 1.0.6 (Debian 12's nft): no `destroy`, table comments dropped. */
export const NFT_1_0_6: FakeNftOptions = { version: '1.0.6', destroy: false, tableComments: false };

/** A rule of the model. */
export interface FakeRule {
  handle: number;
  expr: unknown[];
  comment?: string | undefined;
  /** For rules that came as nft text (`nft -f -` without `-j`): the text after the chain name. */
  text?: string | undefined;
  /** Counter values of the rule's anonymous counter statements (tests move them). */
  counter: { packets: number; bytes: number };
}
/** A chain of the model. */
export interface FakeChain {
  name: string;
  handle: number;
  /** type/hook/prio/policy/dev/comment as given. */
  spec: Record<string, unknown>;
  rules: FakeRule[];
}
/** One element of a set or map: its key (canonical JSON), the item as listed, its expiry (ms) if any. */
export interface FakeElement {
  item: unknown;
  expiresAt?: number | undefined;
}
/** A named set or map of the model. */
export interface FakeSet {
  kind: 'set' | 'map';
  name: string;
  handle: number;
  /** Everything but family/table/name/handle/elem. */
  spec: Record<string, unknown>;
  elems: Map<string, FakeElement>;
}
/** A named stateful object (counter, quota, limit, ct helper, ...) or a flowtable. */
export interface FakeObject {
  kind: string;
  name: string;
  handle: number;
  spec: Record<string, unknown>;
}
/** A table of the model. */
export interface FakeTable {
  family: string;
  name: string;
  handle: number;
  comment?: string | undefined;
  flags?: unknown;
  nextHandle: number;
  chains: Map<string, FakeChain>;
  sets: Map<string, FakeSet>;
  /** Named objects and flowtables, keyed `kind name`. */
  objects: Map<string, FakeObject>;
}
/** The ruleset of one namespace. */
export interface FakeRuleset {
  tables: Map<string, FakeTable>;
  nextTableHandle: number;
}

/** What a batch or listing produced: nft's exit code and output. */
export interface NftOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const FAMILIES = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);
const OBJECT_KINDS = new Set(['counter', 'quota', 'ct helper', 'ct timeout', 'ct expectation', 'limit', 'secmark', 'synproxy', 'tunnel', 'flowtable']);
const VERBS = new Set(['add', 'create', 'insert', 'replace', 'delete', 'destroy', 'list', 'reset', 'flush', 'rename']);
const STRERROR = { ENOENT: 'No such file or directory', EEXIST: 'File exists', EBUSY: 'Device or resource busy', EOPNOTSUPP: 'Operation not supported', EINVAL: 'Invalid argument' } as const;

/** A command the model refused; `message` is nft's line without the location prefix. */
export class NftCommandFailure extends Error {
  constructor(
    message: string,
    /** The command's index in the batch. */
    readonly index: number,
    /** Whether nft's parser refused it (then nft says "Parsing command array at index N failed."). */
    readonly parse = false,
  ) {
    super(message);
  }
}

type Errno = keyof typeof STRERROR;
class Refused extends Error {}
const kernel = (e: Errno): Refused => new Refused(`Could not process rule: ${STRERROR[e]}`);

export const tableKey = (family: string, name: string): string => `${family} ${name}`;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const rec = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** Canonical JSON (sorted object keys): equal values give equal strings. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** An element item's key and data: `[key, data]` for map items, `{elem: {val}}` unwrapped. */
function splitItem(item: unknown): { key: unknown; data?: unknown; timeout?: number | undefined } {
  let key = item;
  let data: unknown;
  if (Array.isArray(item) && item.length === 2) [key, data] = item as [unknown, unknown];
  const e = rec(key).elem;
  if (e !== undefined && Object.keys(rec(key)).length === 1) {
    const w = rec(e);
    return { key: w.val, data, timeout: typeof w.timeout === 'number' ? w.timeout : undefined };
  }
  return { key, data };
}

/** The address/number interval an interval-set key covers, when the model understands it. */
function keyInterval(key: unknown): Interval | undefined {
  const one = (v: unknown): bigint | undefined => {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return BigInt(v);
    if (typeof v !== 'string') return undefined;
    const f = ipFamily(v);
    return f ? addressToBigInt(v, f) : undefined;
  };
  const p = rec(key).prefix;
  if (p !== undefined) {
    const addr = str(rec(p).addr);
    const f = addr ? ipFamily(addr) : undefined;
    const len = rec(p).len;
    return addr && f && typeof len === 'number' ? prefixInterval(addressToBigInt(addr, f), len, f) : undefined;
  }
  const r = rec(key).range;
  if (Array.isArray(r) && r.length === 2) {
    const lo = one(r[0]);
    const hi = one(r[1]);
    return lo !== undefined && hi !== undefined ? { lo, hi } : undefined;
  }
  const n = one(key);
  return n === undefined ? undefined : { lo: n, hi: n };
}

const flagsOf = (spec: Record<string, unknown>): string[] => {
  const f = spec.flags;
  return Array.isArray(f) ? f.map(String) : typeof f === 'string' ? [f] : [];
};

/** Every `@name`, jump/goto target and named-object reference in a value (rule expr, map elements). */
export function references(v: unknown, out = { sets: new Set<string>(), chains: new Set<string>(), objects: new Set<string>() }): typeof out {
  if (typeof v === 'string') {
    if (v.startsWith('@')) out.sets.add(v.slice(1));
    return out;
  }
  if (Array.isArray(v)) {
    for (const x of v) references(x, out);
    return out;
  }
  if (!v || typeof v !== 'object') return out;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if ((k === 'jump' || k === 'goto') && typeof rec(x).target === 'string') out.chains.add(rec(x).target as string);
    else if (OBJECT_KINDS.has(k) && k !== 'flowtable' && typeof x === 'string') out.objects.add(`${k} ${x}`);
    references(x, out);
  }
  return out;
}

/**
 * One namespace's nftables: apply JSON batches, check them, list them.
 * The state is public for tests (`tables`), and small setters move counters.
 */
export class FakeNft {
  /** The committed ruleset. */
  state: FakeRuleset = { tables: new Map(), nextTableHandle: 1 };
  readonly options: Required<Omit<FakeNftOptions, 'now' | 'hasDevice'>> & { now: () => number; hasDevice: (name: string) => boolean };

  constructor(options: FakeNftOptions = {}) {
    this.options = {
      version: options.version ?? '1.1.6',
      destroy: options.destroy ?? true,
      tableComments: options.tableComments ?? true,
      validate: options.validate ?? true,
      now: options.now ?? Date.now,
      hasDevice: options.hasDevice ?? (() => true),
    };
  }

  /** The `metainfo` item of listings. */
  metainfo(): { metainfo: Record<string, unknown> } {
    return { metainfo: { version: this.options.version, release_name: this.options.version === '1.0.6' ? 'Lester Gooch #5' : 'Commodore Bullmoose #7', json_schema_version: 1 } };
  }

  /**
   * Run a JSON batch (the items of `{"nftables": [...]}`) as one transaction,
   * or only check it. Returns the listings of any `list` commands (one per
   * command). Throws {@link NftCommandFailure} when a command is refused;
   * then nothing changed.
   */
  transact(items: readonly unknown[], check = false): unknown[][] {
    const commands = this.parse(items);
    const next = structuredClone(this.state);
    const listings: unknown[][] = [];
    commands.forEach(({ verb, kind, body, index }) => {
      try {
        if (verb === 'list') listings.push(listObjects(this, next, kind, body, false));
        else applyCommand(this, next, verb, kind, body);
      } catch (e) {
        if (e instanceof Refused) throw new NftCommandFailure(e.message, index);
        throw e;
      }
    });
    if (!check) this.state = next;
    return listings;
  }

  /** Parse and validate the items of a batch (metainfo skipped, bare objects meaning `add`). */
  private parse(items: readonly unknown[]): { verb: string; kind: string; body: Record<string, unknown>; index: number }[] {
    const out: { verb: string; kind: string; body: Record<string, unknown>; index: number }[] = [];
    items.forEach((item, index) => {
      const fail = (msg: string): never => {
        throw new NftCommandFailure(msg, index, true);
      };
      const o = rec(item);
      const keys = Object.keys(o);
      if (keys.length !== 1) fail('Unknown object passed to add command.');
      let verb = keys[0] as string;
      if (verb === 'metainfo') return;
      let cmd: Record<string, unknown> = o;
      if (!VERBS.has(verb)) {
        cmd = { add: o };
        verb = 'add';
      }
      if (verb === 'destroy' && !this.options.destroy) fail('Unknown object passed to add command.');
      const inner = rec(cmd[verb]);
      const ik = Object.keys(inner);
      if (ik.length !== 1) fail(`Unknown object passed to ${verb} command.`);
      if (this.options.validate) {
        const p = parseCommand(cmd, { mode: 'tolerant' });
        if (p.err) fail(`${p.val.issues[0]?.path ?? ''}: ${p.val.issues[0]?.message ?? 'invalid'}`.replace(/^: /, ''));
        const opaque = p.ok ? findOpaque(p.val) : [];
        if (opaque.length) fail(`Unknown expression type '${opaque[0]!.kind}'.`);
      }
      const kind = ik[0] as string;
      out.push({ verb, kind, body: structuredClone(inner[kind] === null ? {} : rec(inner[kind])), index });
    });
    return out;
  }

  /** Listing items (without metainfo) for a JSON `list` body, e.g. `('table', {family, name})`. */
  list(kind: string, body: Record<string, unknown> | null, terse = false): unknown[] {
    try {
      return listObjects(this, this.state, kind, body ?? {}, terse);
    } catch (e) {
      if (e instanceof Refused) throw new NftCommandFailure(e.message.replace('Could not process rule: ', ''), 0);
      throw e;
    }
  }

  /** A table of the committed state. */
  table(family: string, name: string): FakeTable | undefined {
    return this.state.tables.get(tableKey(family, name));
  }

  /** The rules of a chain (committed state), or undefined when the chain does not exist. */
  rules(family: string, table: string, chain: string): FakeRule[] | undefined {
    return this.table(family, table)?.chains.get(chain)?.rules;
  }

  /** The element items of a set or map (committed state, expired ones dropped). */
  elements(family: string, table: string, set: string): unknown[] | undefined {
    const s = this.table(family, table)?.sets.get(set);
    if (!s) return undefined;
    expire(this, s);
    return [...s.elems.values()].map((e) => e.item);
  }

  /** Set the counter of the rule with `handle` (as if packets had passed). */
  setRuleCounter(family: string, table: string, chain: string, handle: number, counter: { packets: number; bytes: number }): void {
    const r = this.rules(family, table, chain)?.find((x) => x.handle === handle);
    if (!r) throw new Error(`fake nft: no rule ${handle} in ${family} ${table} ${chain}`);
    r.counter = { ...counter };
  }

  /** Set fields of a named object (a counter's packets/bytes, a quota's used). */
  setObject(family: string, table: string, kind: string, name: string, fields: Record<string, unknown>): void {
    const o = this.table(family, table)?.objects.get(`${kind} ${name}`);
    if (!o) throw new Error(`fake nft: no ${kind} ${name} in ${family} ${table}`);
    Object.assign(o.spec, fields);
  }
}

// ---------------------------------------------------------------- evaluation

function familyOf(body: Record<string, unknown>): string {
  const f = str(body.family);
  if (!f || !FAMILIES.has(f)) throw new Refused(`Unknown family '${String(body.family)}'.`);
  return f;
}

function findTable(rs: FakeRuleset, body: Record<string, unknown>, tableField: 'table' | 'name'): FakeTable | undefined {
  const family = familyOf(body);
  const name = str(body[tableField]);
  if (tableField === 'name' && name === undefined && typeof body.handle === 'number') {
    return [...rs.tables.values()].find((t) => t.family === family && t.handle === body.handle);
  }
  return name === undefined ? undefined : rs.tables.get(tableKey(family, name));
}

function needTable(rs: FakeRuleset, body: Record<string, unknown>, tableField: 'table' | 'name' = 'table'): FakeTable {
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

function applyCommand(nft: FakeNft, rs: FakeRuleset, verb: string, kind: string, body: Record<string, unknown>): void {
  switch (verb) {
    case 'add':
    case 'create':
      return add(nft, rs, kind, body, verb === 'create');
    case 'insert':
    case 'replace':
      if (kind !== 'rule') throw new Refused(`Unknown object passed to ${verb} command.`);
      return addRule(rs, body, verb);
    case 'delete':
    case 'destroy':
      return del(nft, rs, kind, body, verb === 'destroy');
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

function add(nft: FakeNft, rs: FakeRuleset, kind: string, body: Record<string, unknown>, create: boolean): void {
  if (kind === 'table') {
    const family = familyOf(body);
    const name = str(body.name) ?? '';
    const old = rs.tables.get(tableKey(family, name));
    if (old && create) throw kernel('EEXIST');
    const t: FakeTable = old ?? { family, name, handle: rs.nextTableHandle++, nextHandle: 1, chains: new Map(), sets: new Map(), objects: new Map() };
    if (nft.options.tableComments) {
      if (body.comment !== undefined) t.comment = str(body.comment);
      if (body.flags !== undefined) t.flags = body.flags;
    }
    rs.tables.set(tableKey(family, name), t);
    return;
  }
  if (kind === 'rule') return addRule(rs, body, 'add');
  const t = needTable(rs, body);
  const name = str(body.name) ?? '';
  for (const d of kind === 'chain' || kind === 'flowtable' ? [body.dev].flat() : []) if (typeof d === 'string' && !nft.options.hasDevice(d)) throw kernel('ENOENT');
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
    if (elem !== undefined) addElements(nft, t, s, elem, false);
    return;
  }
  if (kind === 'element') {
    const s = t.sets.get(name);
    if (!s) throw kernel('ENOENT');
    addElements(nft, t, s, body.elem, create);
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

function itemsOf(elem: unknown): unknown[] {
  return Array.isArray(elem) ? elem : elem === undefined ? [] : [elem];
}

function expire(nft: FakeNft, s: FakeSet): void {
  const now = nft.options.now();
  for (const [k, e] of s.elems) if (e.expiresAt !== undefined && e.expiresAt <= now) s.elems.delete(k);
}

function addElements(nft: FakeNft, t: FakeTable, s: FakeSet, elem: unknown, create: boolean): void {
  expire(nft, s);
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
    s.elems.set(k, { item: structuredClone(item), expiresAt: ttl !== undefined ? nft.options.now() + ttl * 1000 : undefined });
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

function del(nft: FakeNft, rs: FakeRuleset, kind: string, body: Record<string, unknown>, destroy: boolean): void {
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
    expire(nft, s);
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

// ---------------------------------------------------------------- listings

function tableItem(t: FakeTable): unknown {
  return { table: { family: t.family, name: t.name, handle: t.handle, ...(t.comment !== undefined ? { comment: t.comment } : {}), ...(t.flags !== undefined ? { flags: t.flags } : {}) } };
}
function chainItem(t: FakeTable, c: FakeChain): unknown {
  return { chain: { family: t.family, table: t.name, name: c.name, handle: c.handle, ...c.spec } };
}
function objectItem(t: FakeTable, o: FakeObject): unknown {
  return { [o.kind]: { family: t.family, name: o.name, table: t.name, handle: o.handle, ...o.spec } };
}
function setItem(nft: FakeNft, t: FakeTable, s: FakeSet, terse: boolean): unknown {
  expire(nft, s);
  const { type, map, ...rest } = s.spec;
  const now = nft.options.now();
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
function tableFull(nft: FakeNft, t: FakeTable, terse: boolean): unknown[] {
  const objs = [...t.objects.values()].sort((a, b) => a.handle - b.handle);
  return [
    tableItem(t),
    ...objs.filter((o) => o.kind !== 'flowtable').map((o) => objectItem(t, o)),
    ...[...t.sets.values()].sort((a, b) => a.handle - b.handle).map((s) => setItem(nft, t, s, terse)),
    ...objs.filter((o) => o.kind === 'flowtable').map((o) => objectItem(t, o)),
    ...[...t.chains.values()].sort((a, b) => a.handle - b.handle).map((c) => chainItem(t, c)),
    ...[...t.chains.values()].sort((a, b) => a.handle - b.handle).flatMap((c) => ruleItems(t, c)),
  ];
}

function listObjects(nft: FakeNft, rs: FakeRuleset, kind: string, body: Record<string, unknown>, terse: boolean): unknown[] {
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
      return scope.flatMap((t) => tableFull(nft, t, terse));
    case 'tables':
      return scope.map(tableItem);
    case 'table': {
      const t = findTable(rs, body, 'name');
      return t ? tableFull(nft, t, terse) : notFound();
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
      return scope.flatMap((t) => [...t.sets.values()].filter((s) => s.kind === (kind === 'maps' ? 'map' : 'set')).map((s) => setItem(nft, t, s, true)));
    case 'set':
    case 'map':
    case 'meter': {
      const t = findTable(rs, body, 'table') ?? notFound();
      const s = t.sets.get(str(body.name) ?? '');
      return s && (s.kind === kind || kind === 'meter') ? [setItem(nft, t, s, terse)] : notFound();
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
