/**
 * XDP probes: bpffs, the bpf(2) syscall, BPF map types, generic and native
 * attach, and the loader tools.
 *
 * No compiler and no object file is needed: a 2-instruction XDP program
 * (`r0 = XDP_PASS; exit`) is loaded straight through bpf(2) (src/host/bpf.ts). Its
 * kernel id is then attached with `bpftool net attach xdpgeneric|xdpdrv id N
 * dev IF` inside the namespace of the interface (bpftool re-opens the program
 * by id), checked with `ip -j link show`, and detached. The program's file
 * descriptor is closed at the end, which frees it.
 * @module
 */
import { constants as osConstants } from 'node:os';
import { BpfCmd, BpfMapType, BpfProgType, BpfSyscallError, BPF_F_NO_PREALLOC } from '../host/bpf.js';
import { hostFiles } from '../host/files.js';
import { currentHost, type HostBpf } from '../host/host.js';
import { linkShowArgv, parseLinks } from '../host/links.js';
import type { CapabilityEntry, CapabilityReport, XdpAttachEntry } from './schema.js';
import { attempt } from './probe-ns.js';
import { parseBpftoolVersion, parseClangVersion, parseIprouteVersion, parseProcMounts } from './parse.js';

/** `ip -batch` lines that create the veth pair the XDP attach probe uses in a throwaway namespace. */
export const XDP_SETUP = ['link add x0 type veth peer name x1', 'link set x0 up', 'link set x1 up'];

function errnoName(n: number): string {
  const entry = Object.entries(osConstants.errno).find(([, v]) => v === n);
  return entry ? `${entry[0]} (${n})` : `errno ${n}`;
}

/** `r0 = 2 (XDP_PASS); exit` as eBPF bytecode. */
export const XDP_PASS_PROGRAM = Buffer.from([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);

/** bpf(2) through the host (src/host/bpf.ts), or why it cannot be called. */
function loadBpfSys(): HostBpf | string {
  const bpf = currentHost().bpf;
  return bpf.unavailable() ?? bpf;
}

/** The errno of a failed bpf(2) call (thrown as BpfSyscallError), else rethrow. */
function errnoOf(e: unknown): number {
  if (e instanceof BpfSyscallError) return e.errno;
  throw e;
}

function bpfHint(errno: number): string {
  if (errno === 1 || errno === 13) return ' — needs CAP_BPF + CAP_NET_ADMIN (or CAP_SYS_ADMIN); see also kernel.unprivileged_bpf_disabled';
  if (errno === 38) return ' — the kernel was built without CONFIG_BPF_SYSCALL';
  return '';
}

/** Load the XDP_PASS program; returns its fd and kernel id. */
function loadXdpPass(sys: HostBpf): { fd: number; id: number } | string {
  let fd: number;
  try {
    fd = sys.progLoad({ type: BpfProgType.XDP, insns: XDP_PASS_PROGRAM, license: 'GPL', name: 'nfcap_xdp_pass', logSize: 4096 });
  } catch (e) {
    const errno = errnoOf(e);
    const verifier = (e as BpfSyscallError).log ?? '';
    return `bpf(BPF_PROG_LOAD) of a 2-instruction XDP program failed: ${errnoName(errno)}${bpfHint(errno)}${verifier ? `; verifier: ${verifier.slice(0, 200)}` : ''}`;
  }
  try {
    return { fd, id: sys.objId(fd) };
  } catch (e) {
    sys.close(fd);
    return `bpf(BPF_OBJ_GET_INFO_BY_FD) failed: ${errnoName(errnoOf(e))}`;
  }
}

function createMap(sys: HostBpf, type: number, keySize: number, valueSize: number, flags: number): number | string {
  try {
    return sys.mapCreate({ type, keySize, valueSize, maxEntries: 16, flags, name: '' });
  } catch (e) {
    const errno = errnoOf(e);
    return `bpf(BPF_MAP_CREATE) failed: ${errnoName(errno)}${bpfHint(errno)}`;
  }
}

function mapProbe(sys: HostBpf | string, type: number, keySize: number, valueSize: number, flags: number, what: string): CapabilityEntry {
  if (typeof sys === 'string') return { available: false, reason: sys };
  const fd = createMap(sys, type, keySize, valueSize, flags);
  if (typeof fd === 'string') return { available: false, reason: `${what}: ${fd}` };
  sys.close(fd);
  return { available: true };
}

function batchProbe(sys: HostBpf | string): CapabilityEntry {
  if (typeof sys === 'string') return { available: false, reason: sys };
  const fd = createMap(sys, BpfMapType.HASH, 4, 4, 0);
  if (typeof fd === 'string') return { available: false, reason: `hash map for the batch probe: ${fd}` };
  const keys = sys.alloc(4);
  const values = sys.alloc(4);
  try {
    keys.buf.set([198, 18, 0, 1]);
    values.buf.set([1, 0, 0, 0]);
    const r = sys.batch(BpfCmd.MAP_UPDATE_BATCH, fd, { keys: keys.addr, values: values.addr, count: 1 });
    if (r.ret < 0) return { available: false, reason: `bpf(BPF_MAP_UPDATE_BATCH) failed: ${errnoName(-r.ret)}${-r.ret === 22 ? ' (kernel older than 5.6?)' : ''}` };
    return { available: true, detail: { updated: r.count } };
  } finally {
    keys.free();
    values.free();
    sys.close(fd);
  }
}

/** /proc/mounts through the host's files, or the error. */
async function readMounts(): Promise<string | Error> {
  try {
    return hostFiles().read('/proc/mounts');
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
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
  const r = await attempt(linkShowArgv(iface), { netns, timeoutMs: 5_000 });
  if (r.err) return { exists: false, error: r.val };
  const links = parseLinks(r.val.stdout);
  if (links.err) return { exists: false, error: 'could not parse `ip -j link show`' };
  const x = links.val[0]?.xdp;
  const out: LinkXdp = { exists: links.val.length > 0 };
  if (x?.mode !== undefined) out.mode = x.mode;
  if (x?.prog?.id !== undefined) out.progId = x.prog.id;
  return out;
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
    readMounts(),
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

  const mapHash = mapProbe(sys, BpfMapType.HASH, 4, 4, 0, 'hash map');
  const mapLpmTrie = mapProbe(sys, BpfMapType.LPM_TRIE, 8, 4, BPF_F_NO_PREALLOC, 'LPM trie map');
  const mapPercpuArray = mapProbe(sys, BpfMapType.PERCPU_ARRAY, 4, 8, 0, 'per-CPU array map');
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
