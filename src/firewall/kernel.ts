/**
 * The Firewall's only doors to the kernel: the plan executor (apply, check,
 * destroy) and nft listings. Kept in one module so that the builder stays pure.
 * @module
 */
import { detectCapabilities } from '../capabilities/index.js';
import { NetfenceError } from '../errors.js';
import { listingObjects, nftList, parseListingText, type NftListing } from '../host/nft.js';
import { run } from '../host/run.js';
import { apply, check, destroy, type AppliedPlan, type ApplyOptions } from '../plan/executor.js';
import type { Plan, TableRef } from '../plan/types.js';
import { Err, Ok, type Result } from '../result.js';
import type { ApplyError } from '../errors.js';

export type { AppliedPlan, ApplyOptions };

/** Apply a plan through the executor (one nft transaction, ownership-checked). */
export function submit(plan: Plan, options: ApplyOptions = {}): Promise<Result<AppliedPlan, ApplyError>> {
  return apply(plan, options);
}

/** Check a plan with the kernel without committing. */
export function checkPlan(plan: Plan): Promise<Result<void, NetfenceError>> {
  return check(plan);
}

/** Delete owned tables. */
export function destroyTables(tables: TableRef[], netns: string | undefined, owner: string): Promise<Result<{ deleted: TableRef[] }, NetfenceError>> {
  return destroy(tables, { netns, owner });
}

/** A listed rule: where it is and what its counter says. */
export interface ListedRule {
  chain: string;
  handle: number;
  comment?: string | undefined;
  packets: number;
  bytes: number;
}

/**
 * Rules of `chains` with their handles and counters. One chain: `nft -j list
 * chain`; several: one terse table listing (`nft -t -j list table`, set
 * contents omitted, so huge sets cost nothing). (nft 1.0.6 fails a JSON batch
 * of several `list chain` commands, so they are not batched.)
 */
export async function listRules(netns: string | undefined, family: string, table: string, chains: string[]): Promise<Result<ListedRule[], NetfenceError>> {
  if (chains.length === 0) return Ok([]);
  let listing: NftListing;
  if (chains.length === 1) {
    const r = await nftList(['chain', family, table, chains[0] as string], { netns });
    if (r.err) return Err(r.val);
    listing = r.val;
  } else {
    const r = await run(['nft', '-t', '-j', 'list', 'table', family, table], { netns, what: `nft list table ${family} ${table}` });
    if (r.err) return Err(r.val);
    const l = parseListingText(r.val.stdout);
    if (l.err) return Err(new NetfenceError('BAD_LISTING', `unparseable nft listing: ${l.val.message}`));
    listing = l.val;
  }
  const wanted = new Set(chains);
  const out: ListedRule[] = [];
  for (const { kind, value } of listingObjects(listing)) {
    if (kind !== 'rule' || !wanted.has(String(value.chain))) continue;
    let packets = 0;
    let bytes = 0;
    for (const e of (value.expr as unknown[]) ?? []) {
      const c = (e as { counter?: { packets?: number; bytes?: number } }).counter;
      if (c && typeof c === 'object') {
        packets += c.packets ?? 0;
        bytes += c.bytes ?? 0;
      }
    }
    out.push({ chain: String(value.chain), handle: Number(value.handle), comment: typeof value.comment === 'string' ? value.comment : undefined, packets, bytes });
  }
  return Ok(out);
}

/** Elements of named sets with their counters (one nft process). */
export async function listSets(netns: string | undefined, family: string, table: string, sets: string[]): Promise<Result<Map<string, { elements: number; packets: number; bytes: number }>, NetfenceError>> {
  const out = new Map<string, { elements: number; packets: number; bytes: number }>();
  if (sets.length === 0) return Ok(out);
  for (const name of sets) {
    const r = await nftList(['set', family, table, name], { netns });
    if (r.err) return Err(r.val);
    const l = r.val;
    for (const { kind, value } of listingObjects(l)) {
      if (kind !== 'set' && kind !== 'map') continue;
      const agg = { elements: 0, packets: 0, bytes: 0 };
      for (const e of (value.elem as unknown[]) ?? []) {
        agg.elements++;
        const c = (e as { elem?: { counter?: { packets?: number; bytes?: number } } }).elem?.counter;
        if (c) {
          agg.packets += c.packets ?? 0;
          agg.bytes += c.bytes ?? 0;
        }
      }
      out.set(String(value.name), agg);
    }
  }
  return Ok(out);
}

/**
 * What the kernel in `netns` can do for bridge (VM) firewalls: bridge reject
 * and bridge conntrack from the capability report (probed by a real commit in
 * a throwaway namespace), br_netfilter from the namespace's sysctl.
 */
export async function probeBridge(netns: string | undefined): Promise<{ reject: boolean; ct: boolean; brNetfilter: boolean }> {
  const report = await detectCapabilities(netns === undefined ? {} : { netns });
  const s = await run(['cat', '/proc/sys/net/bridge/bridge-nf-call-iptables'], { netns });
  const brNetfilter = s.ok && s.val.stdout.trim() === '1';
  return { reject: report.nft.features.bridgeReject.available, ct: report.nft.features.bridgeConntrack.available, brNetfilter };
}
