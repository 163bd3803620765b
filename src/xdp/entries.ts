/**
 * Blocklist entries: validation, canonical text, and the byte layout of the
 * BPF map keys and values (pure functions, no I/O).
 *
 * An entry is an IPv4/IPv6 address or a CIDR prefix. A prefix whose host bits
 * are set (`198.18.1.5/24`) is refused with a hint naming the network
 * (`198.18.1.0/24`): silently widening a typo to a whole network is the worse
 * surprise for a blocklist. `/32` and `/128` are the same as the bare address.
 * @module
 */
import { ValidationError, type ValidationIssue } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { bytesToBigInt, ipv4Text, ipv6Bytes, ipv6Text, maskBytes, parsePrefix, prefixContains } from '../net/ip.js';

/** A validated blocklist entry. */
export interface BlockEntry {
  family: 4 | 6;
  /** Network address, 4 or 16 bytes, network byte order. */
  bytes: Buffer;
  /** Prefix length (32 / 128 for a single address). */
  len: number;
  /** Canonical text: `198.18.0.1`, `198.18.0.0/15`, `fd00::1`, `fd00::/8`. */
  text: string;
}

export { ipv4Bytes, ipv6Bytes, ipv4Text, ipv6Text, maskBytes } from '../net/ip.js';

/** Canonical text for an address/prefix. */
export function entryText(family: 4 | 6, bytes: Uint8Array, len: number): string {
  const a = family === 4 ? ipv4Text(bytes) : ipv6Text(bytes);
  return len === (family === 4 ? 32 : 128) ? a : `${a}/${len}`;
}

/** Parse one entry; Err with the reason when invalid. */
export function parseEntry(input: unknown): Result<BlockEntry, string> {
  if (typeof input !== 'string') return Err('must be a string');
  const p = parsePrefix(input.trim());
  if (!p) return Err('must be an IPv4/IPv6 address or CIDR prefix (e.g. 198.18.0.1, 198.18.0.0/15, fd00::/8)');
  if (p.family === 4) {
    // fast path (bulk loads of a million entries): integer arithmetic, pooled buffers
    const d = p.address.split('.');
    const n = ((Number(d[0]) << 24) | (Number(d[1]) << 16) | (Number(d[2]) << 8) | Number(d[3])) >>> 0;
    const mask = p.len === 0 ? 0 : (0xffffffff << (32 - p.len)) >>> 0;
    const bytes = Buffer.allocUnsafe(4);
    if ((n & mask) >>> 0 !== n) {
      bytes.writeUInt32BE((n & mask) >>> 0, 0);
      return Err(`prefix has host bits set; did you mean ${entryText(4, bytes, p.len)}?`);
    }
    bytes.writeUInt32BE(n, 0);
    return Ok({ family: 4, bytes, len: p.len, text: p.len === 32 ? p.address : `${p.address}/${p.len}` });
  }
  const bytes = ipv6Bytes(p.address);
  const masked = maskBytes(bytes, p.len);
  if (!masked.equals(bytes)) {
    return Err(`prefix has host bits set; did you mean ${entryText(p.family, masked, p.len)}?`);
  }
  return Ok({ family: p.family, bytes, len: p.len, text: entryText(p.family, bytes, p.len) });
}

/**
 * Validate a list of entries. Every bad entry is reported with its index and
 * reason; when any is bad, none is returned (the caller applies nothing).
 * Duplicates are removed (first occurrence kept) unless `dedupe` is false
 * (the BPF maps absorb duplicates by themselves; skipping the check saves
 * time on million-entry loads).
 */
export function parseEntries(input: unknown, what = 'blocklist entries', options: { dedupe?: boolean } = {}): Result<BlockEntry[], ValidationError> {
  const dedupe = options.dedupe ?? true;
  const list = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(list)) return Err(new ValidationError(what, [{ path: '', message: 'must be an array of addresses or prefixes' }]));
  const issues: ValidationIssue[] = [];
  const out: BlockEntry[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const r = parseEntry(list[i]);
    if (r.err) {
      if (issues.length < 100) issues.push({ path: String(i), message: `${typeof list[i] === 'string' ? JSON.stringify(list[i]).slice(0, 80) : `(a ${typeof list[i]})`}: ${r.val}` });
      continue;
    }
    if (dedupe) {
      if (seen.has(r.val.text)) continue;
      seen.add(r.val.text);
    }
    out.push(r.val);
  }
  if (issues.length) return Err(new ValidationError(what, issues));
  return Ok(out);
}

/** Which of the four lists an entry belongs in. */
export type ListKind = 'v4' | 'v6' | 'p4' | 'p6';

/** The list for an entry: exact-match hash for single addresses, LPM trie for prefixes. */
export function listKind(e: BlockEntry): ListKind {
  if (e.family === 4) return e.len === 32 ? 'v4' : 'p4';
  return e.len === 128 ? 'v6' : 'p6';
}

/** Key size in bytes of each list's map. */
export const KEY_SIZE: Record<ListKind, number> = { v4: 4, v6: 16, p4: 8, p6: 20 };
/** Value size of every entry (struct nf_val). */
export const VALUE_SIZE = 24;

/** Write the map key of `e` at `off` in `buf`. */
export function writeKey(kind: ListKind, e: BlockEntry, buf: Buffer, off: number): void {
  if (kind === 'v4' || kind === 'v6') {
    e.bytes.copy(buf, off);
  } else {
    buf.writeUInt32LE(e.len, off);
    e.bytes.copy(buf, off + 4);
  }
}

/** Decode a map key back to an entry. */
export function readKey(kind: ListKind, buf: Buffer, off: number): BlockEntry {
  const family: 4 | 6 = kind === 'v4' || kind === 'p4' ? 4 : 6;
  const n = family === 4 ? 4 : 16;
  if (kind === 'v4' || kind === 'v6') {
    const bytes = Buffer.from(buf.subarray(off, off + n));
    return { family, bytes, len: n * 8, text: entryText(family, bytes, n * 8) };
  }
  const len = buf.readUInt32LE(off);
  const bytes = Buffer.from(buf.subarray(off + 4, off + 4 + n));
  return { family, bytes, len, text: entryText(family, bytes, len) };
}

/** struct nf_val as written by userspace. */
export interface EntryValue {
  /** CLOCK_BOOTTIME deadline in ns, 0n = never. */
  expiresNs: bigint;
  hits: bigint;
  len: number;
}

/** Write struct nf_val at `off`. */
export function writeValue(v: EntryValue, buf: Buffer, off: number): void {
  buf.writeBigUInt64LE(v.expiresNs, off);
  buf.writeBigUInt64LE(v.hits, off + 8);
  buf.writeUInt32LE(v.len, off + 16);
  buf.writeUInt32LE(0, off + 20);
}

/** Read struct nf_val at `off`. */
export function readValue(buf: Buffer, off: number): EntryValue {
  return { expiresNs: buf.readBigUInt64LE(off), hits: buf.readBigUInt64LE(off + 8), len: buf.readUInt32LE(off + 16) };
}

/** Whether `addr` (an address entry) falls inside prefix entry `p`. */
export function covers(p: BlockEntry, addr: BlockEntry): boolean {
  return p.family === addr.family && prefixContains(p.bytes, p.len, addr.bytes);
}

/**
 * Prefixes of the list that lie inside another listed prefix of the same
 * family. The XDP backend's LPM tries hold nested prefixes; the nftables
 * fallback's interval sets do not (nft: "conflicting intervals specified"),
 * so the fallback refuses them up front, naming each entry. O(n log n).
 */
export function nestedPrefixIssues(entries: readonly BlockEntry[]): ValidationIssue[] {
  const iv: { lo: bigint; hi: bigint; i: number; text: string }[] = [];
  entries.forEach((e, i) => {
    const bits = e.family === 4 ? 32 : 128;
    if (e.len === bits) return; // single addresses live in the v4/v6 sets, not in the interval sets
    const n = bytesToBigInt(e.bytes);
    const host = BigInt(bits - e.len);
    iv.push({ lo: (BigInt(e.family) << 128n) | n, hi: (BigInt(e.family) << 128n) | (n + (1n << host) - 1n), i, text: e.text });
  });
  iv.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : a.hi > b.hi ? -1 : a.hi < b.hi ? 1 : 0));
  const issues: ValidationIssue[] = [];
  let outer = iv[0];
  for (let k = 1; k < iv.length && issues.length < 100; k++) {
    const cur = iv[k]!;
    if (outer && cur.lo <= outer.hi) issues.push({ path: String(cur.i), message: `${cur.text} lies inside ${outer.text}: the nftables fallback cannot hold nested prefixes (list only the wider one)` });
    else outer = cur;
  }
  return issues;
}

