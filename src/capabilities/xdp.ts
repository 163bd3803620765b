/**
 * XDP probes: bpffs, the bpf(2) syscall, BPF map types, generic and native
 * attach, and the loader tools.
 *
 * No compiler and no object file is needed: a 2-instruction XDP program
 * (`r0 = XDP_PASS; exit`) is loaded straight through bpf(2) via koffi. Its
 * kernel id is then attached with `bpftool net attach xdpgeneric|xdpdrv id N
 * dev IF` inside the namespace of the interface (bpftool re-opens the program
 * by id), checked with `ip -j link show`, and detached. The program's file
 * descriptor is closed at the end, which frees it.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import type { CapabilityEntry, CapabilityReport, XdpAttachEntry } from './schema.js';
import { attempt } from './probe-ns.js';
import { parseBpftoolVersion, parseClangVersion, parseIprouteVersion, parseProcMounts } from './parse.js';

/** `ip -batch` lines that create the veth pair the XDP attach probe uses in a throwaway namespace. */
export const XDP_SETUP = ['link add x0 type veth peer name x1', 'link set x0 up', 'link set x1 up'];

/** bpf(2) syscall numbers per Node architecture. */
const BPF_SYSCALL: Partial<Record<string, number>> = { x64: 321, arm64: 280, arm: 386, ia32: 357, riscv64: 280, ppc64: 361, s390x: 351, loong64: 280 };

const BPF_MAP_CREATE = 0;
const BPF_PROG_LOAD = 5;
const BPF_OBJ_GET_INFO_BY_FD = 15;
const BPF_MAP_UPDATE_BATCH = 26;
const BPF_PROG_TYPE_XDP = 6;
const BPF_MAP_TYPE_HASH = 1;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
const BPF_MAP_TYPE_LPM_TRIE = 11;
const BPF_F_NO_PREALLOC = 1;
const ATTR_SIZE = 128;

/** `r0 = 2 (XDP_PASS); exit` as eBPF bytecode. */
export const XDP_PASS_PROGRAM = Buffer.from([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);

function errnoName(n: number): string {
  const entry = Object.entries(osConstants.errno).find(([, v]) => v === n);
  return entry ? `${entry[0]} (${n})` : `errno ${n}`;
}

/** A minimal bpf(2) binding: enough to load a program, create maps and read an object id. */
interface BpfSys {
  call(cmd: number, attr: Buffer): { ret: number; errno: number };
  address(b: Buffer): bigint;
  close(fd: number): void;
}

async function loadBpfSys(): Promise<BpfSys | string> {
  const nr = BPF_SYSCALL[process.arch];
  if (nr === undefined) return `no bpf(2) syscall number known for architecture ${process.arch}`;
  let koffi: typeof import('koffi');
  try {
    koffi = ((await import('koffi')) as unknown as { default: typeof import('koffi') }).default;
  } catch (e) {
    return `koffi (FFI) could not be loaded: ${e instanceof Error ? e.message : String(e)}`;
  }
  try {
    const libc = koffi.load('libc.so.6');
    const syscall = libc.func('long syscall(long nr, long cmd, void *attr, unsigned long size)');
    const close = libc.func('int close(int fd)');
    return {
      call(cmd, attr) {
        const ret = Number(syscall(nr, cmd, attr, attr.length));
        return { ret, errno: ret < 0 ? koffi.errno() : 0 };
      },
      address: (b) => BigInt(koffi.address(b) as unknown as bigint | number),
      close: (fd) => {
        close(fd);
      },
    };
  } catch (e) {
    return `libc could not be bound through koffi: ${e instanceof Error ? e.message : String(e)}`;
  }
}

function bpfHint(errno: number): string {
  if (errno === 1 || errno === 13) return ' — needs CAP_BPF + CAP_NET_ADMIN (or CAP_SYS_ADMIN); see also kernel.unprivileged_bpf_disabled';
  if (errno === 38) return ' — the kernel was built without CONFIG_BPF_SYSCALL';
  return '';
}

/** Load the XDP_PASS program; returns its fd and kernel id. */
function loadXdpPass(sys: BpfSys): { fd: number; id: number } | string {
  const license = Buffer.from('GPL\0');
  const log = Buffer.alloc(4096);
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(BPF_PROG_TYPE_XDP, 0);
  attr.writeUInt32LE(XDP_PASS_PROGRAM.length / 8, 4);
  attr.writeBigUInt64LE(sys.address(XDP_PASS_PROGRAM), 8);
  attr.writeBigUInt64LE(sys.address(license), 16);
  attr.writeUInt32LE(1, 24); // log_level
  attr.writeUInt32LE(log.length, 28);
  attr.writeBigUInt64LE(sys.address(log), 32);
  attr.write('nfcap_xdp_pass', 48, 15, 'latin1');
  const r = sys.call(BPF_PROG_LOAD, attr);
  if (r.ret < 0) {
    const verifier = log.toString('utf8').replace(/\0[\s\S]*$/, '').trim();
    return `bpf(BPF_PROG_LOAD) of a 2-instruction XDP program failed: ${errnoName(r.errno)}${bpfHint(r.errno)}${verifier ? `; verifier: ${verifier.slice(0, 200)}` : ''}`;
  }
  const info = Buffer.alloc(16);
  const a2 = Buffer.alloc(ATTR_SIZE);
  a2.writeUInt32LE(r.ret, 0);
  a2.writeUInt32LE(info.length, 4);
  a2.writeBigUInt64LE(sys.address(info), 8);
  const g = sys.call(BPF_OBJ_GET_INFO_BY_FD, a2);
  if (g.ret < 0) {
    sys.close(r.ret);
    return `bpf(BPF_OBJ_GET_INFO_BY_FD) failed: ${errnoName(g.errno)}`;
  }
  return { fd: r.ret, id: info.readUInt32LE(4) };
}

function createMap(sys: BpfSys, type: number, keySize: number, valueSize: number, flags: number): number | string {
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(type, 0);
  attr.writeUInt32LE(keySize, 4);
  attr.writeUInt32LE(valueSize, 8);
  attr.writeUInt32LE(16, 12);
  attr.writeUInt32LE(flags, 16);
  const r = sys.call(BPF_MAP_CREATE, attr);
  return r.ret < 0 ? `bpf(BPF_MAP_CREATE) failed: ${errnoName(r.errno)}${bpfHint(r.errno)}` : r.ret;
}

function mapProbe(sys: BpfSys | string, type: number, keySize: number, valueSize: number, flags: number, what: string): CapabilityEntry {
  if (typeof sys === 'string') return { available: false, reason: sys };
  const fd = createMap(sys, type, keySize, valueSize, flags);
  if (typeof fd === 'string') return { available: false, reason: `${what}: ${fd}` };
  sys.close(fd);
  return { available: true };
}

function batchProbe(sys: BpfSys | string): CapabilityEntry {
  if (typeof sys === 'string') return { available: false, reason: sys };
  const fd = createMap(sys, BPF_MAP_TYPE_HASH, 4, 4, 0);
  if (typeof fd === 'string') return { available: false, reason: `hash map for the batch probe: ${fd}` };
  try {
    const keys = Buffer.from([198, 18, 0, 1]);
    const values = Buffer.from([1, 0, 0, 0]);
    const attr = Buffer.alloc(ATTR_SIZE);
    attr.writeBigUInt64LE(sys.address(keys), 16);
    attr.writeBigUInt64LE(sys.address(values), 24);
    attr.writeUInt32LE(1, 32); // count
    attr.writeUInt32LE(fd, 36); // map_fd
    const r = sys.call(BPF_MAP_UPDATE_BATCH, attr);
    if (r.ret < 0) return { available: false, reason: `bpf(BPF_MAP_UPDATE_BATCH) failed: ${errnoName(r.errno)}${r.errno === 22 ? ' (kernel older than 5.6?)' : ''}` };
    return { available: true, detail: { updated: attr.readUInt32LE(32) } };
  } finally {
    sys.close(fd);
  }
}

/** bpffs from /proc/mounts text: available when /sys/fs/bpf is a bpf filesystem. */
export function bpffsFromMounts(procMounts: string): CapabilityEntry {
  const bpf = parseProcMounts(procMounts).filter((m) => m.fsType === 'bpf').map((m) => m.mountPoint);
  if (bpf.includes('/sys/fs/bpf')) return { available: true, detail: { mountPoints: bpf } };
  const elsewhere = bpf.length ? ` (bpf filesystems are mounted at ${bpf.join(', ')})` : '';
  return {
    available: false,
    reason: `no bpf filesystem is mounted at /sys/fs/bpf${elsewhere}; pinned maps need it: mount -t bpf bpf /sys/fs/bpf`,
    detail: { mountPoints: bpf },
  };
}

interface LinkXdp {
  exists: boolean;
  mode?: number;
  progId?: number;
  error?: string;
}

async function linkXdp(iface: string, netns: string | undefined): Promise<LinkXdp> {
  const r = await attempt(['ip', '-j', 'link', 'show', 'dev', iface], { netns, timeoutMs: 5_000 });
  if (r.err) return { exists: false, error: r.val };
  try {
    const links = JSON.parse(r.val.stdout) as { xdp?: { mode?: number; prog?: { id?: number } } }[];
    const x = links[0]?.xdp;
    const out: LinkXdp = { exists: links.length > 0 };
    if (x?.mode !== undefined) out.mode = x.mode;
    if (x?.prog?.id !== undefined) out.progId = x.prog.id;
    return out;
  } catch {
    return { exists: false, error: 'could not parse `ip -j link show`' };
  }
}

async function attachOnce(mode: 'xdpgeneric' | 'xdpdrv', id: number, iface: string, netns: string | undefined, throwaway: boolean): Promise<XdpAttachEntry> {
  const want = mode === 'xdpgeneric' ? 2 : 1;
  const detail = { iface, throwaway, ...(netns ? { netns } : {}) };
  const a = await attempt(['bpftool', 'net', 'attach', mode, 'id', String(id), 'dev', iface], { netns, timeoutMs: 10_000 });
  if (a.err) return { available: false, reason: `${mode} attach on ${iface} failed: ${a.val}`, detail };
  try {
    const seen = await linkXdp(iface, netns);
    if (seen.mode !== want || seen.progId !== id) {
      return { available: false, reason: `bpftool reported success but ${iface} shows XDP mode ${seen.mode ?? 'none'} / program ${seen.progId ?? 'none'} instead of mode ${want} / program ${id}`, detail };
    }
    return { available: true, detail: { ...detail, mode: seen.mode } };
  } finally {
    await attempt(['bpftool', 'net', 'detach', mode, 'dev', iface], { netns, timeoutMs: 10_000 });
  }
}

/** Options of {@link probeXdp}. */
export interface XdpProbeOptions {
  /** Namespace of `iface` (undefined = this process's). */
  netns: string | undefined;
  /** Interface to test attach on; undefined = the throwaway veth pair. */
  iface: string | undefined;
  /** Throwaway namespace with veth x0/x1 (undefined when none could be created). */
  probeNs: string | undefined;
  probeNsReason: string | undefined;
  /** Error of the probe namespace setup (veth creation), if any. */
  probeNsSetupError?: string | undefined;
}

/** Probe everything XDP. */
export async function probeXdp(o: XdpProbeOptions): Promise<CapabilityReport['xdp']> {
  const [mounts, bpftoolV, ipV, clangV, sys] = await Promise.all([
    readFile('/proc/mounts', 'utf8').catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))),
    attempt(['bpftool', 'version'], { timeoutMs: 5_000 }),
    attempt(['ip', '-V'], { timeoutMs: 5_000 }),
    attempt(['clang', '--version'], { timeoutMs: 5_000 }),
    loadBpfSys(),
  ]);
  const bpffs: CapabilityEntry = typeof mounts === 'string' ? bpffsFromMounts(mounts) : { available: false, reason: `cannot read /proc/mounts: ${mounts.message}` };
  const bpftoolParsed = bpftoolV.ok ? parseBpftoolVersion(bpftoolV.val.stdout) : undefined;
  const bpftool: CapabilityEntry = bpftoolV.ok
    ? { available: true, detail: { version: bpftoolParsed?.version ?? null, libbpf: bpftoolParsed?.libbpf ?? null } }
    : { available: false, reason: `bpftool not usable: ${bpftoolV.val} (Debian package bpftool)` };
  const ipParsed = ipV.ok ? parseIprouteVersion(ipV.val.stdout) : {};
  const ipLibbpf: CapabilityEntry = !ipV.ok
    ? { available: false, reason: `ip not usable: ${ipV.val}` }
    : ipParsed.libbpf
      ? { available: true, detail: { iproute2: ipParsed.iproute2 ?? null, libbpf: ipParsed.libbpf } }
      : { available: false, reason: `ip (iproute2 ${ipParsed.iproute2 ?? '?'}) is not linked with libbpf: \`ip -V\` says "${ipV.val.stdout.trim()}"` };
  const clang: CapabilityEntry = clangV.ok
    ? { available: true, detail: { version: parseClangVersion(clangV.val.stdout) ?? null } }
    : { available: false, reason: `clang not usable: ${clangV.val} (only needed to rebuild bpf/ objects)` };

  const mapHash = mapProbe(sys, BPF_MAP_TYPE_HASH, 4, 4, 0, 'hash map');
  const mapLpmTrie = mapProbe(sys, BPF_MAP_TYPE_LPM_TRIE, 8, 4, BPF_F_NO_PREALLOC, 'LPM trie map');
  const mapPercpuArray = mapProbe(sys, BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 0, 'per-CPU array map');
  const mapBatch = batchProbe(sys);

  let bpfSyscall: CapabilityEntry;
  let prog: { fd: number; id: number } | undefined;
  if (typeof sys === 'string') bpfSyscall = { available: false, reason: sys };
  else {
    const p = loadXdpPass(sys);
    if (typeof p === 'string') bpfSyscall = { available: false, reason: p };
    else {
      prog = p;
      bpfSyscall = { available: true, detail: { testProgramId: p.id } };
    }
  }

  const throwaway = o.iface === undefined;
  const iface = o.iface ?? 'x0';
  const netns = throwaway ? o.probeNs : o.netns;
  const detail = { iface, throwaway, ...(netns ? { netns } : {}) };
  let generic: XdpAttachEntry;
  let native: XdpAttachEntry;
  const not = (why: string): XdpAttachEntry => ({ available: false, reason: why, detail });
  try {
    if (!prog) {
      generic = native = not(`not probed: no test program could be loaded (${bpfSyscall.reason ?? 'unknown'})`);
    } else if (!bpftool.available) {
      generic = native = not('not verified: the attach probe needs bpftool to attach the test program by id (install the Debian package bpftool)');
    } else if (throwaway && !o.probeNs) {
      generic = native = not(`not probed: no throwaway namespace for a veth pair (${o.probeNsReason ?? 'unknown'}); pass an interface to probe it instead`);
    } else {
      const before = await linkXdp(iface, netns);
      if (!before.exists) {
        const setup = throwaway && o.probeNsSetupError ? `; the throwaway veth pair could not be created: ${o.probeNsSetupError}` : '';
        generic = native = not(`interface ${iface} not found${netns ? ` in netns ${netns}` : ''}: ${before.error ?? ''}${setup}`.trim());
      } else if (before.progId !== undefined) {
        const m = before.mode;
        const busy = `not probed: ${iface} already has an XDP program (id ${before.progId}, mode ${m}); netfence does not replace another program to probe`;
        generic = m === 2 ? { available: true, reason: busy, detail: { ...detail, mode: 2 } } : not(busy);
        native = m === 1 ? { available: true, reason: busy, detail: { ...detail, mode: 1 } } : not(busy);
      } else {
        // Same device: one mode after the other.
        generic = await attachOnce('xdpgeneric', prog.id, iface, netns, throwaway);
        native = await attachOnce('xdpdrv', prog.id, iface, netns, throwaway);
      }
    }
  } finally {
    if (prog && typeof sys !== 'string') sys.close(prog.fd);
  }
  return { bpffs, bpfSyscall, generic, native, mapHash, mapLpmTrie, mapPercpuArray, mapBatch, bpftool, ipLibbpf, clang };
}
