/**
 * The bpf(2) system call, called directly from Node through host/libc.ts (no
 * native addon to build, no helper process): map creation, program loading,
 * pinning, opening pinned objects, and batched/single element operations.
 * Used by the XDP blocklist to load a million entries in about a second, and
 * by the XDP capability probe.
 *
 * The exported functions dispatch through {@link currentHost} (`host.bpf`),
 * so a fake host can stand in for the kernel; {@link realBpf} is the real
 * implementation. Only the commands netfence needs are wrapped. Every wrapper
 * returns the raw result or throws a {@link BpfSyscallError} carrying errno;
 * callers turn expected failures into Result values.
 * @module
 */
import { arch } from 'node:os';
import { currentHost, type BatchArgs, type HostBpf, type HostMem, type MapCreateOptions, type MapInfo, type ProgLoadOptions } from './host.js';
import { libc, syscallNumber } from './libc.js';

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

// ---------------------------------------------------------------- the real implementation

let sysBpf: number | undefined;

function sysNr(): number {
  if (sysBpf === undefined) {
    const nr = bpfSyscallNumber();
    if (nr === undefined) throw new Error(`bpf(2) from Node is supported on x86_64 and aarch64 only, not ${arch()}`);
    sysBpf = nr;
  }
  return sysBpf;
}

/** malloc'd C memory with a Buffer view over it and its address. */
class RealMem implements HostMem {
  readonly ptr: unknown;
  readonly buf: Buffer;
  readonly addr: bigint;
  private freed = false;
  constructor(readonly size: number) {
    const l = libc();
    const ptr = l.malloc(Math.max(8, size));
    if (ptr === null) throw new Error(`malloc(${size}) failed`);
    this.ptr = ptr;
    this.buf = l.view(ptr, Math.max(8, size));
    this.addr = l.address(ptr);
  }
  free(): void {
    if (this.freed) return;
    this.freed = true;
    libc().free(this.ptr);
  }
}

const ATTR_SIZE = 128;
let attrMem: RealMem | undefined;
function attr(): RealMem {
  attrMem ??= new RealMem(ATTR_SIZE);
  attrMem.buf.fill(0, 0, ATTR_SIZE);
  return attrMem;
}

function call(op: string, cmd: number, a: RealMem): number {
  const l = libc();
  const nr = sysNr();
  for (;;) {
    const r = l.syscall(nr, cmd, a.ptr, ATTR_SIZE);
    if (r >= 0) return r;
    const e = l.errno();
    if (e === Errno.EINTR) continue;
    throw new BpfSyscallError(op, e);
  }
}

/** Raw call returning -errno instead of throwing (for element loops and probing). */
function callRaw(cmd: number, a: RealMem): number {
  const l = libc();
  const r = l.syscall(sysNr(), cmd, a.ptr, ATTR_SIZE);
  return r >= 0 ? r : -l.errno();
}

function cbytes(b: Buffer): RealMem {
  const m = new RealMem(b.length);
  b.copy(m.buf);
  return m;
}

function cstr(s: string): RealMem {
  return cbytes(Buffer.from(s + '\0', 'utf8'));
}

let tsMem: RealMem | undefined;

/** bpf(2) on this machine. */
export const realBpf: HostBpf = {
  syscallNumber: (a) => bpfSyscallNumber(a),
  unavailable(): string | undefined {
    if (bpfSyscallNumber() === undefined) return `bpf(2) from Node is supported on x86_64 and aarch64 only, not ${arch()}`;
    try {
      libc();
    } catch (e) {
      return `libc could not be bound through the FFI (host/libc.ts): ${e instanceof Error ? e.message : String(e)}`;
    }
    return undefined;
  },
  alloc: (size) => new RealMem(size),

  mapCreate(o: MapCreateOptions): number {
    const a = attr();
    a.buf.writeUInt32LE(o.type, 0);
    a.buf.writeUInt32LE(o.keySize, 4);
    a.buf.writeUInt32LE(o.valueSize, 8);
    a.buf.writeUInt32LE(o.maxEntries, 12);
    a.buf.writeUInt32LE(o.flags ?? 0, 16);
    // inner_map_fd @20, numa_node @24, map_name[16] @28
    a.buf.write(o.name.slice(0, 15), 28, 'ascii');
    return call('MAP_CREATE', BpfCmd.MAP_CREATE, a);
  },

  progLoad(o: ProgLoadOptions): number {
    const insns = cbytes(o.insns);
    const license = cstr(o.license);
    const logSize = o.logSize ?? 0;
    const log = logSize > 0 ? new RealMem(logSize) : undefined;
    try {
      log?.buf.fill(0);
      const a = attr();
      a.buf.writeUInt32LE(o.type, 0);
      a.buf.writeUInt32LE(o.insns.length / 8, 4);
      a.buf.writeBigUInt64LE(insns.addr, 8);
      a.buf.writeBigUInt64LE(license.addr, 16);
      if (log) {
        a.buf.writeUInt32LE(1, 24); // log_level
        a.buf.writeUInt32LE(logSize, 28);
        a.buf.writeBigUInt64LE(log.addr, 32);
      }
      a.buf.write(o.name.slice(0, 15), 48, 15, 'latin1');
      const r = callRaw(BpfCmd.PROG_LOAD, a);
      if (r >= 0) return r;
      const text = log ? log.buf.subarray(0, logSize).toString('utf8').replace(/\0[\s\S]*$/, '').trim() : '';
      throw new BpfSyscallError('PROG_LOAD', -r, text || undefined);
    } finally {
      insns.free();
      license.free();
      log?.free();
    }
  },

  objPin(fd: number, path: string): void {
    const p = cstr(path);
    try {
      const a = attr();
      a.buf.writeBigUInt64LE(p.addr, 0);
      a.buf.writeUInt32LE(fd, 8);
      call('OBJ_PIN', BpfCmd.OBJ_PIN, a);
    } finally {
      p.free();
    }
  },

  objGet(path: string): number {
    const p = cstr(path);
    try {
      const a = attr();
      a.buf.writeBigUInt64LE(p.addr, 0);
      return call('OBJ_GET', BpfCmd.OBJ_GET, a);
    } finally {
      p.free();
    }
  },

  mapInfo(fd: number): MapInfo {
    const info = new RealMem(96);
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
  },

  objId(fd: number): number {
    const info = new RealMem(16);
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
  },

  close(fd: number): void {
    if (fd >= 0) libc().close(fd);
  },

  updateElem(fd: number, key: bigint, value: bigint, flags = BPF_ANY): number {
    const a = attr();
    a.buf.writeUInt32LE(fd, 0);
    a.buf.writeBigUInt64LE(key, 8);
    a.buf.writeBigUInt64LE(value, 16);
    a.buf.writeBigUInt64LE(BigInt(flags), 24);
    return callRaw(BpfCmd.MAP_UPDATE_ELEM, a);
  },

  lookupElem(fd: number, key: bigint, value: bigint): number {
    const a = attr();
    a.buf.writeUInt32LE(fd, 0);
    a.buf.writeBigUInt64LE(key, 8);
    a.buf.writeBigUInt64LE(value, 16);
    return callRaw(BpfCmd.MAP_LOOKUP_ELEM, a);
  },

  deleteElem(fd: number, key: bigint): number {
    const a = attr();
    a.buf.writeUInt32LE(fd, 0);
    a.buf.writeBigUInt64LE(key, 8);
    return callRaw(BpfCmd.MAP_DELETE_ELEM, a);
  },

  nextKey(fd: number, key: bigint, next: bigint): number {
    const a = attr();
    a.buf.writeUInt32LE(fd, 0);
    a.buf.writeBigUInt64LE(key, 8);
    a.buf.writeBigUInt64LE(next, 16);
    return callRaw(BpfCmd.MAP_GET_NEXT_KEY, a);
  },

  batch(cmd: number, fd: number, o: BatchArgs): { ret: number; count: number } {
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
  },

  progTestRun(progFd: number, packet: Buffer): number {
    const data = new RealMem(packet.length);
    const out = new RealMem(packet.length + 256);
    try {
      packet.copy(data.buf);
      const a = attr();
      a.buf.writeUInt32LE(progFd, 0);
      a.buf.writeUInt32LE(packet.length, 8);
      a.buf.writeUInt32LE(packet.length + 256, 12);
      a.buf.writeBigUInt64LE(data.addr, 16);
      a.buf.writeBigUInt64LE(out.addr, 24);
      a.buf.writeUInt32LE(1, 32);
      call('PROG_TEST_RUN', BpfCmd.PROG_TEST_RUN, a);
      return a.buf.readUInt32LE(4);
    } finally {
      data.free();
      out.free();
    }
  },

  clockNs(clk: number): bigint {
    tsMem ??= new RealMem(16);
    if (libc().clock_gettime(clk, tsMem.ptr) !== 0) throw new Error(`clock_gettime(${clk}) failed`);
    return tsMem.buf.readBigInt64LE(0) * 1_000_000_000n + tsMem.buf.readBigInt64LE(8);
  },
};

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
