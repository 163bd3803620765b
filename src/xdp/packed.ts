/**
 * Bulk entries packed as the maps' keys: one pass over the input validates
 * every entry and writes its key straight into one Buffer per list (v4, v6,
 * p4, p6), without an object per entry — what makes `add()` of a million
 * addresses cost tens of milliseconds before the bpf(2) batches.
 *
 * IPv4 addresses and prefixes take a scanner that accepts exactly what
 * {@link parseEntry} accepts for them (dotted quads without leading zeros,
 * `/0`–`/32`, no host bits); anything else (IPv6, surrounding blanks, a bad
 * entry) goes through {@link parseEntry}, so the errors are its errors.
 * @module
 */
import { ValidationError, type ValidationIssue } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { listKind, parseEntry, writeKey, type BlockEntry, type ListKind } from './entries.js';

/** The keys of one list: `n` keys of `KEY_SIZE[kind]` bytes at the start of `keys`. */
export interface PackedList {
  keys: Buffer;
  n: number;
}

/** Validated entries as map keys, per list, in input order (duplicates kept: the maps absorb them). */
export interface PackedEntries {
  /** Entries given. */
  count: number;
  lists: Record<ListKind, PackedList>;
}

const LISTS: readonly ListKind[] = ['v4', 'v6', 'p4', 'p6'];

// the scanner's answer (module scratch: no object per entry)
let scannedAddr = 0;
let scannedLen = 0;

/**
 * `a.b.c.d` or `a.b.c.d/n` exactly as parseEntry accepts it (Node's isIPv4:
 * octets 0–255 without leading zeros; 1–3 length digits ≤ 32; host bits
 * clear). Sets scannedAddr/scannedLen; false means "ask parseEntry".
 */
function scanIPv4(s: string): boolean {
  const n = s.length;
  if (n < 7 || n > 18) return false;
  let addr = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return false; // leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return false;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return false;
      addr = addr * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c === 47) break;
    else return false;
  }
  if (digits === 0 || dots !== 3) return false;
  addr = addr * 256 + octet;
  let len = 32;
  if (i < n) {
    const rest = n - i - 1;
    if (rest < 1 || rest > 3) return false;
    len = 0;
    for (let j = i + 1; j < n; j++) {
      const c = s.charCodeAt(j);
      if (c < 48 || c > 57) return false;
      len = len * 10 + (c - 48);
    }
    if (len > 32) return false;
    if (len < 32 && (addr & ~(len === 0 ? 0 : 0xffffffff << (32 - len))) !== 0) return false; // host bits: parseEntry says which network
  }
  scannedAddr = addr;
  scannedLen = len;
  return true;
}

/** Whether `s` is an IPv4 address or prefix that the fast scanner accepts (a valid entry; false proves nothing). */
export function fastIPv4Entry(s: string): boolean {
  return scanIPv4(s);
}

/** A growable key buffer of one list. */
class Keys {
  buf: Buffer;
  n = 0;
  constructor(
    readonly ks: number,
    capacity: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(1, capacity) * ks);
  }
  /** Offset of a new key (grows the buffer when full: read {@link buf} after calling this). */
  next(): number {
    const off = this.n * this.ks;
    if (off + this.ks > this.buf.length) {
      const b = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(b, 0, 0, off);
      this.buf = b;
    }
    this.n++;
    return off;
  }
}

/**
 * Validate `input` (a string or an array of strings) and pack it as map keys.
 * Every bad entry is reported with its index and reason (at most 100); when
 * any is bad, nothing is returned.
 */
export function packEntries(input: unknown, what = 'blocklist entries'): Result<PackedEntries, ValidationError> {
  const list = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(list)) return Err(new ValidationError(what, [{ path: '', message: 'must be an array of addresses or prefixes' }]));
  const total = list.length;
  const k: Record<ListKind, Keys> = { v4: new Keys(4, total), v6: new Keys(16, 16), p4: new Keys(8, 16), p6: new Keys(20, 16) };
  const v4 = k.v4;
  const p4 = k.p4;
  const issues: ValidationIssue[] = [];
  for (let i = 0; i < total; i++) {
    const s: unknown = list[i];
    if (typeof s === 'string' && scanIPv4(s)) {
      if (scannedLen === 32) {
        const off = v4.next(); // before reading .buf: next() may grow it
        v4.buf.writeUInt32BE(scannedAddr, off);
      } else {
        const off = p4.next();
        p4.buf.writeUInt32LE(scannedLen, off);
        p4.buf.writeUInt32BE(scannedAddr, off + 4);
      }
      continue;
    }
    const r = parseEntry(s);
    if (r.err) {
      if (issues.length < 100) issues.push({ path: String(i), message: `${typeof s === 'string' ? JSON.stringify(s).slice(0, 80) : `(a ${typeof s})`}: ${r.val}` });
      continue;
    }
    const kind = listKind(r.val);
    const keys = k[kind];
    const off = keys.next();
    writeKey(kind, r.val, keys.buf, off);
  }
  if (issues.length) return Err(new ValidationError(what, issues));
  return Ok({ count: total, lists: { v4: { keys: v4.buf, n: v4.n }, v6: { keys: k.v6.buf, n: k.v6.n }, p4: { keys: p4.buf, n: p4.n }, p6: { keys: k.p6.buf, n: k.p6.n } } });
}

/** Pack already validated entries (tests, prune, callers holding BlockEntry objects). */
export function packBlockEntries(entries: readonly BlockEntry[]): PackedEntries {
  const k: Record<ListKind, Keys> = { v4: new Keys(4, 16), v6: new Keys(16, 16), p4: new Keys(8, 16), p6: new Keys(20, 16) };
  for (const e of entries) {
    const kind = listKind(e);
    const off = k[kind].next();
    writeKey(kind, e, k[kind].buf, off);
  }
  const lists = Object.fromEntries(LISTS.map((x) => [x, { keys: k[x].buf, n: k[x].n }])) as Record<ListKind, PackedList>;
  return { count: entries.length, lists };
}
