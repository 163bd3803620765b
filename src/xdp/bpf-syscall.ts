/**
 * The bpf(2) system call, called directly from Node through koffi (no native
 * addon to build, no helper process): map creation, pinning, opening pinned
 * objects, and batched/single element operations. Used by the XDP blocklist
 * to load a million entries in about a second.
 *
 * Only the commands netfence needs are wrapped. Every wrapper returns the raw
 * result or throws a {@link BpfSyscallError} carrying errno; callers turn
 * expected failures into Result values.
 * @module
 */
import { arch } from 'node:os';
import koffi from 'koffi';

/** bpf(2) command numbers (enum bpf_cmd, include/uapi/linux/bpf.h). */
export const BpfCmd = {
  MAP_CREATE: 0,
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  MAP_GET_NEXT_KEY: 4,
  OBJ_PIN: 6,
  OBJ_GET: 7,
  OBJ_GET_INFO_BY_FD: 15,
  MAP_LOOKUP_BATCH: 24,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
} as const;

/** Map types used by netfence (enum bpf_map_type). */
export const BpfMapType = { HASH: 1, ARRAY: 2, PERCPU_ARRAY: 6, LPM_TRIE: 11 } as const;

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
  ) {
    super(`bpf(${op}) failed: errno ${errno} (${errnoName(errno)})`);
    this.name = 'BpfSyscallError';
  }
}

function errnoName(e: number): string {
  for (const [k, v] of Object.entries(Errno)) if (v === e) return k;
  return 'see errno(3)';
}

/** SYS_bpf for the running architecture, or undefined when unsupported. */
export function bpfSyscallNumber(a: string = arch()): number | undefined {
  if (a === 'x64') return 321;
  if (a === 'arm64') return 280;
  return undefined;
}

interface Libc {
  syscall: (nr: number, cmd: number, attr: unknown, size: number) => number;
  malloc: (n: number) => unknown;
  free: (p: unknown) => void;
  close: (fd: number) => number;
  clock_gettime: (clk: number, ts: unknown) => number;
}

let libc: Libc | undefined;
let sysBpf = 0;

function lib(): Libc {
  if (libc) return libc;
  const nr = bpfSyscallNumber();
  if (nr === undefined) throw new Error(`bpf(2) from Node is supported on x86_64 and aarch64 only, not ${arch()}`);
  sysBpf = nr;
  const l = koffi.load('libc.so.6');
  libc = {
    syscall: l.func('long syscall(long nr, long cmd, void *attr, unsigned long size)') as Libc['syscall'],
    malloc: l.func('void *malloc(size_t size)') as Libc['malloc'],
    free: l.func('void free(void *ptr)') as Libc['free'],
    close: l.func('int close(int fd)') as Libc['close'],
    clock_gettime: l.func('int clock_gettime(int clk, void *ts)') as Libc['clock_gettime'],
  };
  return libc;
}

/** A block of C memory with a Buffer view over it and its address (for pointers inside bpf_attr). */
export class CMem {
  readonly ptr: unknown;
  readonly buf: Buffer;
  readonly addr: bigint;
  private freed = false;
  constructor(readonly size: number) {
    const l = lib();
    const ptr = l.malloc(Math.max(8, size));
    if (ptr === null) throw new Error(`malloc(${size}) failed`);
    this.ptr = ptr;
    this.buf = Buffer.from(koffi.view(ptr, Math.max(8, size)));
    this.addr = koffi.address(ptr);
  }
  /** Release the memory (the Buffer view must not be used afterwards). */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    lib().free(this.ptr);
  }
}

const ATTR_SIZE = 128;
let attrMem: CMem | undefined;
function attr(): CMem {
  attrMem ??= new CMem(ATTR_SIZE);
  attrMem.buf.fill(0, 0, ATTR_SIZE);
  return attrMem;
}

function call(op: string, cmd: number, a: CMem): number {
  const l = lib();
  for (;;) {
    const r = Number(l.syscall(sysBpf, cmd, a.ptr, ATTR_SIZE));
    if (r >= 0) return r;
    const e = koffi.errno();
    if (e === Errno.EINTR) continue;
    throw new BpfSyscallError(op, e);
  }
}

/** Raw call returning -errno instead of throwing (for element loops and probing). */
function callRaw(cmd: number, a: CMem): number {
  const l = lib();
  const r = Number(l.syscall(sysBpf, cmd, a.ptr, ATTR_SIZE));
  return r >= 0 ? r : -koffi.errno();
}

function cstr(s: string): CMem {
  const b = Buffer.from(s + '\0', 'utf8');
  const m = new CMem(b.length);
  b.copy(m.buf);
  return m;
}

/** Options for {@link mapCreate}. */
export interface MapCreateOptions {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  name: string;
}

/** BPF_MAP_CREATE; returns the new map fd. */
export function mapCreate(o: MapCreateOptions): number {
  const a = attr();
  a.buf.writeUInt32LE(o.type, 0);
  a.buf.writeUInt32LE(o.keySize, 4);
  a.buf.writeUInt32LE(o.valueSize, 8);
  a.buf.writeUInt32LE(o.maxEntries, 12);
  a.buf.writeUInt32LE(o.flags ?? 0, 16);
  // inner_map_fd @20, numa_node @24, map_name[16] @28
  a.buf.write(o.name.slice(0, 15), 28, 'ascii');
  return call('MAP_CREATE', BpfCmd.MAP_CREATE, a);
}

/** BPF_OBJ_PIN: pin `fd` at `path` in bpffs. */
export function objPin(fd: number, path: string): void {
  const p = cstr(path);
  try {
    const a = attr();
    a.buf.writeBigUInt64LE(p.addr, 0);
    a.buf.writeUInt32LE(fd, 8);
    call('OBJ_PIN', BpfCmd.OBJ_PIN, a);
  } finally {
    p.free();
  }
}

/** BPF_OBJ_GET: open a pinned object; returns an fd. */
export function objGet(path: string): number {
  const p = cstr(path);
  try {
    const a = attr();
    a.buf.writeBigUInt64LE(p.addr, 0);
    return call('OBJ_GET', BpfCmd.OBJ_GET, a);
  } finally {
    p.free();
  }
}

/** What the kernel says about a map. */
export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

/** BPF_OBJ_GET_INFO_BY_FD for a map. */
export function mapInfo(fd: number): MapInfo {
  const info = new CMem(96);
  try {
    info.buf.fill(0);
    const a = attr();
    a.buf.writeUInt32LE(fd, 0);
    a.buf.writeUInt32LE(96, 4);
    a.buf.writeBigUInt64LE(info.addr, 8);
    call('OBJ_GET_INFO_BY_FD', BpfCmd.OBJ_GET_INFO_BY_FD, a);
    const b = info.buf;
    const nameRaw = b.subarray(24, 40);
    const z = nameRaw.indexOf(0);
    return {
      type: b.readUInt32LE(0),
      id: b.readUInt32LE(4),
      keySize: b.readUInt32LE(8),
      valueSize: b.readUInt32LE(12),
      maxEntries: b.readUInt32LE(16),
      flags: b.readUInt32LE(20),
      name: nameRaw.subarray(0, z < 0 ? 16 : z).toString('ascii'),
    };
  } finally {
    info.free();
  }
}

/** close(2) an fd. */
export function closeFd(fd: number): void {
  if (fd >= 0) lib().close(fd);
}

/** BPF_MAP_UPDATE_ELEM with keys/values already in C memory at the given addresses. Returns 0 or -errno. */
export function updateElemRaw(fd: number, key: bigint, value: bigint, flags = BPF_ANY): number {
  const a = attr();
  a.buf.writeUInt32LE(fd, 0);
  a.buf.writeBigUInt64LE(key, 8);
  a.buf.writeBigUInt64LE(value, 16);
  a.buf.writeBigUInt64LE(BigInt(flags), 24);
  return callRaw(BpfCmd.MAP_UPDATE_ELEM, a);
}

/** BPF_MAP_LOOKUP_ELEM; returns 0 or -errno (-ENOENT when absent). */
export function lookupElemRaw(fd: number, key: bigint, value: bigint): number {
  const a = attr();
  a.buf.writeUInt32LE(fd, 0);
  a.buf.writeBigUInt64LE(key, 8);
  a.buf.writeBigUInt64LE(value, 16);
  return callRaw(BpfCmd.MAP_LOOKUP_ELEM, a);
}

/** BPF_MAP_DELETE_ELEM; returns 0 or -errno. */
export function deleteElemRaw(fd: number, key: bigint): number {
  const a = attr();
  a.buf.writeUInt32LE(fd, 0);
  a.buf.writeBigUInt64LE(key, 8);
  return callRaw(BpfCmd.MAP_DELETE_ELEM, a);
}

/** BPF_MAP_GET_NEXT_KEY (key 0n = first); returns 0 or -errno (-ENOENT at the end). */
export function nextKeyRaw(fd: number, key: bigint, next: bigint): number {
  const a = attr();
  a.buf.writeUInt32LE(fd, 0);
  a.buf.writeBigUInt64LE(key, 8);
  a.buf.writeBigUInt64LE(next, 16);
  return callRaw(BpfCmd.MAP_GET_NEXT_KEY, a);
}

/**
 * BPF_MAP_UPDATE_BATCH / BPF_MAP_DELETE_BATCH / BPF_MAP_LOOKUP_BATCH.
 * Returns { ret: 0 or -errno, count: elements processed, outBatch }.
 */
export function batchRaw(cmd: number, fd: number, o: { inBatch?: bigint; outBatch?: bigint; keys: bigint; values?: bigint; count: number; elemFlags?: number }): { ret: number; count: number } {
  const a = attr();
  a.buf.writeBigUInt64LE(o.inBatch ?? 0n, 0);
  a.buf.writeBigUInt64LE(o.outBatch ?? 0n, 8);
  a.buf.writeBigUInt64LE(o.keys, 16);
  a.buf.writeBigUInt64LE(o.values ?? 0n, 24);
  a.buf.writeUInt32LE(o.count, 32);
  a.buf.writeUInt32LE(fd, 36);
  a.buf.writeBigUInt64LE(BigInt(o.elemFlags ?? 0), 40);
  const ret = callRaw(cmd, a);
  return { ret, count: a.buf.readUInt32LE(32) };
}

/** Clock ids for {@link clockNs}. */
export const Clock = { MONOTONIC: 1, BOOTTIME: 7 } as const;

let tsMem: CMem | undefined;
/** clock_gettime(clk) in nanoseconds. CLOCK_BOOTTIME matches bpf_ktime_get_boot_ns(). */
export function clockNs(clk: number = Clock.BOOTTIME): bigint {
  tsMem ??= new CMem(16);
  if (lib().clock_gettime(clk, tsMem.ptr) !== 0) throw new Error(`clock_gettime(${clk}) failed`);
  return tsMem.buf.readBigInt64LE(0) * 1_000_000_000n + tsMem.buf.readBigInt64LE(8);
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
  const info = new CMem(16);
  try {
    info.buf.fill(0);
    const a = attr();
    a.buf.writeUInt32LE(fd, 0);
    a.buf.writeUInt32LE(16, 4);
    a.buf.writeBigUInt64LE(info.addr, 8);
    call('OBJ_GET_INFO_BY_FD', BpfCmd.OBJ_GET_INFO_BY_FD, a);
    return info.buf.readUInt32LE(4);
  } finally {
    info.free();
  }
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
  const data = new CMem(packet.length);
  const out = new CMem(packet.length + 256);
  try {
    packet.copy(data.buf);
    const a = attr();
    a.buf.writeUInt32LE(progFd, 0);
    a.buf.writeUInt32LE(packet.length, 8);
    a.buf.writeUInt32LE(packet.length + 256, 12);
    a.buf.writeBigUInt64LE(data.addr, 16);
    a.buf.writeBigUInt64LE(out.addr, 24);
    a.buf.writeUInt32LE(1, 32);
    call('PROG_TEST_RUN', 10, a);
    return a.buf.readUInt32LE(4);
  } finally {
    data.free();
    out.free();
  }
}
