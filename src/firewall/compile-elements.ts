/**
 * Fast paths for the elements of big sets (issue 14): a plain IPv4 or IPv6
 * address is recognised by a character scan instead of Node's regular
 * expressions, and the element inputs of `set()` are checked without
 * building zod's copy. Each fast path accepts only a subset of what the
 * general path accepts, with the same result; anything else falls back to the
 * general path (zod, `parsePrefix`), so errors and unusual forms are handled
 * exactly as before. Pure functions, no I/O.
 * @module
 */
import type { Expression } from '../nft/schema/index.js';

import { isPlainIPv4, isPlainIPv6 } from '../net/ip-scan.js';

export { isPlainIPv4, isPlainIPv6 };

/**
 * The element expression of a plain address element (`v` exactly as nft
 * gets it) for a set of `type`, or undefined when `v` is not a plain address
 * of that family (the caller then takes the general path).
 */
export function plainAddressElement(type: string, v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  if (type === 'ipv4_addr') return isPlainIPv4(v) ? v : undefined;
  if (type === 'ipv6_addr') return isPlainIPv6(v) ? v : undefined;
  return undefined;
}

/** A plain element part of `type`: an address (see {@link plainAddressElement}) or a port number. */
function plainValue(type: string, v: unknown): string | number | undefined {
  if (type === 'inet_service') return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535 ? v : undefined;
  return plainAddressElement(type, v);
}

/**
 * The element expression of a plain element of a set of `type` — an
 * address, a port, or a concatenation of those — exactly as the general path
 * (`elementExpr`) builds it, or undefined for any other element.
 */
export function plainElement(type: string | readonly string[], e: unknown): Expression | undefined {
  if (typeof type === 'string') return plainValue(type, e);
  if (!Array.isArray(e) || e.length !== type.length) return undefined;
  const parts: (string | number)[] = new Array<string | number>(e.length);
  for (let i = 0; i < e.length; i++) {
    const p = plainValue(type[i] as string, e[i]);
    if (p === undefined) return undefined;
    parts[i] = p;
  }
  return { concat: parts };
}

const plainV4 = (e: unknown): string | undefined => (typeof e === 'string' && isPlainIPv4(e) ? e : undefined);
const plainV6 = (e: unknown): string | undefined => (typeof e === 'string' && isPlainIPv6(e) ? e : undefined);

/** {@link plainElement} for one set type, as a function (specialised for address sets, the big ones). */
export function plainElementOf(type: string | readonly string[]): (e: unknown) => Expression | undefined {
  if (type === 'ipv4_addr') return plainV4;
  if (type === 'ipv6_addr') return plainV6;
  return (e) => plainElement(type, e);
}

/** A string or non-negative safe integer element part as `SetSpec`'s zod schema accepts it. */
function plainPart(v: unknown): boolean {
  return typeof v === 'string' ? v.length <= 100 : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The elements of a `set()` call checked the way `SetSpec`'s
 * `z.array(SetElement)` checks them, for the plain forms only: strings of at
 * most 100 characters, non-negative integers, and concatenations (arrays of
 * two or more of those, copied so that the caller's later changes do not
 * reach the builder). Returns undefined when an element is of another form
 * (objects with a timeout, anything invalid): the caller then parses the list
 * with zod, which also names the bad element.
 */
export function plainElements(elements: unknown): unknown[] | undefined {
  if (!Array.isArray(elements)) return undefined;
  const n = elements.length;
  let copied: unknown[] | undefined;
  for (let i = 0; i < n; i++) {
    const e: unknown = elements[i];
    if (plainPart(e)) continue;
    if (!Array.isArray(e) || e.length < 2 || !e.every(plainPart)) return undefined;
    copied ??= elements.slice(0, n);
    copied[i] = e.slice();
  }
  return copied ?? elements.slice(0, n);
}

/**
 * Key of an element in a set's element index: the element itself for a
 * number or a string (no new string), `\u0001` + JSON for concatenations
 * and elements with properties. A string that itself starts with `\u0001` is
 * keyed `\u0001` + its JSON text (`\u0001"…`), which no JSON array or object
 * (`\u0001[…`, `\u0001{…`) equals, so keys of different elements never collide.
 */
export function elementKey(e: unknown): unknown {
  if (typeof e === 'number') return e;
  if (typeof e === 'string') return e.charCodeAt(0) === 1 ? `\u0001${JSON.stringify(e)}` : e;
  return `\u0001${JSON.stringify(e)}`;
}

/** FNV-1a over a string's UTF-16 code units, continuing from `h`. */
function hashString(s: string, h: number): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h;
}

/** A hash consistent with {@link sameElement} (and so with {@link elementKey}). */
function hashElement(e: unknown): number {
  if (typeof e === 'string') return hashString(e, 2166136261);
  if (typeof e === 'number') return e === 0 ? 0 : hashString(String(e), 0x9e3779b9);
  if (Array.isArray(e)) {
    let h = 0x85ebca6b;
    for (const p of e) h = Math.imul(h ^ hashElement(p), 0xc2b2ae35);
    return h;
  }
  return hashString(String(elementKey(e)), 0x27d4eb2f);
}

/** Whether two elements have the same {@link elementKey} (parts of concatenations are strings or numbers). */
function sameElement(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const aa = Array.isArray(a);
  if (aa !== Array.isArray(b)) return false;
  if (aa) {
    const x = a as unknown[];
    const y = b as unknown[];
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  return elementKey(a) === elementKey(b);
}

/**
 * `elements` without repeats (the first of equal elements is kept, in
 * order); the same array when nothing repeats. An open-addressing table of
 * indices (4–8 bytes per element, dropped at return) instead of a Map of
 * keys, so a million elements cost no per-element objects or strings.
 */
export function uniqueElements(elements: readonly unknown[]): readonly unknown[] {
  const n = elements.length;
  if (n < 2) return elements;
  let cap = 16;
  while (cap < n * 2) cap *= 2;
  const mask = cap - 1;
  const table = new Int32Array(cap); // index + 1 of the element in `out`; 0: free
  let out: unknown[] | undefined;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const e = elements[i];
    let h: number;
    if (typeof e === 'string') {
      h = 2166136261; // hashString, inlined for the common case
      for (let k = 0; k < e.length; k++) h = Math.imul(h ^ e.charCodeAt(k), 16777619);
      h &= mask;
    } else h = hashElement(e) & mask;
    let dup = false;
    for (let slot = table[h] as number; slot !== 0; slot = table[h] as number) {
      if (sameElement((out ?? elements)[slot - 1], e)) {
        dup = true;
        break;
      }
      h = (h + 1) & mask;
    }
    if (dup) {
      out ??= elements.slice(0, i);
      continue;
    }
    if (out) out.push(e);
    count++;
    table[h] = count;
  }
  return out ?? elements;
}

/**
 * The elements of one declared set: a list in declaration order without
 * repeats, and — only once a live change edits it (`set`/`delete`, as a
 * `Map` keyed by {@link elementKey}) — an index. A million elements cost one
 * array until then.
 */
export class ElementList {
  private list: readonly unknown[] | undefined;
  private map: Map<unknown, unknown> | undefined;

  /** `elements` is taken over (not copied): pass an array nobody else changes. */
  constructor(elements: readonly unknown[]) {
    this.list = uniqueElements(elements);
  }

  private index(): Map<unknown, unknown> {
    if (!this.map) {
      const m = new Map<unknown, unknown>();
      for (const e of this.list ?? []) m.set(elementKey(e), e);
      this.map = m;
      this.list = undefined;
    }
    return this.map;
  }

  /** Add or replace the element under `key` (its {@link elementKey}). */
  set(key: unknown, element: unknown): this {
    this.index().set(key, element);
    return this;
  }

  /** Remove the element under `key`; whether it was there. */
  delete(key: unknown): boolean {
    return this.index().delete(key);
  }

  /** Whether an element has this key. */
  has(key: unknown): boolean {
    return this.index().has(key);
  }

  /** Number of elements. */
  get size(): number {
    return this.map ? this.map.size : (this.list?.length ?? 0);
  }

  /** The elements in order. */
  values(): IterableIterator<unknown> {
    return this.map ? this.map.values() : (this.list ?? []).values();
  }

  /** The elements in order, as an array that must not be changed (no copy while no live change happened). */
  toArray(): readonly unknown[] {
    return this.map ? [...this.map.values()] : (this.list ?? []);
  }
}
