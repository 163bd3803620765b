/**
 * A strict, bounded bencode parser for classifying packets: it never throws,
 * never reads past the given end, and limits depth and item count so hostile
 * input costs little.
 * @module
 */

/** A decoded bencode value: integer, byte string, list, or dictionary (keys as latin1 text). */
export type BValue = number | Uint8Array | BValue[] | BDict;

/** A bencoded dictionary. */
export interface BDict {
  readonly kind: 'dict';
  /** Entries in wire order; keys decoded as latin1. */
  readonly entries: Map<string, BValue>;
}

/** Outcome of {@link parseBencode}. */
export interface BParse {
  /** The parsed value. */
  value: BValue;
  /** Offset just after the value. */
  end: number;
}

const MAX_DEPTH = 24;
const MAX_ITEMS = 4096;

/** True when `v` is a dictionary. */
export function isDict(v: BValue | undefined): v is BDict {
  return typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !Array.isArray(v);
}

/** True when `v` is a byte string. */
export function isBytes(v: BValue | undefined): v is Uint8Array {
  return v instanceof Uint8Array;
}

/** Byte string as latin1 text, or undefined when `v` is not a byte string. */
export function bytesText(v: BValue | undefined): string | undefined {
  return v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1') : undefined;
}

/** Hex of a byte string. */
export function hex(v: Uint8Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
}

/**
 * Parse one bencoded value starting at `start`. Returns `undefined` when the
 * bytes are not valid bencode (or are cut off before the value ends).
 */
export function parseBencode(b: Uint8Array, start = 0, end = b.length): BParse | undefined {
  const budget = { items: 0 };
  const r = parseValue(b, start, end, 0, budget);
  return r;
}

function parseValue(b: Uint8Array, p: number, end: number, depth: number, budget: { items: number }): BParse | undefined {
  if (p >= end || depth > MAX_DEPTH || ++budget.items > MAX_ITEMS) return undefined;
  const c = b[p]!;
  if (c === 0x69) {
    // i<digits>e
    let q = p + 1;
    let neg = false;
    if (q < end && b[q] === 0x2d) {
      neg = true;
      q++;
    }
    const digitsStart = q;
    let n = 0;
    while (q < end && b[q]! >= 0x30 && b[q]! <= 0x39) {
      n = n * 10 + (b[q]! - 0x30);
      q++;
      if (q - digitsStart > 20) return undefined;
    }
    if (q === digitsStart || q >= end || b[q] !== 0x65) return undefined;
    if (b[digitsStart] === 0x30 && q - digitsStart > 1) return undefined; // leading zero
    if (neg && n === 0) return undefined; // -0
    return { value: neg ? -n : n, end: q + 1 };
  }
  if (c >= 0x30 && c <= 0x39) return parseString(b, p, end);
  if (c === 0x6c) {
    const list: BValue[] = [];
    let q = p + 1;
    for (;;) {
      if (q >= end) return undefined;
      if (b[q] === 0x65) return { value: list, end: q + 1 };
      const item = parseValue(b, q, end, depth + 1, budget);
      if (!item) return undefined;
      list.push(item.value);
      q = item.end;
    }
  }
  if (c === 0x64) {
    const entries = new Map<string, BValue>();
    let q = p + 1;
    for (;;) {
      if (q >= end) return undefined;
      if (b[q] === 0x65) return { value: { kind: 'dict', entries }, end: q + 1 };
      const k = parseString(b, q, end);
      if (!k) return undefined;
      const v = parseValue(b, k.end, end, depth + 1, budget);
      if (!v) return undefined;
      entries.set(bytesText(k.value)!, v.value);
      q = v.end;
    }
  }
  return undefined;
}

function parseString(b: Uint8Array, p: number, end: number): { value: Uint8Array; end: number } | undefined {
  let q = p;
  let n = 0;
  while (q < end && b[q]! >= 0x30 && b[q]! <= 0x39) {
    n = n * 10 + (b[q]! - 0x30);
    q++;
    if (q - p > 9) return undefined;
  }
  if (q === p || q >= end || b[q] !== 0x3a) return undefined;
  if (b[p] === 0x30 && q - p > 1) return undefined;
  const s = q + 1;
  if (s + n > end) return undefined;
  return { value: b.subarray(s, s + n), end: s + n };
}
