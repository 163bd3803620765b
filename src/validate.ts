/**
 * Validation of every string that can reach a tool: object names, interface
 * names, comments, namespaces, addresses, ports. Names are restricted to a
 * conservative charset so that quotes, newlines, `;`, `$(...)`, backticks,
 * NUL and non-ASCII can never pass.
 * @module
 */
import { z } from 'zod';
import { ipFamily, parsePrefix } from './net/ip.js';
import { Err, Ok, type Result } from './result.js';
import { fromZodIssues, type ValidationError } from './errors.js';

/** nftables object names (tables, chains, sets, maps, stateful objects). Kernel limit is 255 bytes; we keep 64. */
export const NftName = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'must start with a letter or _ and contain only letters, digits, _ . -');

/** Linux interface names: at most 15 bytes (IFNAMSIZ-1), no '/', whitespace or quotes. */
export const IfName = z
  .string()
  .min(1, 'must not be empty')
  .max(15, 'must be at most 15 characters (IFNAMSIZ)')
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'must contain only letters, digits, _ . - and not start with . or -');

/** Interface name patterns for `iifname`/`oifname` matches: an interface name optionally ending in `*`. */
export const IfNamePattern = z
  .string()
  .min(1, 'must not be empty')
  .max(15, 'must be at most 15 characters (IFNAMSIZ)')
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*\*?$/, 'must be an interface name, optionally ending in *');

/** Network namespace names as created by `ip netns add`. */
export const NetnsName = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'must contain only letters, digits, _ . - and not start with . or -');

/** Comments attached to nft objects (kernel userdata comment limit is 128 bytes). */
export const Comment = z
  .string()
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9 _.,:/@+=#()[\]-]*$/, 'may contain only letters, digits, spaces and _ . , : / @ + = # ( ) [ ] -');

/**
 * A file-system path or `file:` URL given by the caller (BPF object, classifier
 * module): printable ASCII without quotes, `;`, `$`, backticks or control
 * characters, no `..` segment, not starting with `-` (never read as an option).
 */
export const SafePath = z
  .string()
  .min(1, 'must not be empty')
  .max(4096, 'must be at most 4096 characters')
  .regex(/^[A-Za-z0-9 _./@+=:,~%-]+$/, 'may contain only letters, digits, spaces and _ . / @ + = : , ~ % -')
  .refine((s) => s.trim() === s, 'must not start or end with whitespace')
  .refine((s) => !s.startsWith('-'), 'must not start with - (it would read as an option)')
  .refine((s) => !/(^|\/)\.\.(\/|$)/.test(s), 'must not contain .. segments');

/** A TCP/UDP port. */
export const Port = z.number().int('must be an integer').min(0, 'must be >= 0').max(65535, 'must be <= 65535');

/** A single IPv4 address in dotted-quad form. */
export const Ipv4Address = z.string().refine((s) => ipFamily(s) === 4, 'must be an IPv4 address');
/** A single IPv6 address. */
export const Ipv6Address = z.string().refine((s) => ipFamily(s) === 6, 'must be an IPv6 address (no zone id)');
/** An IPv4 or IPv6 address. */
export const IpAddress = z.string().refine((s) => ipFamily(s) !== undefined, 'must be an IPv4 or IPv6 address');

export { parsePrefix, type ParsedPrefix } from './net/ip.js';

/** An IPv4/IPv6 address or CIDR prefix. */
export const IpPrefix = z.string().refine((s) => parsePrefix(s) !== undefined, 'must be an IPv4/IPv6 address or CIDR prefix (e.g. 198.18.0.0/15, fd00::/8)');

/** Parse `value` with `schema`; on failure return a ValidationError naming each bad field. */
export function validate<S extends z.ZodType>(what: string, schema: S, value: unknown): Result<z.output<S>, ValidationError> {
  const r = schema.safeParse(value);
  if (r.success) return Ok(r.data);
  return Err(fromZodIssues(what, r.error.issues));
}
