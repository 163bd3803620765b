/**
 * The data model of the fake nftables (src/host/fake-nft.ts): ruleset types,
 * nft's errno texts, and the value helpers shared by the evaluation
 * (fake-nft-eval.ts) and the listings (fake-nft-list.ts).
 * @module
 */
import { addressToBigInt, ipFamily, prefixInterval, type Interval } from '../net/ip.js';

/** {@link FakeNftOptions} with every default filled in (what the evaluation and listings read). */
export interface ResolvedNftOptions {
  version: string;
  destroy: boolean;
  tableComments: boolean;
  validate: boolean;
  now: () => number;
  hasDevice: (name: string) => boolean;
}

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

export const FAMILIES = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);
export const OBJECT_KINDS = new Set(['counter', 'quota', 'ct helper', 'ct timeout', 'ct expectation', 'limit', 'secmark', 'synproxy', 'tunnel', 'flowtable']);
export const VERBS = new Set(['add', 'create', 'insert', 'replace', 'delete', 'destroy', 'list', 'reset', 'flush', 'rename']);
export const STRERROR = { ENOENT: 'No such file or directory', EEXIST: 'File exists', EBUSY: 'Device or resource busy', EOPNOTSUPP: 'Operation not supported', EINVAL: 'Invalid argument' } as const;

export type Errno = keyof typeof STRERROR;
/** A command the model refuses; its message is nft's text without the location. */
export class Refused extends Error {}
/** The kernel's answer for an errno (`Could not process rule: ...`). */
export const kernel = (e: Errno): Refused => new Refused(`Could not process rule: ${STRERROR[e]}`);

export const tableKey = (family: string, name: string): string => `${family} ${name}`;
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const rec = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

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
export function splitItem(item: unknown): { key: unknown; data?: unknown; timeout?: number | undefined } {
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
export function keyInterval(key: unknown): Interval | undefined {
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

export const flagsOf = (spec: Record<string, unknown>): string[] => {
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

/** The items of an `elem` value (one immediate or a list). */
export function itemsOf(elem: unknown): unknown[] {
  return Array.isArray(elem) ? elem : elem === undefined ? [] : [elem];
}

/** Drop the elements whose timeout has passed. */
export function expire(o: ResolvedNftOptions, s: FakeSet): void {
  const now = o.now();
  for (const [k, e] of s.elems) if (e.expiresAt !== undefined && e.expiresAt <= now) s.elems.delete(k);
}
