/**
 * Snapshots of owned tables and the commands that restore them. A snapshot is
 * the JSON listing of a table (`nft -j list table F N`); restoring turns it
 * back into `add` commands (handles and other read-only fields dropped,
 * objects ordered so that references resolve) and replaces the table in one
 * transaction. Elements with a timeout keep their remaining time (`expires`,
 * which nft accepts on input), to the second.
 * @module
 */
import type { Command } from '../nft/schema/commands.js';
import { addCommand, listingItems, type NftListing } from '../nft/listing.js';
import type { NftBatchFeatures } from './nft-features.js';
import { tableKey } from './ownership.js';
import type { TableRef } from './types.js';

/** What was there before an apply, for one table the plan owns. */
export interface TableSnapshot {
  table: TableRef;
  /** Whether the table existed before. */
  existed: boolean;
  /** Its listing before the apply; undefined when it did not exist or no snapshot was taken. */
  listing?: NftListing | undefined;
}

/** Order in which object kinds are re-created: chains before maps that jump to them, rules last. */
const ORDER: Record<string, number> = {
  table: 0,
  chain: 1,
  counter: 2,
  quota: 2,
  limit: 2,
  'ct helper': 2,
  'ct timeout': 2,
  'ct expectation': 2,
  synproxy: 2,
  secmark: 2,
  tunnel: 2,
  flowtable: 3,
  set: 4,
  map: 4,
  element: 5,
  rule: 6,
};

/** Fields that listings carry but `add` must not get. */
const READ_ONLY = new Set(['handle']);

/**
 * Turn a table listing into the `add` commands that re-create it: table,
 * chains, stateful objects, flowtables, sets and maps with their elements,
 * then rules in listing order. Objects of other tables in the listing are ignored.
 */
export function listingToCommands(listing: NftListing | { readonly nftables: readonly unknown[] }, table: TableRef): Command[] {
  const items: { order: number; seq: number; cmd: Command }[] = [];
  let seq = 0;
  // Every kind, also those this version does not model: the restore must bring back exactly what was there.
  for (const { kind, value } of listingItems(listing)) {
    const owner = kind === 'table' ? value.name : value.table;
    if (owner !== table.name || value.family !== table.family) continue;
    const order = ORDER[kind] ?? 2;
    const obj: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (!READ_ONLY.has(k)) obj[k] = v;
    items.push({ order, seq: seq++, cmd: addCommand(kind, obj) });
  }
  items.sort((a, b) => a.order - b.order || a.seq - b.seq);
  return items.map((i) => i.cmd);
}

/**
 * The one-transaction batch that puts `tables` back as they were: a table that
 * did not exist is deleted; a table that existed is deleted and re-created from
 * its snapshot. The delete must be valid even if the table is gone meanwhile:
 * with `features.destroy` it is `destroy table` (delete if it exists), else
 * `add table` followed by `delete table`. Tables that existed but have no
 * snapshot are left alone and reported in `unrestorable`.
 */
export function restoreCommands(tables: readonly TableSnapshot[], features: NftBatchFeatures = {}): { commands: Command[]; unrestorable: TableRef[] } {
  const commands: Command[] = [];
  const unrestorable: TableRef[] = [];
  const seen = new Set<string>();
  for (const s of tables) {
    const k = tableKey(s.table);
    if (seen.has(k)) continue;
    seen.add(k);
    if (s.existed && !s.listing) {
      unrestorable.push(s.table);
      continue;
    }
    const ref = { family: s.table.family, name: s.table.name };
    if (features.destroy) commands.push({ destroy: { table: ref } });
    else commands.push({ add: { table: ref } }, { delete: { table: ref } });
    if (s.existed && s.listing) commands.push(...listingToCommands(s.listing, s.table));
  }
  return { commands, unrestorable };
}
