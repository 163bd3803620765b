/**
 * The XDP backend's data plane: what XdpBlocklist's add/remove/has/list/
 * replace/prune/stats do on the pinned maps (bpf(2), batched, see maps.ts),
 * with map failures turned into typed errors.
 * @module
 */
import { NetfenceError } from '../errors.js';
import { BpfSyscallError } from '../host/bpf.js';
import { Err, Ok, type Result } from '../result.js';
import type { BlockEntry } from './entries.js';
import type { XdpMode } from './loader.js';
import { BlocklistMaps, MapOpError, bootNowNs, type Side, type XdpProgress } from './maps.js';
import type { PackedEntries } from './packed.js';
import type { XdpBlocklistEntry, XdpBlocklistStats, XdpCounter } from './types.js';

/** Run a map operation; a full map is `BLOCKLIST_FULL`, any other bpf(2) failure `MAP_FAILED`. */
export function mapOp<T>(fn: () => T): Result<T, NetfenceError> {
  try {
    return Ok(fn());
  } catch (e) {
    if (e instanceof MapOpError) return Err(new NetfenceError(e.errno === 7 || e.errno === 28 ? 'BLOCKLIST_FULL' : 'MAP_FAILED', e.message));
    if (e instanceof BpfSyscallError) return Err(new NetfenceError('MAP_FAILED', e.message));
    throw e;
  }
}

/** {@link mapOp} for an asynchronous map operation (a parallel load). */
export async function mapOpAsync<T>(fn: () => Promise<T>): Promise<Result<T, NetfenceError>> {
  try {
    return Ok(await fn());
  } catch (e) {
    return mapOp(() => {
      throw e;
    });
  }
}

/** Like the program: an address matches an exact entry or the longest prefix; a prefix only itself. Expired entries do not count. */
export function mapsHas(maps: BlocklistMaps, e: BlockEntry): boolean {
  const full = e.family === 4 ? 32 : 128;
  const m = maps.lookup(maps.activeSide(), e);
  if (!m) return false;
  if (e.len !== full && m.entry.text !== e.text) return false;
  return m.expiresNs === 0n || m.expiresNs > bootNowNs();
}

/** Live entries of the active side with hits and remaining lifetime. */
export function mapsList(maps: BlocklistMaps): XdpBlocklistEntry[] {
  const now = bootNowNs();
  return maps
    .entries(maps.activeSide())
    .filter((x) => x.expiresNs === 0n || x.expiresNs > now)
    .map((x) => ({ entry: x.entry.text, hits: Number(x.hits), expiresInMs: x.expiresNs === 0n ? undefined : Number((x.expiresNs - now) / 1_000_000n) }));
}

/** Load `list` into the inactive side, flip, empty the old side: every packet sees the old or the new list. */
export async function mapsReplace(maps: BlocklistMaps, list: PackedEntries, expires: bigint, progress?: (p: XdpProgress) => void): Promise<void> {
  const active = maps.activeSide();
  const next: Side = active === 0 ? 1 : 0;
  maps.clearSide(next); // normally empty already
  await maps.load(next, list, expires, 'replace', progress);
  maps.flip(next);
  maps.clearSide(active);
}

/** Delete expired entries of the active side; returns how many. */
export function mapsPrune(maps: BlocklistMaps): number {
  const side = maps.activeSide();
  const now = bootNowNs();
  const dead = maps.entries(side).filter((x) => x.expiresNs !== 0n && x.expiresNs <= now);
  return maps.delete(side, dead.map((x) => x.entry));
}

/** Global counters and live entries. */
export function mapsStats(maps: BlocklistMaps, mode: XdpMode | undefined): XdpBlocklistStats {
  const c = maps.counters();
  const now = bootNowNs();
  const entries = maps.entries(maps.activeSide()).filter((x) => x.expiresNs === 0n || x.expiresNs > now).length;
  const n = (x: { packets: bigint; bytes: bigint }): XdpCounter => ({ packets: Number(x.packets), bytes: Number(x.bytes) });
  return { backend: 'xdp', mode, passed: n(c.pass), dropped: n(c.drop), expired: Number(c.expired.packets), entries };
}
