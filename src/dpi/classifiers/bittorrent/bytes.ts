/**
 * Small byte helpers shared by the BitTorrent detectors.
 * @module
 */

/** Big-endian 16-bit read. */
export function u16(b: Uint8Array, o: number): number {
  return ((b[o]! << 8) | b[o + 1]!) >>> 0;
}

/** Big-endian 32-bit read. */
export function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** True when `b` holds the ASCII text `s` at offset `o`. */
export function hasAscii(b: Uint8Array, o: number, s: string): boolean {
  if (o < 0 || o + s.length > b.length) return false;
  for (let i = 0; i < s.length; i++) if (b[o + i] !== s.charCodeAt(i)) return false;
  return true;
}

/**
 * Compare a prefix: 'yes' when `b` starts with `s` at `o`, 'partial' when `b`
 * ends before `s` does but agrees so far, 'no' otherwise.
 */
export function prefixMatch(b: Uint8Array, o: number, s: string): 'yes' | 'partial' | 'no' {
  const n = Math.min(s.length, b.length - o);
  for (let i = 0; i < n; i++) if (b[o + i] !== s.charCodeAt(i)) return 'no';
  return n === s.length ? 'yes' : 'partial';
}

/** A Buffer view over the same memory (no copy). */
export function view(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Latin1 text of a byte range (for header parsing). */
export function latin1(b: Uint8Array, start = 0, end = b.length): string {
  return view(b).toString('latin1', start, end);
}

/** Lowercase hex of a byte range. */
export function toHex(b: Uint8Array, start = 0, end = b.length): string {
  return view(b).toString('hex', start, end);
}

/** Printable rendering of a peer id or similar token: ASCII kept, other bytes as %XX. */
export function printable(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x25 ? String.fromCharCode(c) : `%${c.toString(16).padStart(2, '0')}`;
  return s;
}
