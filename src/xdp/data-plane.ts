/**
 * XdpBlocklist's bulk entry operations (add and replace) on whichever backend
 * is open: validation of every entry first (one bad entry refuses the call),
 * then the packed keys into the maps (bpf(2) batches, see maps-load.ts) or the
 * entries into the nft fallback's sets.
 * @module
 */
import { ValidationError, type NetfenceError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { uniq } from './blocklist-util.js';
import { nestedPrefixIssues, parseEntries, type BlockEntry } from './entries.js';
import { mapOpAsync, mapsReplace } from './map-ops.js';
import { bootNowNs, type BlocklistMaps, type XdpProgress } from './maps.js';
import type { NftBlocklist } from './nft-backend.js';
import { packEntries, type PackedEntries } from './packed.js';
import { ttlMsOf, type XdpAddOptions } from './types.js';

/** The backend a data-plane call works on. */
export type OpenBackend = { kind: 'xdp'; maps: BlocklistMaps } | { kind: 'nft'; nft: NftBlocklist };

/** Opens the backend (this process's, or what another process left). */
export type Opener = () => Promise<Result<OpenBackend, NetfenceError>>;

/** The progress callback of an operation over `total` entries (undefined: none). */
export type ProgressFor = (op: XdpProgress['op'], total: number) => ((p: XdpProgress) => void) | undefined;

type Prepared =
  | { kind: 'xdp'; maps: BlocklistMaps; packed: PackedEntries; expires: bigint }
  | { kind: 'nft'; nft: NftBlocklist; list: BlockEntry[]; ttlS: number | undefined };

/**
 * Shared start of add() and replace(): validate the entries and the ttl,
 * open the backend, then check what only that backend refuses (nested
 * prefixes on the nft backend, whose interval sets cannot hold them), and
 * give the expiry in the form each backend takes (whole seconds for nft, a
 * CLOCK_BOOTTIME deadline for the maps).
 */
async function prepare(open: Opener, entries: readonly string[] | string, options: XdpAddOptions): Promise<Result<Prepared, NetfenceError>> {
  const packed = packEntries(entries, 'blocklist entries');
  if (packed.err) return packed;
  const t = ttlMsOf(options);
  if (t.err) return t;
  const b = await open();
  if (b.err) return b;
  const ms = t.val;
  if (b.val.kind === 'xdp') return Ok({ kind: 'xdp', maps: b.val.maps, packed: packed.val, expires: ms === undefined ? 0n : bootNowNs() + BigInt(Math.round(ms * 1e6)) });
  // the fallback takes entry objects, once each, in input order
  const p = parseEntries(entries, 'blocklist entries', { dedupe: false });
  if (p.err) return p;
  const list = uniq(p.val);
  const nested = nestedPrefixIssues(list);
  if (nested.length) return Err(new ValidationError('blocklist entries', nested));
  return Ok({ kind: 'nft', nft: b.val.nft, list, ttlS: ms === undefined ? undefined : Math.max(1, Math.ceil(ms / 1000)) });
}

/** add(): see {@link XdpBlocklist.add}. */
export async function addEntries(open: Opener, entries: readonly string[] | string, options: XdpAddOptions, progress: ProgressFor): Promise<Result<{ added: number }, NetfenceError>> {
  const l = await prepare(open, entries, options);
  if (l.err) return l;
  const v = l.val;
  if (v.kind === 'nft') {
    const r = await v.nft.add(v.list, v.ttlS);
    return r.err ? r : Ok({ added: v.list.length });
  }
  return mapOpAsync(async () => {
    await v.maps.load(v.maps.activeSide(), v.packed, v.expires, 'add', progress('add', v.packed.count));
    return { added: v.packed.count };
  });
}

/** replace(): see {@link XdpBlocklist.replace}; `locked` holds the blocklist's cross-process lock around the map swap. */
export async function replaceEntries(
  open: Opener,
  entries: readonly string[] | string,
  options: XdpAddOptions,
  progress: ProgressFor,
  locked: (fn: () => Promise<Result<{ count: number }, NetfenceError>>) => Promise<Result<{ count: number }, NetfenceError>>,
): Promise<Result<{ count: number }, NetfenceError>> {
  const l = await prepare(open, entries, options);
  if (l.err) return l;
  const v = l.val;
  if (v.kind === 'nft') {
    const r = await v.nft.replace(v.list, v.ttlS);
    return r.err ? r : Ok({ count: v.list.length });
  }
  return locked(() =>
    mapOpAsync(async () => {
      await mapsReplace(v.maps, v.packed, v.expires, progress('replace', v.packed.count));
      return { count: v.packed.count };
    }),
  );
}
