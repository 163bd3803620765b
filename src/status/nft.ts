/**
 * The nft part of {@link readStatus}: one terse listing of the ruleset
 * (`nft -t -j list ruleset`: structure, rules and counters, no set elements —
 * fast on every nft, including 1.0.x, whose other `list` commands load every
 * element), the tables carrying a netfence ownership mark, and per set an
 * element count that never lists the set (host/nft-elements.ts).
 * @module
 */
import { NetfenceError } from '../errors.js';
import { currentHost } from '../host/host.js';
import { listingItems, listingMetainfo, parseListingText, type NftListing } from '../nft/listing.js';
import { run } from '../host/run.js';
import { nftList } from '../host/nft.js';
import { OWNER_MARK, ownerOf } from '../plan/ownership.js';
import { Err, Ok, type Result } from '../result.js';
import type { ChainStatus, CounterStatus, OwnerKind, SetStatus, TableStatus } from './types.js';

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The class an owner string names. */
export function ownerKind(owner: string): OwnerKind {
  const p = owner.split(':')[0] ?? '';
  if (p === 'firewall' || p === 'vm-firewall' || p === 'fastpath') return 'firewall';
  if (p === 'throttle') return 'throttle';
  if (p === 'xdp-blocklist') return 'xdp-blocklist';
  if (p === 'dpi') return 'dpi';
  if (p === 'smartproxy' || p === 'nftables-manager' || p === 'routes') return 'smartproxy';
  return 'other';
}

/** `nft -t -j list ruleset` in `netns`, parsed (no set elements). */
export async function listRulesetTerse(netns: string | undefined): Promise<Result<NftListing, NetfenceError>> {
  const r = await run(['nft', '-t', '-j', 'list', 'ruleset'], { netns, what: 'nft list ruleset (terse)', timeoutMs: 120_000 });
  if (r.err) return Err(r.val);
  const p = parseListingText(r.val.stdout);
  if (p.err) return Err(new NetfenceError('BAD_LISTING', `unreadable nft listing: ${p.val.message}`));
  return Ok(p.val);
}

function typeText(t: unknown): string {
  return Array.isArray(t) ? t.map(String).join(' . ') : String(t ?? '?');
}

/** The statements of a rule that are `counter` with inline values. */
function ruleCounter(expr: unknown): { packets: number; bytes: number } | undefined {
  if (!Array.isArray(expr)) return undefined;
  for (const s of expr) {
    if (s && typeof s === 'object' && 'counter' in s) {
      const c = (s as { counter: unknown }).counter;
      if (c && typeof c === 'object') return { packets: num((c as Record<string, unknown>).packets), bytes: num((c as Record<string, unknown>).bytes) };
    }
  }
  return undefined;
}

/**
 * The owned tables of a terse ruleset listing (pure): chains, rules, sets
 * (without element counts), counters and quotas, per table carrying a mark.
 */
export function ownedTablesOf(listing: NftListing): TableStatus[] {
  const items = listingItems(listing);
  const out = new Map<string, TableStatus>();
  for (const { kind, value } of items) {
    if (kind !== 'table') continue;
    const family = str(value.family);
    const name = str(value.name);
    if (!family || !name) continue;
    const owner = ownerOf(listing, { family: family as never, name });
    if (owner === undefined) continue;
    out.set(`${family} ${name}`, { family, name, owner, kind: ownerKind(owner), chains: [], rules: 0, sets: [], counters: [], quotas: [] });
  }
  const chainOf = new Map<string, ChainStatus>();
  for (const { kind, value } of items) {
    const t = out.get(`${str(value.family)} ${str(value.table)}`);
    if (!t) continue;
    if (kind === 'chain') {
      const c: ChainStatus = { name: String(value.name), rules: 0 };
      if (value.type !== undefined) c.type = String(value.type);
      if (value.hook !== undefined) c.hook = String(value.hook);
      if (typeof value.prio === 'number') c.priority = value.prio;
      if (value.policy !== undefined) c.policy = String(value.policy);
      const dev = value.dev;
      if (dev !== undefined) c.device = Array.isArray(dev) ? dev.join(',') : String(dev);
      t.chains.push(c);
      chainOf.set(`${t.family} ${t.name} ${c.name}`, c);
    } else if (kind === 'rule') {
      t.rules++;
      const c = chainOf.get(`${t.family} ${t.name} ${String(value.chain)}`);
      if (c) c.rules++;
      const rc = ruleCounter(value.expr);
      if (rc) t.counters.push({ source: 'rule', name: `${String(value.chain)}#${String(value.handle)}`, chain: String(value.chain), comment: str(value.comment), ...rc });
    } else if (kind === 'set' || kind === 'map') {
      const s: SetStatus = {
        name: String(value.name),
        kind,
        type: typeText(value.type),
        flags: Array.isArray(value.flags) ? value.flags.map(String) : typeof value.flags === 'string' ? [value.flags] : [],
        elements: undefined,
        countMethod: undefined,
      };
      if (kind === 'map' && value.map !== undefined) s.map = typeText(value.map);
      if (typeof value.size === 'number') s.size = value.size;
      t.sets.push(s);
    } else if (kind === 'counter') {
      const name = String(value.name);
      if (name.startsWith(`${OWNER_MARK}_`)) continue;
      const c: CounterStatus = { source: 'named', name, packets: num(value.packets), bytes: num(value.bytes) };
      const comment = str(value.comment);
      if (comment !== undefined) c.comment = comment;
      t.counters.push(c);
    } else if (kind === 'quota') {
      t.quotas.push({ name: String(value.name), bytes: num(value.bytes), used: num(value.used) });
    }
  }
  return [...out.values()];
}

/** The nft version a listing names. */
export function nftVersionOf(listing: NftListing): string | undefined {
  const m = listingMetainfo(listing);
  return m && typeof m.version === 'string' ? m.version : undefined;
}

/**
 * Count the elements of `set` without listing it where the host can
 * (netlink, host/nft-elements.ts); a host without that (FakeHost) lists the set.
 */
export async function countElements(family: string, table: string, set: SetStatus, netns: string | undefined): Promise<void> {
  const host = currentHost();
  if (host.nft.countElements) {
    const r = await host.nft.countElements(family, table, set.name, { netns });
    if (r.ok) {
      set.elements = r.val.elements;
      set.countMethod = r.val.method;
      if (r.val.atLeast) set.elementsAtLeast = true;
    } else set.countError = r.val.message;
    return;
  }
  const l = await nftList([set.kind, family, table, set.name], { netns, timeoutMs: 600_000 });
  if (l.err) {
    set.countError = l.val.message;
    return;
  }
  for (const { kind, value } of listingItems(l.val)) {
    if (kind !== set.kind || value.name !== set.name) continue;
    const elem = value.elem;
    set.elements = Array.isArray(elem) ? elem.length : elem === undefined ? 0 : 1;
    set.countMethod = 'listing';
  }
}

/** The owned tables of `netns` with element counts. */
export async function readOwnedTables(netns: string | undefined): Promise<Result<{ tables: TableStatus[]; listing: NftListing; nftVersion: string | undefined }, NetfenceError>> {
  const l = await listRulesetTerse(netns);
  if (l.err) return Err(l.val);
  const tables = ownedTablesOf(l.val);
  for (const t of tables) for (const s of t.sets) await countElements(t.family, t.name, s, netns);
  return Ok({ tables, listing: l.val, nftVersion: nftVersionOf(l.val) });
}
