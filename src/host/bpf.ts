/**
 * The bpf(2) system call, called directly from Node through host/libc.ts (no
 * native addon to build, no helper process): map creation, program loading,
 * pinning, opening pinned objects, and batched/single element operations.
 * Used by the XDP blocklist to load a million entries in about a second, and
 * by the XDP capability probe.
 *
 * The exported functions dispatch through {@link currentHost} (`host.bpf`),
 * so a fake host can stand in for the kernel; `realBpf` (host/bpf-real.ts) is the real
 * implementation. Only the commands netfence needs are wrapped. Every wrapper
 * returns the raw result or throws a {@link BpfSyscallError} carrying errno;
 * callers turn expected failures into Result values.
 * @module
 */
import { arch } from 'node:os';
import { currentHost, type BatchArgs, type HostMem, type MapCreateOptions, type MapInfo, type ProgLoadOptions } from './host.js';
import { syscallNumber } from './libc.js';

export type { BatchArgs, MapCreateOptions, MapInfo, ProgLoadOptions } from './host.js';

/** bpf(2) command numbers (enum bpf_cmd, include/uapi/linux/bpf.h). */
export const BpfCmd = {
  MAP_CREATE: 0,
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  MAP_GET_NEXT_KEY: 4,
  PROG_LOAD: 5,
  OBJ_PIN: 6,
  OBJ_GET: 7,
  PROG_TEST_RUN: 10,
  OBJ_GET_INFO_BY_FD: 15,
  MAP_LOOKUP_BATCH: 24,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
} as const;

/** Map types used by netfence (enum bpf_map_type). */
export const BpfMapType = { HASH: 1, ARRAY: 2, PERCPU_ARRAY: 6, LPM_TRIE: 11 } as const;

/** Program types used by netfence (enum bpf_prog_type). */
export const BpfProgType = { XDP: 6 } as const;

/** Map creation flags. */
export const BPF_F_NO_PREALLOC = 1;
/** Element update flag: create or update. */
export const BPF_ANY = 0;

/** errno values we act on. */
export const Errno = { EPERM: 1, ENOENT: 2, EINTR: 4, EBADF: 9, EFAULT: 14, EEXIST: 17, EINVAL: 22, ENOSPC: 28, ENOSYS: 38, ENOTSUPP: 524, E2BIG: 7 } as const;

/** A bpf(2) call failed. */
export class BpfSyscallError extends Error {
  constructor(
    readonly op: string,
    readonly errno: number,
    /** The verifier's log, for a failed BPF_PROG_LOAD. */
    readonly log?: string,
  ) {
    super(`bpf(${op}) failed: errno ${errno} (${errnoName(errno)})${log ? `; verifier: ${log.slice(0, 200)}` : ''}`);
    this.name = 'BpfSyscallError';
  }
}

function errnoName(e: number): string {
  for (const [k, v] of Object.entries(Errno)) if (v === e) return k;
  return 'see errno(3)';
}

/** Architectures whose `bpf_attr` encoding (64-bit little-endian) netfence's map code is built and tested for. */
const BPF_ARCHES = new Set(['x64', 'arm64']);

/**
 * SYS_bpf for `a` (default: this machine's), or undefined where netfence does
 * not drive bpf(2) from Node (x86_64 and aarch64 only). The number itself
 * comes from the one syscall table in host/libc.ts.
 */
export function bpfSyscallNumber(a: string = arch()): number | undefined {
  return BPF_ARCHES.has(a) ? syscallNumber('bpf', a) : undefined;
}

// ---------------------------------------------------------------- through the current host

/**
 * A block of C memory with a Buffer view over it and its address (for
 * pointers inside bpf_attr), allocated by the current host.
 */
export class CMem implements HostMem {
  readonly buf: Buffer;
  readonly addr: bigint;
  private readonly mem: HostMem;
  constructor(readonly size: number) {
    this.mem = currentHost().bpf.alloc(size);
    this.buf = this.mem.buf;
    this.addr = this.mem.addr;
  }
  /** Release the memory (the Buffer view must not be used afterwards). */
  free(): void {
    this.mem.free();
  }
}

/** BPF_MAP_CREATE; returns the new map fd. */
export function mapCreate(o: MapCreateOptions): number {
  return currentHost().bpf.mapCreate(o);
}

/** BPF_PROG_LOAD; returns the program fd. */
export function progLoad(o: ProgLoadOptions): number {
  return currentHost().bpf.progLoad(o);
}

/** BPF_OBJ_PIN: pin `fd` at `path` in bpffs. */
export function objPin(fd: number, path: string): void {
  currentHost().bpf.objPin(fd, path);
}

/** BPF_OBJ_GET: open a pinned object; returns an fd. */
export function objGet(path: string): number {
  return currentHost().bpf.objGet(path);
}

/** BPF_OBJ_GET_INFO_BY_FD for a map. */
export function mapInfo(fd: number): MapInfo {
  return currentHost().bpf.mapInfo(fd);
}

/** close(2) an fd. */
export function closeFd(fd: number): void {
  if (fd >= 0) currentHost().bpf.close(fd);
}

/** BPF_MAP_UPDATE_ELEM with keys/values already in C memory at the given addresses. Returns 0 or -errno. */
export function updateElemRaw(fd: number, key: bigint, value: bigint, flags = BPF_ANY): number {
  return currentHost().bpf.updateElem(fd, key, value, flags);
}

/** BPF_MAP_LOOKUP_ELEM; returns 0 or -errno (-ENOENT when absent). */
export function lookupElemRaw(fd: number, key: bigint, value: bigint): number {
  return currentHost().bpf.lookupElem(fd, key, value);
}

/** BPF_MAP_DELETE_ELEM; returns 0 or -errno. */
export function deleteElemRaw(fd: number, key: bigint): number {
  return currentHost().bpf.deleteElem(fd, key);
}

/** BPF_MAP_GET_NEXT_KEY (key 0n = first); returns 0 or -errno (-ENOENT at the end). */
export function nextKeyRaw(fd: number, key: bigint, next: bigint): number {
  return currentHost().bpf.nextKey(fd, key, next);
}

/**
 * BPF_MAP_UPDATE_BATCH / BPF_MAP_DELETE_BATCH / BPF_MAP_LOOKUP_BATCH.
 * Returns { ret: 0 or -errno, count: elements processed }.
 */
export function batchRaw(cmd: number, fd: number, o: BatchArgs): { ret: number; count: number } {
  return currentHost().bpf.batch(cmd, fd, o);
}

/**
 * BPF_MAP_UPDATE_BATCH off the event loop where the host can (the real one:
 * a libuv thread-pool thread), so that update batches on disjoint keys run on
 * several CPUs; elsewhere the synchronous {@link batchRaw}. Same answer.
 */
export function updateBatchAsync(fd: number, o: BatchArgs): Promise<{ ret: number; count: number }> {
  const b = currentHost().bpf;
  return b.updateBatchAsync ? b.updateBatchAsync(fd, o) : Promise.resolve(b.batch(BpfCmd.MAP_UPDATE_BATCH, fd, o));
}

/** Clock ids for {@link clockNs}. */
export const Clock = { MONOTONIC: 1, BOOTTIME: 7 } as const;

/** clock_gettime(clk) in nanoseconds. CLOCK_BOOTTIME matches bpf_ktime_get_boot_ns(). */
export function clockNs(clk: number = Clock.BOOTTIME): bigint {
  return currentHost().bpf.clockNs(clk);
}

/** Number of possible CPUs (size of per-CPU map values), from /sys/devices/system/cpu/possible. */
export function possibleCpus(text: string): number {
  let n = 0;
  for (const part of text.trim().split(',')) {
    const [a, b] = part.split('-').map(Number) as [number, number | undefined];
    n += b === undefined ? 1 : b - a + 1;
  }
  return n;
}

/** Kernel id of the object behind `fd` (map or program: both infos start with type, id). */
export function objId(fd: number): number {
  return currentHost().bpf.objId(fd);
}

/** Id of the object pinned at `path`, or undefined when nothing is pinned there. */
export function pinnedId(path: string): number | undefined {
  let fd = -1;
  try {
    fd = objGet(path);
    return objId(fd);
  } catch {
    return undefined;
  } finally {
    closeFd(fd);
  }
}

/** BPF_PROG_TEST_RUN: run program `progFd` once on `packet`; returns the XDP action. */
export function progTestRun(progFd: number, packet: Buffer): number {
  return currentHost().bpf.progTestRun(progFd, packet);
}
