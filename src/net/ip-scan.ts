/**
 * Plain IPv4 and IPv6 addresses recognised by a character scan (issue 14):
 * much cheaper than Node's `net.isIPv4`/`isIPv6` regular expressions for the
 * common forms, and never accepting what those refuse (a unit test fuzzes
 * both against them). Anything else is left to the general check.
 * @module
 */

const DOT = 46;
const COLON = 58;

/** Value of a hex digit's char code, or -1. */
function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * `s` is a dotted-quad IPv4 address as `net.isIPv4` accepts it (four decimal
 * numbers 0–255 without leading zeros). False means "not by this fast path".
 */
export function isPlainIPv4(s: string): boolean {
  const n = s.length;
  if (n < 7 || n > 15) return false;
  let parts = 0;
  let i = 0;
  while (i < n) {
    const start = i;
    let v = 0;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || v > 255 || (len > 1 && s.charCodeAt(start) === 48)) return false;
    parts++;
    if (i === n) break;
    if (s.charCodeAt(i) !== DOT || parts === 4) return false;
    i++;
    if (i === n) return false;
  }
  return parts === 4;
}

/**
 * `s` is an IPv6 address made of hex groups only: eight groups of 1–4 hex
 * digits, or fewer with one `::` standing for at least one zero group (no
 * embedded IPv4, no zone). Every such string is accepted by `net.isIPv6`;
 * false means "not by this fast path".
 */
export function isPlainIPv6(s: string): boolean {
  const n = s.length;
  if (n < 2 || n > 39) return false;
  let groups = 0;
  let gap = false;
  let i = 0;
  if (s.charCodeAt(0) === COLON) {
    if (s.charCodeAt(1) !== COLON) return false;
    gap = true;
    i = 2;
    if (i === n) return true; // "::"
  }
  while (i < n) {
    let len = 0;
    while (i < n && hexVal(s.charCodeAt(i)) >= 0) {
      i++;
      len++;
    }
    if (len === 0 || len > 4) return false;
    groups++;
    if (i === n) break;
    if (s.charCodeAt(i) !== COLON) return false;
    i++;
    if (i === n) return false; // trailing single colon
    if (s.charCodeAt(i) === COLON) {
      if (gap) return false;
      gap = true;
      i++;
      if (i === n) break; // trailing "::"
    }
  }
  return gap ? groups <= 7 : groups === 8;
}

