/**
 * bpf(2) on this machine: the real implementation of the host's `bpf`
 * (`HostBpf`), calling the kernel through host/libc.ts. Everything else goes
 * through the dispatching wrappers of host/bpf.ts.
 * @module
 */
import { arch } from 'node:os';
import type { BatchArgs, HostBpf, HostMem, MapCreateOptions, MapInfo, ProgLoadOptions } from './host.js';
import { libc } from './libc.js';
import { BpfCmd, BPF_ANY, Errno, BpfSyscallError, bpfSyscallNumber } from './bpf.js';


let sysBpf: number | undefined;

const EAGAIN = 11;
/** Attempts of BPF_PROG_LOAD while it fails with EAGAIN (libbpf's count). */
const PROG_LOAD_ATTEMPTS = 5;

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

/** bpf_attr blocks of the update batches in flight on the thread pool. */
const asyncAttrs: RealMem[] = [];

/** The batch part of bpf_attr (in_batch, out_batch, keys, values, count, map_fd, elem_flags). */
function batchAttr(a: RealMem, fd: number, o: BatchArgs): void {
  a.buf.writeBigUInt64LE(o.inBatch ?? 0n, 0);
  a.buf.writeBigUInt64LE(o.outBatch ?? 0n, 8);
  a.buf.writeBigUInt64LE(o.keys, 16);
  a.buf.writeBigUInt64LE(o.values ?? 0n, 24);
  a.buf.writeUInt32LE(o.count, 32);
  a.buf.writeUInt32LE(fd, 36);
  a.buf.writeBigUInt64LE(BigInt(o.elemFlags ?? 0), 40);
}

/** BPF_OBJ_GET_INFO_BY_FD into a zeroed buffer of `size` bytes, read by `read`. */
function infoByFd<T>(fd: number, size: number, read: (b: Buffer) => T): T {
  const info = new RealMem(size);
  try {
    info.buf.fill(0);
    const a = attr();
    a.buf.writeUInt32LE(fd, 0);
    a.buf.writeUInt32LE(size, 4);
    a.buf.writeBigUInt64LE(info.addr, 8);
    call('OBJ_GET_INFO_BY_FD', BpfCmd.OBJ_GET_INFO_BY_FD, a);
    return read(info.buf);
  } finally {
    info.free();
  }
}

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
      // The verifier gives up with EAGAIN when a signal is pending (a child process of Node exiting: SIGCHLD);
      // like libbpf, load again, up to 5 attempts.
      let r = callRaw(BpfCmd.PROG_LOAD, a);
      for (let attempt = 1; r === -EAGAIN && attempt < PROG_LOAD_ATTEMPTS; attempt++) {
        log?.buf.fill(0);
        r = callRaw(BpfCmd.PROG_LOAD, a);
      }
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
    return infoByFd(fd, 96, (b) => {
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
    });
  },

  objId(fd: number): number {
    // map and program infos both start with type, id
    return infoByFd(fd, 16, (b) => b.readUInt32LE(4));
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
    batchAttr(a, fd, o);
    const ret = callRaw(cmd, a);
    return { ret, count: a.buf.readUInt32LE(32) };
  },

  updateBatchAsync(fd: number, o: BatchArgs): Promise<{ ret: number; count: number }> {
    // one bpf_attr per call in flight (the shared one belongs to the synchronous calls)
    const a = asyncAttrs.pop() ?? new RealMem(ATTR_SIZE);
    a.buf.fill(0, 0, ATTR_SIZE);
    batchAttr(a, fd, o);
    return new Promise((resolve) => {
      libc().syscallAsync(sysNr(), BpfCmd.MAP_UPDATE_BATCH, a.ptr, ATTR_SIZE, (err, r) => {
        const count = a.buf.readUInt32LE(32);
        asyncAttrs.push(a);
        // errno stays on the pool thread: an update batch is idempotent, so a
        // failed one is repeated here, where errno can be read
        if ((err === null || err === undefined) && Number(r) >= 0) resolve({ ret: 0, count });
        else resolve(realBpf.batch(BpfCmd.MAP_UPDATE_BATCH, fd, o));
      });
    });
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

