/**
 * `readStatus()`: everything netfence owns in one network namespace, read
 * from the kernel and the journal — never from a process's memory, so any
 * process (the `netfence status` command, a metrics exporter, a health check)
 * sees what the classes of every other process put there.
 *
 * - nft: one terse ruleset listing (no set elements), the tables carrying a
 *   netfence ownership mark, with chains, rules, sets and maps with element
 *   counts (the kernel's counter or a netlink dump counted in place: a
 *   1,000,000-element set is never listed), named and rule counters, quotas;
 * - Throttler limits from their nft tables and tc objects;
 * - XDP programs (`ip -j link`), pinned blocklists (batched map reads) and
 *   nft-fallback tables;
 * - DpiBlocker steering and the kernel's NFQUEUE statistics;
 * - journal entries and locks.
 *
 * Parts that cannot be read are named in `warnings`; the call fails only when
 * the namespace itself cannot be read (no such namespace, no nft, no rights).
 * @module
 */
import { z } from 'zod';
import { fromZodIssues, NetfenceError } from '../errors.js';
import { listLinks } from '../host/links.js';
import { Err, Ok, type Result } from '../result.js';
import { NetnsName } from '../validate.js';
import { readJournal } from '../plan/journal.js';
import { readQueues, steeringOf, withJournalQueues } from './dpi.js';
import { readJournalStatus, readLockStatus } from './journal.js';
import { readOwnedTables } from './nft.js';
import { readLimits } from './throttle.js';
import type { HostStatus } from './types.js';
import { nftBlocklistsOf, readPinnedBlocklists, xdpProgramsOf } from './xdp.js';

export type * from './types.js';

/** Options of {@link readStatus}. */
export const ReadStatusSchema = z
  .object({
    /** The network namespace to read (a name under /run/netns); default: the caller's own. */
    netns: NetnsName.optional(),
  })
  .strict();

/** Options of {@link readStatus}. */
export type ReadStatusOptions = z.input<typeof ReadStatusSchema>;

/**
 * Read everything netfence owns in a network namespace from the kernel and
 * the journal (see the module comment for what and how). Needs the rights
 * `nft list` needs (root or CAP_NET_ADMIN, and CAP_SYS_ADMIN for another
 * namespace).
 *
 * @example
 * ```ts
 * const s = await readStatus({ netns: 'edge' });
 * if (s.ok) for (const t of s.val.tables) console.log(t.owner, t.sets.map((x) => `${x.name}=${x.elements}`));
 * ```
 * @returns Err (a `ValidationError` for bad options, else the `CommandError`
 * of nft or ip) only when the namespace cannot be read at all.
 */
export async function readStatus(options: ReadStatusOptions = {}): Promise<Result<HostStatus, NetfenceError>> {
  const t0 = performance.now();
  const o = ReadStatusSchema.safeParse(options);
  if (!o.success) return Err(fromZodIssues('readStatus options', o.error.issues));
  const netns = o.data.netns;
  const warnings: string[] = [];
  const nft = await readOwnedTables(netns);
  if (nft.err) return Err(nft.val);
  const links = await listLinks({ netns });
  if (links.err) return Err(links.val);
  const { tables, listing, nftVersion } = nft.val;
  for (const t of tables) for (const s of t.sets) if (s.countError) warnings.push(`set ${t.family} ${t.name} ${s.name}: ${s.countError.split('\n')[0]}`);
  const limits = await readLimits(netns, listing, tables, links.val, warnings);
  const programs = xdpProgramsOf(links.val);
  const blocklists = [...readPinnedBlocklists(programs, warnings, netns !== undefined), ...nftBlocklistsOf(tables)];
  const steering = steeringOf(listing, tables);
  try {
    withJournalQueues(steering, readJournal().filter((e) => (e.netns ?? undefined) === netns));
  } catch {
    /* the journal is optional here */
  }
  const queues = await readQueues(netns, warnings);
  let journal: HostStatus['journal'] = [];
  let locks: HostStatus['locks'] = [];
  try {
    journal = readJournalStatus(netns);
    locks = readLockStatus(netns);
  } catch (e) {
    warnings.push(`journal: ${(e as Error).message}`);
  }
  return Ok({
    netns,
    readAt: new Date().toISOString(),
    nftVersion,
    tables,
    limits,
    xdp: { programs, blocklists },
    dpi: { steering, queues },
    journal,
    locks,
    warnings,
    tookMs: Math.round(performance.now() - t0),
  });
}

export { ownedTablesOf, ownerKind } from './nft.js';
