/**
 * The `nft-prune` plan action: remove scaffolding a tool created on first use
 * (iptables-nft creates table `filter` and its built-in chains, and they
 * outlive the chain netfence added) once nothing else uses it.
 *
 * Whether something is unused can only be known when the action runs, so the
 * action lists the table then (the executor and reconcile run it inside the
 * namespace lock) and deletes in one nft batch:
 * - a chain of `chains` only while it holds no rule and no rule jumps to it
 *   (the kernel would delete a base chain with its rules: it does not refuse);
 * - the table, with `deleteTable`, only when it holds nothing but such chains
 *   (no other chain, no rule, set, map, object or flowtable).
 * A table that is gone already is no error.
 * @module
 */
import type { CommandError } from '../errors.js';
import { listingObjects, nftApply, nftList } from '../host/nft.js';
import { Err, Ok, type Result } from '../result.js';
import type { Action } from './types.js';

/** The `nft-prune` member of {@link Action}. */
export type NftPruneAction = Extract<Action, { kind: 'nft-prune' }>;

/** Chain names a rule's expressions jump or go to (walks nested objects: verdict maps, sets). */
function verdictTargets(v: unknown, out: Set<string>, depth = 0): void {
  if (depth > 32 || v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) verdictTargets(x, out, depth + 1);
    return;
  }
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if ((k === 'jump' || k === 'goto') && x && typeof x === 'object' && typeof (x as { target?: unknown }).target === 'string') out.add((x as { target: string }).target);
    else verdictTargets(x, out, depth + 1);
  }
}

/**
 * The nft commands that prune `a` given the table's current listing (pure):
 * `delete table` when the table may go, else `delete chain` for each unused
 * chain of `a.chains` that exists; empty when nothing may go.
 */
export function pruneCommands(a: NftPruneAction, listing: { nftables: unknown[] }): unknown[] {
  const objs = listingObjects(listing);
  const chains = objs.filter((o) => o.kind === 'chain').map((o) => String(o.value['name'] ?? ''));
  const rules = objs.filter((o) => o.kind === 'rule');
  const targets = new Set<string>();
  for (const r of rules) verdictTargets(r.value['expr'], targets);
  const used = (c: string): boolean => targets.has(c) || rules.some((r) => r.value['chain'] === c);
  const prunable = a.chains.filter((c) => chains.includes(c) && !used(c));
  const onlyPrunable = objs.every((o) => o.kind === 'table' || (o.kind === 'chain' && prunable.includes(String(o.value['name'] ?? ''))));
  if (a.deleteTable && onlyPrunable) return [{ delete: { table: { family: a.family, name: a.table } } }];
  return prunable.map((name) => ({ delete: { chain: { family: a.family, table: a.table, name } } }));
}

/** Whether a failed `nft list table ...` said the table does not exist. */
export function isNoSuchTable(e: CommandError): boolean {
  return /No such file or directory|does not exist/i.test(e.failure.stderr);
}

/** Run an `nft-prune` action in `netns`: list the table, delete what is unused (one nft batch). */
export async function runNftPrune(a: NftPruneAction, netns: string | undefined): Promise<Result<void, CommandError>> {
  const l = await nftList(['table', a.family, a.table], { netns });
  if (l.err) {
    // gone already (someone removed it, or it was never created): nothing to prune
    if (isNoSuchTable(l.val)) return Ok(undefined);
    return Err(l.val);
  }
  const commands = pruneCommands(a, l.val);
  if (commands.length === 0) return Ok(undefined);
  const r = await nftApply(commands, { netns, what: `remove unused ${a.family} ${a.table} scaffolding` });
  return r.ok ? Ok(undefined) : Err(r.val);
}
