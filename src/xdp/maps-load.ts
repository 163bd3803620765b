/**
 * Loading entries into one side of a blocklist's maps (see maps.ts): the keys
 * packed by packed.ts go to the kernel in BPF_MAP_UPDATE_BATCH calls of
 * {@link BATCH} elements. A large load runs its batches on as many CPUs as
 * the machine has (up to 4: the hash map's buckets have their own locks, so
 * disjoint batches scale), off the event loop; a small one runs inline.
 *
 * All-or-nothing: when the kernel refuses an element (a map is full), the
 * elements this load created are deleted and the ones it overwrote get their
 * previous value back.
 * @module
 */
import { availableParallelism } from 'node:os';
import { BPF_ANY, BpfCmd, CMem, Errno, batchRaw, lookupElemRaw, nextKeyRaw, updateBatchAsync, updateElemRaw } from '../host/bpf.js';
import { KEY_SIZE, VALUE_SIZE, type ListKind } from './entries.js';
import { BATCH, MapOpError, capacityMessage, noBatch, undoUpsert } from './maps-batch.js';
import type { PackedEntries } from './packed.js';

/** The maps of one side, by list (what {@link loadPacked} needs of BlocklistMaps). */
export type ListFd = (kind: ListKind) => number;

/** Progress of a load: entries written so far of `total`. */
export type LoadProgress = (done: number, total: number) => void;

const LISTS: readonly ListKind[] = ['v4', 'v6', 'p4', 'p6'];
/** Largest number of update batches in flight at once. */
const MAX_LANES = 4;

/** One list's keys and values in C memory, and what the undo needs. */
interface ListLoad {
  kind: ListKind;
  fd: number;
  ks: number;
  n: number;
  keys: CMem;
  vals: CMem;
  /** Value bytes between two entries: 0 when every entry has the same value (one shared block of BATCH values). */
  valStride: number;
  /** Values the load overwrote, by key index (empty when the map was empty). */
  existing: Map<number, Buffer>;
}

/** BATCH entries of one list; `applied` of them are in the map. */
interface Chunk {
  list: ListLoad;
  start: number;
  n: number;
  applied: number;
}

function valueTemplate(expiresNs: bigint, len: number): Buffer {
  const v = Buffer.alloc(VALUE_SIZE);
  v.writeBigUInt64LE(expiresNs, 0);
  v.writeUInt32LE(len, 16);
  return v;
}

/** Keys and values of one list in C memory; the previous values of the keys already in the map. */
function prepare(kind: ListKind, fd: number, keys: Buffer, n: number, expiresNs: bigint, mems: CMem[]): ListLoad {
  const ks = KEY_SIZE[kind];
  const k = new CMem(n * ks);
  mems.push(k);
  keys.copy(k.buf, 0, 0, n * ks);
  const exact = kind === 'v4' || kind === 'v6';
  // struct nf_val: expiry, hits 0, prefix length (the full length for exact entries)
  const vals = new CMem((exact ? Math.min(n, BATCH) : n) * VALUE_SIZE);
  mems.push(vals);
  vals.buf.fill(valueTemplate(expiresNs, kind === 'v4' ? 32 : kind === 'v6' ? 128 : 0));
  if (!exact) for (let i = 0; i < n; i++) vals.buf.writeUInt32LE(k.buf.readUInt32LE(i * ks), i * VALUE_SIZE + 16);
  // for the undo: which keys exist already and their values (an empty map, the bulk case, needs no lookups)
  const existing = new Map<number, Buffer>();
  const probe = new CMem(Math.max(ks, 8));
  const isEmpty = nextKeyRaw(fd, 0n, probe.addr) === -Errno.ENOENT;
  probe.free();
  if (!isEmpty) {
    const old = new CMem(VALUE_SIZE);
    try {
      for (let i = 0; i < n; i++) if (lookupElemRaw(fd, k.addr + BigInt(i * ks), old.addr) === 0) existing.set(i, Buffer.from(old.buf.subarray(0, VALUE_SIZE)));
    } finally {
      old.free();
    }
  }
  return { kind, fd, ks, n, keys: k, vals, valStride: exact ? 0 : VALUE_SIZE, existing };
}

const keyAddr = (c: Chunk, i: number): bigint => c.list.keys.addr + BigInt((c.start + i) * c.list.ks);
const valAddr = (c: Chunk, i: number): bigint => c.list.vals.addr + BigInt(c.list.valStride === 0 ? i * VALUE_SIZE : (c.start + i) * VALUE_SIZE);

/**
 * Account for one batch call on `c`: how many it applied; on a kernel without
 * batch support the chunk is written element by element; a refusal throws.
 */
function settle(c: Chunk, r: { ret: number; count: number }): void {
  c.applied += r.count;
  if (r.ret >= 0) return;
  if (noBatch(r.ret) && r.count === 0 && c.applied === 0) {
    for (; c.applied < c.n; c.applied++) {
      const e = updateElemRaw(c.list.fd, keyAddr(c, c.applied), valAddr(c, c.applied), BPF_ANY);
      if (e < 0) throw new MapOpError(capacityMessage(c.list.kind, e), -e);
    }
    return;
  }
  throw new MapOpError(capacityMessage(c.list.kind, r.ret), -r.ret);
}

const batchArgs = (c: Chunk): { keys: bigint; values: bigint; count: number } => ({ keys: keyAddr(c, c.applied), values: valAddr(c, c.applied), count: c.n - c.applied });

function chunksOf(lists: ListLoad[]): Chunk[] {
  const out: Chunk[] = [];
  for (const list of lists) for (let s = 0; s < list.n; s += BATCH) out.push({ list, start: s, n: Math.min(BATCH, list.n - s), applied: 0 });
  return out;
}

/** Put back what the applied part of every chunk changed (best effort: the original failure is reported). */
function undo(chunks: Chunk[]): void {
  for (const c of [...chunks].reverse()) {
    try {
      undoUpsert(c.list.fd, c.list.ks, c.list.keys, c.start, c.start + c.applied, c.list.existing);
    } catch {
      // keep undoing the others
    }
  }
}

/** Run every chunk inline, in order. */
function runSync(chunks: Chunk[], total: number, progress?: LoadProgress): void {
  let done = 0;
  for (const c of chunks) {
    while (c.applied < c.n) settle(c, batchRaw(BpfCmd.MAP_UPDATE_BATCH, c.list.fd, batchArgs(c)));
    done += c.n;
    progress?.(done, total);
  }
}

/** Run the chunks `lanes` at a time off the event loop; the first refusal stops the rest and is thrown. */
async function runParallel(chunks: Chunk[], lanes: number, total: number, progress?: LoadProgress): Promise<void> {
  let next = 0;
  let done = 0;
  let failure: unknown;
  const lane = async (): Promise<void> => {
    while (failure === undefined && next < chunks.length) {
      const c = chunks[next++]!;
      try {
        while (c.applied < c.n) settle(c, await updateBatchAsync(c.list.fd, batchArgs(c)));
      } catch (e) {
        failure ??= e;
        return;
      }
      done += c.n;
      progress?.(done, total);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  if (failure !== undefined) throw failure;
}

/**
 * Write `packed` into the maps of one side (`fdOf(kind)`), every entry with
 * expiry `expiresNs` and no hits. All-or-nothing (see the module comment).
 */
export async function loadPacked(fdOf: ListFd, packed: PackedEntries, expiresNs: bigint, progress?: LoadProgress): Promise<void> {
  await load(fdOf, packed, expiresNs, progress, true);
}

/** {@link loadPacked} inline, every batch on this thread (small loads, synchronous callers). */
export function loadPackedSync(fdOf: ListFd, packed: PackedEntries, expiresNs: bigint, progress?: LoadProgress): void {
  void load(fdOf, packed, expiresNs, progress, false);
}

function load(fdOf: ListFd, packed: PackedEntries, expiresNs: bigint, progress: LoadProgress | undefined, parallel: boolean): Promise<void> | undefined {
  const mems: CMem[] = [];
  const free = (): void => {
    for (const m of mems) m.free();
  };
  let chunks: Chunk[] = [];
  const fail = (e: unknown): never => {
    undo(chunks);
    free();
    throw e;
  };
  try {
    const lists = LISTS.filter((k) => packed.lists[k].n > 0).map((k) => prepare(k, fdOf(k), packed.lists[k].keys, packed.lists[k].n, expiresNs, mems));
    chunks = chunksOf(lists);
    const lanes = parallel ? Math.min(MAX_LANES, availableParallelism(), chunks.length) : 1;
    if (lanes <= 1) {
      runSync(chunks, packed.count, progress);
      free();
      return undefined;
    }
    return runParallel(chunks, lanes, packed.count, progress).then(free, fail);
  } catch (e) {
    return fail(e);
  }
}
