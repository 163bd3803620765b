/**
 * bpf(2) for `FakeHost`: maps in memory (hash, array, per-CPU array, LPM trie
 * with longest-prefix lookups), programs, pins in the fake file system, fds,
 * and the `HostMem` blocks whose addresses the bpf_attr-style calls pass.
 * Element and batch operations answer with the kernel's errno values
 * (ENOENT, EEXIST, E2BIG, EBADF). A program's verdict for
 * `progTestRun` comes from a test-supplied function (default XDP_PASS).
 * @module
 */
import { BPF_ANY, BpfCmd, BpfMapType, BpfSyscallError, Errno } from './bpf.js';
import type { FakeFiles } from './fake-files.js';
import { fsError } from './fake-files.js';
import type { BatchArgs, HostBpf, HostMem, MapCreateOptions, MapInfo, ProgLoadOptions } from './host.js';

/** A map of the fake kernel. */
export interface FakeMap {
  kind: 'map';
  id: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  /** Entries by key (hex). */
  entries: Map<string, Buffer>;
}
/** A program of the fake kernel. */
export interface FakeProg {
  kind: 'prog';
  id: number;
  type: number;
  name: string;
  insns: Buffer;
}

const BPF_NOEXIST = 1;
const BPF_EXIST = 2;
const round8 = (n: number): number => (n + 7) & ~7;

/** In-memory bpf(2). */
export class FakeBpf implements HostBpf {
  private nextAddr = 0x7f00_0000_0000n;
  private readonly blocks = new Map<bigint, Buffer>();
  private readonly fds = new Map<number, FakeMap | FakeProg>();
  private nextFd = 100;
  private nextId = 1;
  /** Verdict of `progTestRun` (XDP_PASS = 2 by default). */
  testRun: (prog: FakeProg, packet: Buffer) => number = () => 2;
  /** Set to make `unavailable()` report a reason (a host without bpf(2) from Node). */
  unavailableReason: string | undefined;
  /** Every bpf(2) command issued, by name, for assertions. */
  readonly calls: string[] = [];

  constructor(
    private readonly files: FakeFiles,
    /** Number of possible CPUs (per-CPU values are this many slots). */
    readonly cpus = 2,
    private readonly clock: () => bigint = () => process.hrtime.bigint(),
  ) {}

  syscallNumber(): number | undefined {
    return 321;
  }
  unavailable(): string | undefined {
    return this.unavailableReason;
  }

  alloc(size: number): HostMem {
    const buf = Buffer.alloc(Math.max(1, size));
    const addr = this.nextAddr;
    this.nextAddr += BigInt(round8(Math.max(1, size)) + 64);
    this.blocks.set(addr, buf);
    return { size, buf, addr, free: () => void this.blocks.delete(addr) };
  }

  /** `len` bytes at `addr` (a view into the block that holds them). */
  private mem(addr: bigint, len: number, op: string): Buffer {
    for (const [base, buf] of this.blocks) {
      if (addr >= base && addr + BigInt(len) <= base + BigInt(buf.length)) return buf.subarray(Number(addr - base), Number(addr - base) + len);
    }
    throw new BpfSyscallError(op, Errno.EFAULT);
  }

  private fd(fd: number, op: string): FakeMap | FakeProg {
    const o = this.fds.get(fd);
    if (!o) throw new BpfSyscallError(op, Errno.EBADF);
    return o;
  }
  private map(fd: number, op: string): FakeMap {
    const o = this.fd(fd, op);
    if (o.kind !== 'map') throw new BpfSyscallError(op, Errno.EINVAL);
    return o;
  }
  private open(o: FakeMap | FakeProg): number {
    const fd = this.nextFd++;
    this.fds.set(fd, o);
    return fd;
  }
  /** The map behind an fd (tests). */
  mapOf(fd: number): FakeMap | undefined {
    const o = this.fds.get(fd);
    return o?.kind === 'map' ? o : undefined;
  }
  /** Open fds (a leak check for tests). */
  openFds(): number {
    return this.fds.size;
  }

  /** Per-lookup value size: per-CPU maps hold one 8-aligned slot per CPU. */
  private valueLen(m: FakeMap): number {
    return m.type === BpfMapType.PERCPU_ARRAY ? round8(m.valueSize) * this.cpus : m.valueSize;
  }

  mapCreate(o: MapCreateOptions): number {
    this.calls.push('MAP_CREATE');
    if (o.keySize <= 0 || o.valueSize <= 0 || o.maxEntries <= 0) throw new BpfSyscallError('MAP_CREATE', Errno.EINVAL);
    const m: FakeMap = { kind: 'map', id: this.nextId++, type: o.type, keySize: o.keySize, valueSize: o.valueSize, maxEntries: o.maxEntries, flags: o.flags ?? 0, name: o.name.slice(0, 15), entries: new Map() };
    if (o.type === BpfMapType.ARRAY || o.type === BpfMapType.PERCPU_ARRAY) {
      for (let i = 0; i < o.maxEntries; i++) {
        const k = Buffer.alloc(o.keySize);
        k.writeUInt32LE(i, 0);
        m.entries.set(k.toString('hex'), Buffer.alloc(this.valueLen(m)));
      }
    }
    return this.open(m);
  }

  progLoad(o: ProgLoadOptions): number {
    this.calls.push('PROG_LOAD');
    if (o.insns.length === 0 || o.insns.length % 8 !== 0) throw new BpfSyscallError('PROG_LOAD', Errno.EINVAL, 'fake verifier: empty or misaligned program');
    return this.open({ kind: 'prog', id: this.nextId++, type: o.type, name: o.name.slice(0, 15), insns: Buffer.from(o.insns) });
  }

  /** Load a program and pin it, as `bpftool prog load` does; returns it. */
  loadPinned(path: string, name: string, type: number): FakeProg {
    const p: FakeProg = { kind: 'prog', id: this.nextId++, type, name, insns: Buffer.alloc(16) };
    this.files.pin(path, p);
    return p;
  }

  objPin(fd: number, path: string): void {
    this.calls.push('OBJ_PIN');
    const o = this.fd(fd, 'OBJ_PIN');
    try {
      this.files.pin(path, o);
    } catch (e) {
      throw new BpfSyscallError('OBJ_PIN', (e as NodeJS.ErrnoException).code === 'EEXIST' ? Errno.EEXIST : Errno.ENOENT);
    }
  }

  objGet(path: string): number {
    this.calls.push('OBJ_GET');
    const n = this.files.node(path);
    if (!n) throw new BpfSyscallError('OBJ_GET', Errno.ENOENT);
    if (n.type !== 'pin') throw new BpfSyscallError('OBJ_GET', Errno.EPERM);
    return this.open(n.object as FakeMap | FakeProg);
  }

  mapInfo(fd: number): MapInfo {
    const m = this.map(fd, 'OBJ_GET_INFO_BY_FD');
    return { type: m.type, id: m.id, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags, name: m.name };
  }

  objId(fd: number): number {
    return this.fd(fd, 'OBJ_GET_INFO_BY_FD').id;
  }

  close(fd: number): void {
    this.fds.delete(fd);
  }

  /** The entry key matching `key` (LPM tries: the longest stored prefix containing it). */
  private find(m: FakeMap, key: Buffer): string | undefined {
    const hex = key.toString('hex');
    if (m.type !== BpfMapType.LPM_TRIE) return m.entries.has(hex) ? hex : undefined;
    const want = key.readUInt32LE(0);
    const data = key.subarray(4);
    let best: { hex: string; len: number } | undefined;
    for (const k of m.entries.keys()) {
      const kb = Buffer.from(k, 'hex');
      const len = kb.readUInt32LE(0);
      if (len > want || (best && len <= best.len)) continue;
      if (prefixMatch(kb.subarray(4), data, len)) best = { hex: k, len };
    }
    return best?.hex;
  }

  private update(m: FakeMap, key: Buffer, value: Buffer, flags: number): number {
    if (m.type === BpfMapType.ARRAY || m.type === BpfMapType.PERCPU_ARRAY) {
      const i = key.readUInt32LE(0);
      if (i >= m.maxEntries) return -Errno.E2BIG;
      if (flags === BPF_NOEXIST) return -Errno.EEXIST;
    }
    const hex = key.toString('hex');
    const has = m.entries.has(hex);
    if (flags === BPF_NOEXIST && has) return -Errno.EEXIST;
    if (flags === BPF_EXIST && !has) return -Errno.ENOENT;
    if (!has && m.entries.size >= m.maxEntries) return -Errno.E2BIG;
    m.entries.set(hex, Buffer.from(value));
    return 0;
  }

  updateElem(fd: number, key: bigint, value: bigint, flags = BPF_ANY): number {
    const m = this.mapOf(fd);
    if (!m) return -Errno.EBADF;
    return this.update(m, this.mem(key, m.keySize, 'MAP_UPDATE_ELEM'), this.mem(value, this.valueLen(m), 'MAP_UPDATE_ELEM'), flags);
  }

  lookupElem(fd: number, key: bigint, value: bigint): number {
    const m = this.mapOf(fd);
    if (!m) return -Errno.EBADF;
    const k = this.find(m, this.mem(key, m.keySize, 'MAP_LOOKUP_ELEM'));
    if (k === undefined) return -Errno.ENOENT;
    m.entries.get(k)!.copy(this.mem(value, this.valueLen(m), 'MAP_LOOKUP_ELEM'));
    return 0;
  }

  deleteElem(fd: number, key: bigint): number {
    const m = this.mapOf(fd);
    if (!m) return -Errno.EBADF;
    if (m.type === BpfMapType.ARRAY || m.type === BpfMapType.PERCPU_ARRAY) return -Errno.EINVAL;
    return m.entries.delete(this.mem(key, m.keySize, 'MAP_DELETE_ELEM').toString('hex')) ? 0 : -Errno.ENOENT;
  }

  nextKey(fd: number, key: bigint, next: bigint): number {
    const m = this.mapOf(fd);
    if (!m) return -Errno.EBADF;
    const keys = [...m.entries.keys()];
    let i = 0;
    if (key !== 0n) {
      const at = keys.indexOf(this.mem(key, m.keySize, 'MAP_GET_NEXT_KEY').toString('hex'));
      i = at < 0 ? 0 : at + 1;
    }
    if (i >= keys.length) return -Errno.ENOENT;
    Buffer.from(keys[i]!, 'hex').copy(this.mem(next, m.keySize, 'MAP_GET_NEXT_KEY'));
    return 0;
  }

  batch(cmd: number, fd: number, o: BatchArgs): { ret: number; count: number } {
    const m = this.mapOf(fd);
    if (!m) return { ret: -Errno.EBADF, count: 0 };
    const vl = this.valueLen(m);
    if (cmd === BpfCmd.MAP_UPDATE_BATCH) {
      for (let i = 0; i < o.count; i++) {
        const r = this.update(m, this.mem(o.keys + BigInt(i * m.keySize), m.keySize, 'MAP_UPDATE_BATCH'), this.mem((o.values ?? 0n) + BigInt(i * vl), vl, 'MAP_UPDATE_BATCH'), o.elemFlags ?? 0);
        if (r < 0) return { ret: r, count: i };
      }
      return { ret: 0, count: o.count };
    }
    if (cmd === BpfCmd.MAP_DELETE_BATCH) {
      if (m.type === BpfMapType.ARRAY || m.type === BpfMapType.PERCPU_ARRAY) return { ret: -Errno.EINVAL, count: 0 };
      for (let i = 0; i < o.count; i++) {
        if (!m.entries.delete(this.mem(o.keys + BigInt(i * m.keySize), m.keySize, 'MAP_DELETE_BATCH').toString('hex'))) return { ret: -Errno.ENOENT, count: i };
      }
      return { ret: 0, count: o.count };
    }
    if (cmd === BpfCmd.MAP_LOOKUP_BATCH) {
      // the batch token is the index of the next entry (u32 in the first 4 bytes of out_batch)
      const start = o.inBatch ? this.mem(o.inBatch, 4, 'MAP_LOOKUP_BATCH').readUInt32LE(0) : 0;
      const all = [...m.entries];
      const part = all.slice(start, start + o.count);
      part.forEach(([k, v], i) => {
        Buffer.from(k, 'hex').copy(this.mem(o.keys + BigInt(i * m.keySize), m.keySize, 'MAP_LOOKUP_BATCH'));
        v.copy(this.mem((o.values ?? 0n) + BigInt(i * vl), vl, 'MAP_LOOKUP_BATCH'));
      });
      if (o.outBatch) this.mem(o.outBatch, 4, 'MAP_LOOKUP_BATCH').writeUInt32LE(start + part.length, 0);
      return { ret: start + part.length >= all.length ? -Errno.ENOENT : 0, count: part.length };
    }
    return { ret: -Errno.EINVAL, count: 0 };
  }

  progTestRun(progFd: number, packet: Buffer): number {
    const p = this.fd(progFd, 'PROG_TEST_RUN');
    if (p.kind !== 'prog') throw new BpfSyscallError('PROG_TEST_RUN', Errno.EINVAL);
    return this.testRun(p, packet);
  }

  clockNs(): bigint {
    return this.clock();
  }
}

function prefixMatch(a: Buffer, b: Buffer, len: number): boolean {
  const full = len >> 3;
  if (a.subarray(0, full).compare(b.subarray(0, full)) !== 0) return false;
  const rest = len & 7;
  if (!rest) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a[full] ?? 0) & mask) === ((b[full] ?? 0) & mask);
}

