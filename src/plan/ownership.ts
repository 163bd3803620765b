/**
 * Ownership: netfence touches only tables it created. Each table a plan owns
 * carries a marker — a named counter object `netfence_owner_<hash of owner>`
 * whose comment is `netfence:<owner>` — created in the same transaction as the
 * table.
 *
 * Why the owner is in the name: whether a table exists and carries *this*
 * owner's mark can then be asked with one `nft -c` of `create counter` (fails
 * "File exists" → ours; "No such file or directory" → no such table; succeeds
 * → the table exists and is not ours), which costs ~10 ms however big the
 * ruleset is. nft 1.0.6 fills its cache with every set element for any `list`
 * command, even `list tables` (1.5 s with a 200,000-element set, ~40 s with
 * 1,000,000), so listing is kept for snapshots and error messages.
 *
 * Why a counter and not a table comment: nft 1.0.6 (Debian 12) silently drops
 * the `comment` of a table in JSON input and does not print it in JSON
 * listings (table comments in JSON arrived in a later nft). Named counters and
 * their comments round-trip through JSON on every nft 1.0.x–1.1.x, in every
 * table family, and cost one tiny kernel object per table. Where the nft in use
 * keeps table comments in JSON (probed, see nft-features.ts), a table netfence
 * creates also gets the comment `netfence:<owner>`, for people reading
 * `nft list ruleset`; ownership is still decided by the counter alone, so
 * tables created by nft 1.0.6 (without the comment) stay fully usable.
 * @module
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { type CommandError, NetfenceError } from '../errors.js';
import type { NftListing } from '../host/nft.js';
import { currentHost } from '../host/host.js';
import { listingObjects, nftApply, nftList } from '../host/nft.js';
import { Err, Ok, type Result } from '../result.js';
import type { NftBatchFeatures } from './nft-features.js';
import type { Command } from '../nft/schema/commands.js';
import type { TableRef } from './types.js';

/** Prefix of the name of the marker counter object inside every netfence-owned table. */
export const OWNER_MARK = 'netfence_owner';

/** Name of `owner`'s marker counter: `netfence_owner_` + 12 hex digits of SHA-256(owner). */
export function ownerMarkName(owner: string): string {
  return `${OWNER_MARK}_${createHash('sha256').update(owner).digest('hex').slice(0, 12)}`;
}
/** Prefix of the marker's comment; the owner follows it. */
export const OWNER_PREFIX = 'netfence:';

/** A plan owner such as `firewall:web`: letters, digits and `_ . : @ + = / -`, at most 100 characters. */
export const PlanOwner = z
  .string()
  .min(1, 'must not be empty')
  .max(100, 'must be at most 100 characters')
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.:@+=/-]*$/, 'must start with a letter, digit or _ and contain only letters, digits and _ . : @ + = / -')
  .refine((s) => !/(^|\/)\.\.(\/|$)/.test(s), 'must not contain .. segments');

/** Families nftables tables can have. */
export const TableFamily = z.enum(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);

/** A table that exists but was not created by this owner (or by netfence at all). */
export class OwnershipError extends NetfenceError {
  /** The table that was refused. */
  readonly table: TableRef;
  /** The netfence owner recorded in the table, or undefined if it is not a netfence table. */
  readonly ownedBy: string | undefined;
  constructor(table: TableRef, ownedBy: string | undefined, wanted: string | undefined) {
    const name = `${table.family} ${table.name}`;
    const msg = ownedBy === undefined
      ? `table ${name} exists and was not created by netfence; refusing to touch it`
      : `table ${name} belongs to netfence owner "${ownedBy}", not "${wanted ?? '?'}"; refusing to touch it`;
    super('NOT_OWNED', msg, {
      hint: ownedBy === undefined
        ? 'choose another table name: netfence never modifies tables of other programs (iptables-nft, firewalld, hand-written rules)'
        : `use owner "${ownedBy}" or another table name`,
    });
    this.table = table;
    this.ownedBy = ownedBy;
  }
}

/** `inet x` — a stable key for a table reference. */
export function tableKey(ref: TableRef): string {
  return `${ref.family} ${ref.name}`;
}

/** The comment an owned table carries where the nft in use keeps table comments: `netfence:<owner>`. */
export function ownerComment(owner: string): string {
  return `${OWNER_PREFIX}${owner}`;
}

/**
 * The `add table` command for a table netfence owns. Apply it together with
 * {@link ownerMarkCommand} (the executor adds both for every table of a plan,
 * so builders may simply list the table in `plan.tables`). With `owner` and
 * `features.tableComment`, the table also gets the comment `netfence:<owner>`
 * (the kernel keeps the comment a table was created with; adding it to an
 * existing table changes nothing).
 */
export function ownedTable(ref: TableRef, owner?: string, features: NftBatchFeatures = {}): { add: { table: { family: TableRef['family']; name: string; comment?: string } } } {
  const comment = owner !== undefined && features.tableComment ? { comment: ownerComment(owner) } : {};
  return { add: { table: { family: ref.family, name: ref.name, ...comment } } };
}

/** The `add counter` command creating the ownership marker in `ref` for `owner`. */
export function ownerMarkCommand(ref: TableRef, owner: string): { add: { counter: { family: TableRef['family']; table: string; name: string; comment: string } } } {
  return { add: { counter: { family: ref.family, table: ref.name, name: ownerMarkName(owner), comment: ownerComment(owner) } } };
}

/** Both commands that create an owned, marked table (idempotent: `add` of an existing object is a no-op). */
export function ownershipCommands(ref: TableRef, owner: string, features: NftBatchFeatures = {}): Command[] {
  return [ownedTable(ref, owner, features), ownerMarkCommand(ref, owner)];
}

/**
 * The netfence owner recorded in a listing (of a table, of its marker counter
 * or of all counters), or undefined if there is no marker. With `ref`, only a
 * marker inside that table counts.
 */
export function ownerOf(listing: NftListing | readonly unknown[], ref?: TableRef): string | undefined {
  const l: NftListing = Array.isArray(listing) ? { nftables: [...listing] } : (listing as NftListing);
  for (const { kind, value } of listingObjects(l)) {
    if (kind !== 'counter' || typeof value.name !== 'string' || !value.name.startsWith(`${OWNER_MARK}_`)) continue;
    if (ref && (value.table !== ref.name || value.family !== ref.family)) continue;
    const c = value.comment;
    if (typeof c !== 'string' || !c.startsWith(OWNER_PREFIX)) continue;
    const owner = c.slice(OWNER_PREFIX.length);
    // name and comment must agree, or it is not a mark netfence made
    if (value.name === ownerMarkName(owner)) return owner;
  }
  return undefined;
}

/**
 * Whether a listing shows a netfence-owned table (owned by `owner` when given).
 * `listing` is what `nftList(['table', family, name])` returns, or its `nftables` array.
 */
export function isOwned(listing: NftListing | readonly unknown[], owner?: string, ref?: TableRef): boolean {
  const o = ownerOf(listing, ref);
  return o !== undefined && (owner === undefined || o === owner);
}

/** Verbs a plan may use; `list` and anything on the whole ruleset are refused. */
const VERBS = new Set(['add', 'create', 'insert', 'replace', 'delete', 'destroy', 'flush', 'reset', 'rename']);

/** What one nft command targets: its verb, object kind and table. */
export interface CommandTarget {
  verb: string;
  object: string;
  table: TableRef;
}

/**
 * The table a plan command touches, or a reason why it is refused
 * (whole-ruleset commands, commands without an explicit family and table, `list`).
 */
export function commandTarget(command: unknown): { ok: true; target: CommandTarget } | { ok: false; reason: string } {
  if (!command || typeof command !== 'object' || Array.isArray(command)) return { ok: false, reason: 'must be an object like {"add": {"rule": {...}}}' };
  const verbs = Object.keys(command);
  if (verbs.length !== 1) return { ok: false, reason: `must have exactly one verb key, found ${verbs.length}` };
  const verb = verbs[0] as string;
  if (!VERBS.has(verb)) return { ok: false, reason: `verb "${verb}" is not allowed in a plan (allowed: ${[...VERBS].join(', ')})` };
  const body = (command as Record<string, unknown>)[verb];
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { ok: false, reason: `"${verb}" must hold one object like {"rule": {...}}` };
  const objs = Object.keys(body);
  if (objs.length !== 1) return { ok: false, reason: `"${verb}" must hold exactly one object, found ${objs.length}` };
  const object = objs[0] as string;
  if (object === 'ruleset') return { ok: false, reason: `"${verb} ruleset" would touch every program's tables; netfence never does that` };
  const spec = (body as Record<string, unknown>)[object];
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) return { ok: false, reason: `${verb} ${object}: must name a family and a table` };
  const s = spec as Record<string, unknown>;
  const table = object === 'table' ? s.name : s.table;
  const fam = TableFamily.safeParse(s.family);
  if (!fam.success) return { ok: false, reason: `${verb} ${object}: "family" must be one of ${TableFamily.options.join(', ')}` };
  if (typeof table !== 'string' || table === '') return { ok: false, reason: `${verb} ${object}: must name its table explicitly (${object === 'table' ? '"name"' : '"table"'})` };
  return { ok: true, target: { verb, object, table: { family: fam.data, name: table } } };
}

/** What {@link probeOwnership} found for one table. */
export type TableOwnership = 'absent' | 'owned' | 'not-owned';

/**
 * Does `ref` exist, and does it carry `owner`'s mark? On the real host the
 * kernel is asked over netlink whether the mark counter exists (and, when it
 * does not, whether the table does): about 0.1 ms, no process. Elsewhere
 * (a FakeHost, or netlink unusable) one `nft -c` of
 * `create counter <mark>` (nothing is committed): "File exists" means the
 * table exists with our mark; "No such file or directory" means there is no
 * such table; success means the table exists without our mark. About 10 ms,
 * independent of the size of the ruleset (unlike any `nft list` on nft 1.0.x).
 */
export async function probeOwnership(ref: TableRef, owner: string, netns?: string): Promise<Result<TableOwnership, CommandError>> {
  const host = currentHost();
  if (host.nft.probeObject) {
    // The kernel asked directly (netlink, no nft process): same three answers, ~0.1 ms.
    const p = await host.nft.probeObject(ref.family, ref.name, 'counter', ownerMarkName(owner), { netns });
    if (p.ok) return Ok(p.val === 'present' ? 'owned' : p.val === 'no-table' ? 'absent' : 'not-owned');
    // a kernel or namespace that netlink cannot reach: ask nft as before
  }
  const r = await nftApply([{ create: { counter: { family: ref.family, table: ref.name, name: ownerMarkName(owner) } } }], {
    netns,
    check: true,
    noLocalize: true,
    what: `ownership probe of table ${tableKey(ref)}`,
  });
  if (r.ok) return Ok('not-owned');
  const said = r.val.failure.stderr;
  if (/File exists/.test(said)) return Ok('owned');
  if (/No such file or directory/.test(said)) return Ok('absent');
  return Err(r.val);
}

/**
 * For error messages only: the netfence owner recorded in a table that is not
 * ours, or undefined (a foreign table, or the listing took longer than `timeoutMs`).
 */
export async function foreignOwner(ref: TableRef, netns?: string, timeoutMs = 5000): Promise<string | undefined> {
  const l = await nftList(['counters', 'table', ref.family, ref.name], { netns, timeoutMs });
  return l.ok ? ownerOf(l.val, ref) : undefined;
}
