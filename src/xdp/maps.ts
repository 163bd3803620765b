/**
 * The pinned maps of one XDP blocklist and every operation on them, through
 * bpf(2) (see host/bpf.ts): create-or-open under bpffs, loads with
 * rollback, deletes, listing, the A/B flip for atomic replacement, counters.
 *
 * Layout under `<pinDir>/`: nf_v4_a nf_v4_b nf_v6_a nf_v6_b (hash, exact
 * addresses), nf_p4_a nf_p4_b nf_p6_a nf_p6_b (LPM tries, prefixes), nf_cfg
 * (array: [0] active side, [1] flags), nf_stats (per-CPU counters), prog.
 * Loading entries is in maps-load.ts, the batched element calls in maps-batch.ts.
 * @module
 */
import { join } from 'node:path';
import { BPF_F_NO_PREALLOC, BpfMapType, BpfSyscallError, CMem, clockNs, closeFd, lookupElemRaw, mapCreate, mapInfo, objGet, objPin, possibleCpus, updateElemRaw } from '../host/bpf.js';
import { hostFiles } from '../host/files.js';
import { KEY_SIZE, VALUE_SIZE, entryText, listKind, maskBytes, readKey, readValue, writeKey, type BlockEntry, type ListKind } from './entries.js';
import { deleteKeys, dumpMap } from './maps-batch.js';
import { loadPacked, loadPackedSync } from './maps-load.js';
import { packBlockEntries, type PackedEntries } from './packed.js';

export { MapOpError } from './maps-batch.js';

/** The four lists of one side. */
export const LIST_KINDS: readonly ListKind[] = ['v4', 'v6', 'p4', 'p6'];
/** Sides: A = 0, B = 1. */
export type Side = 0 | 1;

/** Map name for a list on a side, as in bpf/xdp_blocklist.c. */
export function mapName(kind: ListKind, side: Side): string {
  return `nf_${kind}_${side === 0 ? 'a' : 'b'}`;
}

/** Every map name of the program (for the loader's `map name X pinned P` arguments). */
export const ALL_MAPS: readonly string[] = [...LIST_KINDS.flatMap((k) => [mapName(k, 0), mapName(k, 1)]), 'nf_cfg', 'nf_stats'];

/** Counter slots of nf_stats. */
export const STAT = { pass: 0, drop: 1, expired: 2 } as const;
const STAT_SLOTS = 4;

/** Progress of a bulk blocklist operation (emitted as `progress` events). */
export interface XdpProgress {
  /** Which call is running. */
  op: 'add' | 'remove' | 'replace' | 'list';
  /** Entries processed so far. */
  done: number;
  /** Entries in the call. */
  total: number;
}


/** One listed entry with its state. */
export interface MapEntry {
  entry: BlockEntry;
  hits: bigint;
  expiresNs: bigint;
}


/** Open (or create and pin) the maps of one blocklist. */
export class BlocklistMaps {
  private fds = new Map<string, number>();
  /** Whether the maps were created by this call (false: re-opened from pins). */
  created = false;
  private cpus = possibleCpus(hostFiles().read('/sys/devices/system/cpu/possible'));

  private constructor(readonly pinDir: string) {}

  /** Whether the maps of a blocklist are pinned at `pinDir`. */
  static exists(pinDir: string): boolean {
    return hostFiles().exists(join(pinDir, 'nf_cfg'));
  }

  /** Open pinned maps at `pinDir`. Throws BpfSyscallError when missing. */
  static open(pinDir: string): BlocklistMaps {
    const m = new BlocklistMaps(pinDir);
    try {
      for (const name of ALL_MAPS) m.fds.set(name, objGet(join(pinDir, name)));
    } catch (e) {
      m.close();
      throw e;
    }
    return m;
  }

  /** Create and pin all maps with room for `maxEntries` per list and side. */
  static create(pinDir: string, maxEntries: number, flags: number): BlocklistMaps {
    hostFiles().mkdir(pinDir, { recursive: true });
    const m = new BlocklistMaps(pinDir);
    try {
      for (const side of [0, 1] as const) {
        for (const kind of LIST_KINDS) {
          const name = mapName(kind, side);
          const fd = mapCreate({
            type: kind === 'v4' || kind === 'v6' ? BpfMapType.HASH : BpfMapType.LPM_TRIE,
            keySize: KEY_SIZE[kind],
            valueSize: VALUE_SIZE,
            maxEntries,
            flags: BPF_F_NO_PREALLOC,
            name,
          });
          m.fds.set(name, fd);
        }
      }
      m.fds.set('nf_cfg', mapCreate({ type: BpfMapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 4, name: 'nf_cfg' }));
      m.fds.set('nf_stats', mapCreate({ type: BpfMapType.PERCPU_ARRAY, keySize: 4, valueSize: 16, maxEntries: STAT_SLOTS, name: 'nf_stats' }));
      m.setCfg(1, flags);
      // nf_cfg last: its pin marks a complete set (see exists()).
      for (const name of ALL_MAPS.filter((n) => n !== 'nf_cfg')) objPin(m.fd(name), join(pinDir, name));
      objPin(m.fd('nf_cfg'), join(pinDir, 'nf_cfg'));
    } catch (e) {
      m.close();
      throw e;
    }
    m.created = true;
    return m;
  }

  /** Close every fd (pins stay). */
  close(): void {
    for (const fd of this.fds.values()) closeFd(fd);
    this.fds.clear();
  }

  private fd(name: string): number {
    const fd = this.fds.get(name);
    if (fd === undefined) throw new Error(`map ${name} is not open`);
    return fd;
  }

  /** Capacity of each list (max_entries of the maps). */
  maxEntries(): number {
    return mapInfo(this.fd('nf_v4_a')).maxEntries;
  }

  private getCfg(key: number): number {
    const k = new CMem(8);
    const v = new CMem(8);
    try {
      k.buf.writeUInt32LE(key, 0);
      const r = lookupElemRaw(this.fd('nf_cfg'), k.addr, v.addr);
      if (r < 0) throw new BpfSyscallError('MAP_LOOKUP_ELEM nf_cfg', -r);
      return v.buf.readUInt32LE(0);
    } finally {
      k.free();
      v.free();
    }
  }

  private setCfg(key: number, value: number): void {
    const k = new CMem(8);
    const v = new CMem(8);
    try {
      k.buf.writeUInt32LE(key, 0);
      v.buf.writeUInt32LE(value, 0);
      const r = updateElemRaw(this.fd('nf_cfg'), k.addr, v.addr);
      if (r < 0) throw new BpfSyscallError('MAP_UPDATE_ELEM nf_cfg', -r);
    } finally {
      k.free();
      v.free();
    }
  }

  /** The side the program reads now. */
  activeSide(): Side {
    return (this.getCfg(0) & 1) as Side;
  }

  /** Program flags (bit 0: match destination). */
  flags(): number {
    return this.getCfg(1);
  }

  /** Set program flags. */
  setFlags(flags: number): void {
    this.setCfg(1, flags);
  }

  /** The fd of the map of list `kind` on `side`. */
  listFd(kind: ListKind, side: Side): number {
    return this.fd(mapName(kind, side));
  }

  /**
   * Insert or update `entries` on `side`, inline (small loads, synchronous
   * callers). All-or-nothing: see maps-load.ts.
   */
  upsert(side: Side, entries: readonly BlockEntry[], expiresNs: bigint, op: XdpProgress['op'], progress?: (p: XdpProgress) => void): void {
    loadPackedSync((k) => this.listFd(k, side), packBlockEntries(entries), expiresNs, progress && ((done, total) => progress({ op, done, total })));
  }

  /**
   * Insert or update validated, packed entries on `side`; a large load runs
   * its batches on several CPUs. All-or-nothing: see maps-load.ts.
   */
  load(side: Side, packed: PackedEntries, expiresNs: bigint, op: XdpProgress['op'], progress?: (p: XdpProgress) => void): Promise<void> {
    return loadPacked((k) => this.listFd(k, side), packed, expiresNs, progress && ((done, total) => progress({ op, done, total })));
  }

  /** Delete `entries` from `side`; absent ones are ignored. Returns how many were deleted. */
  delete(side: Side, entries: readonly BlockEntry[], progress?: (p: XdpProgress) => void): number {
    const groups = groupByKind(entries);
    let deleted = 0;
    let done = 0;
    for (const kind of LIST_KINDS) {
      const list = groups[kind];
      if (!list.length) continue;
      const ks = KEY_SIZE[kind];
      const keys = new CMem(list.length * ks);
      try {
        list.forEach((e, i) => writeKey(kind, e, keys.buf, i * ks));
        deleted += deleteKeys(this.fd(mapName(kind, side)), keys, ks, list.length, (n) => progress?.({ op: 'remove', done: done + n, total: entries.length }));
        done += list.length;
      } finally {
        keys.free();
      }
    }
    return deleted;
  }



  /** Every entry of `side` with its hits and expiry (expired ones included; the caller filters). */
  entries(side: Side): MapEntry[] {
    const out: MapEntry[] = [];
    for (const kind of LIST_KINDS) {
      const d = dumpMap(this.fd(mapName(kind, side)), kind, mapName(kind, side));
      const ks = KEY_SIZE[kind];
      for (let i = 0; i < d.count; i++) {
        const v = readValue(d.vals, i * VALUE_SIZE);
        out.push({ entry: readKey(kind, d.keys, i * ks), hits: v.hits, expiresNs: v.expiresNs });
      }
    }
    return out;
  }

  /**
   * Live entries of `side` (expiry 0 or after `nowNs`), counted from batched
   * lookups without building one object per entry (used by `readStatus`).
   */
  liveEntryCount(side: Side, nowNs: bigint): number {
    let n = 0;
    for (const kind of LIST_KINDS) {
      const d = dumpMap(this.fd(mapName(kind, side)), kind, mapName(kind, side));
      for (let i = 0; i < d.count; i++) {
        const exp = d.vals.readBigUInt64LE(i * VALUE_SIZE);
        if (exp === 0n || exp > nowNs) n++;
      }
    }
    return n;
  }

  /** Delete every element of `side`. */
  clearSide(side: Side): void {
    for (const kind of LIST_KINDS) {
      const d = dumpMap(this.fd(mapName(kind, side)), kind, mapName(kind, side));
      if (!d.count) continue;
      const ks = KEY_SIZE[kind];
      const keys = new CMem(d.count * ks);
      try {
        d.keys.copy(keys.buf);
        deleteKeys(this.fd(mapName(kind, side)), keys, ks, d.count);
      } finally {
        keys.free();
      }
    }
  }

  /** Make `side` the one the program reads: one 4-byte map update, atomic for every packet. */
  flip(side: Side): void {
    this.setCfg(0, side);
  }

  /** Look `addr` up like the program does (exact, then longest prefix). */
  lookup(side: Side, e: BlockEntry): MapEntry | undefined {
    const exactKind: ListKind = e.family === 4 ? 'v4' : 'v6';
    const lpmKind: ListKind = e.family === 4 ? 'p4' : 'p6';
    const full = e.family === 4 ? 32 : 128;
    const v = new CMem(VALUE_SIZE);
    try {
      if (e.len === full) {
        const k = new CMem(KEY_SIZE[exactKind]);
        writeKey(exactKind, e, k.buf, 0);
        const r = lookupElemRaw(this.fd(mapName(exactKind, side)), k.addr, v.addr);
        k.free();
        if (r === 0) {
          const val = readValue(v.buf, 0);
          return { entry: e, hits: val.hits, expiresNs: val.expiresNs };
        }
      }
      const k = new CMem(KEY_SIZE[lpmKind]);
      writeKey(lpmKind, e, k.buf, 0);
      const r = lookupElemRaw(this.fd(mapName(lpmKind, side)), k.addr, v.addr);
      k.free();
      if (r !== 0) return undefined;
      const val = readValue(v.buf, 0);
      if (val.len > e.len) return undefined; // a longer prefix cannot cover a shorter query
      const bytes = maskBytes(e.bytes, val.len);
      return { entry: { family: e.family, bytes, len: val.len, text: entryText(e.family, bytes, val.len) }, hits: val.hits, expiresNs: val.expiresNs };
    } finally {
      v.free();
    }
  }

  /** Global counters summed over CPUs. */
  counters(): Record<keyof typeof STAT, { packets: bigint; bytes: bigint }> {
    const k = new CMem(8);
    const per = 16;
    const v = new CMem(this.cpus * per);
    const read = (slot: number): { packets: bigint; bytes: bigint } => {
      k.buf.writeUInt32LE(slot, 0);
      const r = lookupElemRaw(this.fd('nf_stats'), k.addr, v.addr);
      if (r < 0) throw new BpfSyscallError('MAP_LOOKUP_ELEM nf_stats', -r);
      let packets = 0n;
      let bytes = 0n;
      for (let c = 0; c < this.cpus; c++) {
        packets += v.buf.readBigUInt64LE(c * per);
        bytes += v.buf.readBigUInt64LE(c * per + 8);
      }
      return { packets, bytes };
    };
    try {
      return { pass: read(STAT.pass), drop: read(STAT.drop), expired: read(STAT.expired) };
    } finally {
      k.free();
      v.free();
    }
  }
}


function groupByKind(entries: readonly BlockEntry[]): Record<ListKind, BlockEntry[]> {
  const g: Record<ListKind, BlockEntry[]> = { v4: [], v6: [], p4: [], p6: [] };
  for (const e of entries) g[listKind(e)].push(e);
  return g;
}


/** Current CLOCK_BOOTTIME in ns (the clock of bpf_ktime_get_boot_ns). */
export function bootNowNs(): bigint {
  return clockNs();
}
