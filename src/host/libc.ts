/**
 * The one native boundary: every libc function netfence calls from Node is
 * bound here, through koffi (prebuilt FFI, no native addon to compile, no
 * helper process). Nothing else in netfence loads koffi.
 *
 * - bpf(2) through `syscall()`, with C memory (`malloc`/`free`, views and
 *   addresses) for the pointers inside `bpf_attr` (used by host/bpf.ts);
 * - `pipe2()` for real stdin pipes (host/run.ts);
 * - `flock()` for the cross-process namespace lock (plan/lock.ts);
 * - `setns()` to open a netlink socket inside a network namespace (host/nft-elements.ts);
 * - sockets and `poll()` for the NFQUEUE reader (dpi/nfqueue/socket.ts);
 * - `clock_gettime()` (CLOCK_BOOTTIME matches bpf_ktime_get_boot_ns()).
 *
 * koffi is loaded lazily (importing this module loads nothing), once per
 * process or worker; `require()` avoids ESM/CJS interop differences between
 * tsx, vitest and the tsup builds.
 * @module
 */
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');

let koffiModule: Koffi | undefined;

/** The koffi module (loaded on first use; throws when it cannot be loaded). */
export function koffi(): Koffi {
  if (!koffiModule) {
    const require = createRequire(import.meta.url);
    koffiModule = require('koffi') as Koffi;
  }
  return koffiModule;
}

/**
 * System call numbers per Node architecture (`process.arch`): the one table.
 * Callers decide which architectures they support on top of it (host/bpf.ts
 * encodes `bpf_attr` for 64-bit little-endian machines).
 */
export const SYSCALL_NUMBERS = {
  bpf: { x64: 321, arm64: 280, arm: 386, ia32: 357, riscv64: 280, ppc64: 361, s390x: 351, loong64: 280 } as Readonly<Partial<Record<string, number>>>,
} as const;

/** The number of system call `name` on `arch` (default: this process's), or undefined when unknown. */
export function syscallNumber(name: keyof typeof SYSCALL_NUMBERS, arch: string = process.arch): number | undefined {
  return SYSCALL_NUMBERS[name][arch];
}

/** libc functions netfence calls. Pointers are Node Buffers or koffi pointers from `malloc`. */
export interface Libc {
  /** `long syscall(long nr, long a, void *b, unsigned long c)`: the bpf(2) shape. */
  syscall(nr: number, a: number, b: unknown, c: number): number;
  /** The same on a libuv thread-pool thread (bpf(2) batches in parallel); errno is not carried back: redo a failure synchronously. */
  syscallAsync(nr: number, a: number, b: unknown, c: number, cb: (err: unknown, r: unknown) => void): void;
  malloc(size: number): unknown;
  free(ptr: unknown): void;
  close(fd: number): number;
  clock_gettime(clk: number, ts: unknown): number;
  /** `pipe2(int fds[2], int flags)`: fills `fds`. */
  pipe2(fds: number[], flags: number): number;
  flock(fd: number, op: number): number;
  /** `setns(int fd, int nstype)`: move the calling thread into the namespace behind `fd`. */
  setns(fd: number, nstype: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  getsockname(fd: number, addr: Buffer, len: Buffer): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, len: Buffer): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  /** poll() on pollfds (8 bytes each: fd, events, revents). */
  poll(fds: Buffer, nfds: number, timeoutMs: number): number;
  /** poll() on a libuv thread-pool thread: does not block the event loop. */
  pollAsync(fds: Buffer, nfds: number, timeoutMs: number, cb: (err: unknown, r: number) => void): void;
  /** errno of the last failed call on this thread. */
  errno(): number;
  /** strerror(3) text for an errno. */
  strerror(errno: number): string;
  /** A Buffer over `len` bytes of C memory at `ptr` (no copy). */
  view(ptr: unknown, len: number): Buffer;
  /** The address of C memory or of a Buffer's bytes. */
  address(ptr: unknown): bigint;
}

let cached: Libc | undefined;

/** Bind libc (once per process or worker). Throws when koffi or libc cannot be loaded. */
export function libc(): Libc {
  if (cached) return cached;
  const k = koffi();
  const lib = k.load('libc.so.6');
  const syscall = lib.func('long syscall(long nr, long cmd, void *attr, unsigned long size)');
  const malloc = lib.func('void *malloc(size_t size)');
  const free = lib.func('void free(void *ptr)');
  const close = lib.func('int close(int fd)');
  const clockGettime = lib.func('int clock_gettime(int clk, void *ts)');
  const pipe2 = lib.func('int pipe2(_Out_ int *fds, int flags)');
  const flock = lib.func('int flock(int fd, int op)');
  const setns = lib.func('int setns(int fd, int nstype)');
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const bind = lib.func('int bind(int fd, void *addr, uint32_t len)');
  const getsockname = lib.func('int getsockname(int fd, void *addr, void *len)');
  const setsockopt = lib.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)');
  const getsockopt = lib.func('int getsockopt(int fd, int level, int name, void *value, void *len)');
  const send = lib.func('intptr_t send(int fd, void *buf, size_t len, int flags)');
  const recv = lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
  const poll = lib.func('int poll(void *fds, unsigned long nfds, int timeout)');
  const strerror = lib.func('const char *strerror(int errnum)');
  cached = {
    syscall: (nr, a, b, c) => Number(syscall(nr, a, b, c)),
    syscallAsync: (nr, a, b, c, cb) => syscall.async(nr, a, b, c, cb),
    malloc: (n) => malloc(n) as unknown,
    free: (p) => {
      free(p);
    },
    close: (fd) => close(fd) as number,
    clock_gettime: (clk, ts) => clockGettime(clk, ts) as number,
    pipe2: (fds, flags) => pipe2(fds, flags) as number,
    flock: (fd, op) => flock(fd, op) as number,
    setns: (fd, t) => setns(fd, t) as number,
    socket: (d, t, p) => socket(d, t, p) as number,
    bind: (fd, a, l) => bind(fd, a, l) as number,
    getsockname: (fd, a, l) => getsockname(fd, a, l) as number,
    setsockopt: (fd, lv, n, v, l) => setsockopt(fd, lv, n, v, l) as number,
    getsockopt: (fd, lv, n, v, l) => getsockopt(fd, lv, n, v, l) as number,
    send: (fd, b, l, f) => Number(send(fd, b, l, f)),
    recv: (fd, b, l, f) => Number(recv(fd, b, l, f)),
    poll: (fds, n, t) => poll(fds, n, t) as number,
    pollAsync: (fds, n, t, cb) => poll.async(fds, n, t, cb),
    errno: () => k.errno(),
    strerror: (e) => String(strerror(e)),
    view: (ptr, len) => Buffer.from(k.view(ptr, len)),
    address: (ptr) => BigInt(k.address(ptr) as unknown as bigint | number),
  };
  return cached;
}

/**
 * Source of the libnftables thread (host/libnftables.ts): a worker thread
 * that runs one JSON batch at a time with `runBatch` — the function
 * host/libnftables.ts also runs on the main thread for small batches, whose
 * source text it passes here — entered into the batch's network namespace
 * with setns(2), which moves only this thread, and back. Plain CommonJS
 * evaluated by `new Worker(source, { eval: true })`, so it needs no build
 * step or TypeScript loader; koffi comes from the path in `workerData.koffi`
 * (resolved here, next to netfence), the libnftables declarations from
 * `workerData.funcs` and CLONE_NEWNET from `workerData.clone`. Five seconds
 * after the last batch, `malloc_trim(0)` gives the parser's memory back to
 * the system (a batch within that time reuses it instead of faulting fresh
 * pages in). A thread that could not go back to its own namespace says so in
 * its reply (`stuck`), refuses every later batch, and is ended by the main
 * thread; the next batch starts a new one.
 * Messages in: `{ id, lib, doc, netns?, flags }` (flags: nft_ctx_output_set_flags);
 * out: `{ id, ran: false, why }` (nothing was run) or `{ id, ran: true, ok, stdout, stderr, stuck? }`.
 * @internal
 */
export function nftThreadSource(runBatchSource: string): string {
  return `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const __name = (f) => f; // in case the compiler named functions inside runBatch
const koffi = require(workerData.koffi);
const c = koffi.load('libc.so.6');
const setns = c.func('int setns(int fd, int nstype)');
let trim = () => 0;
try { const t = c.func('int malloc_trim(size_t pad)'); trim = () => t(0); } catch {}
const sys = { setns: (fd, type) => setns(fd, type), open: (p) => fs.openSync(p, 'r'), close: (fd) => fs.closeSync(fd), clone: workerData.clone };
const runBatch = ${runBatchSource};
const TRIM_AFTER_MS = 5000;
let trimTimer;
let bound;
function bind(path) {
  if (bound && bound.path === path) return bound;
  if (bound) throw new Error('another libnftables is loaded in this thread');
  const l = koffi.load(path);
  const b = { path };
  for (const [name, decl] of Object.entries(workerData.funcs)) b[name] = l.func(decl);
  bound = b;
  return b;
}
let stuck = false;
parentPort.on('message', (m) => {
  if (stuck) { parentPort.postMessage({ id: m.id, ran: false, why: 'thread left in another namespace' }); return; }
  let b;
  try { b = bind(m.lib); } catch (e) { parentPort.postMessage({ id: m.id, ran: false, why: String((e && e.message) || e) }); return; }
  const r = runBatch(b, sys, m.doc, m.netns, m.flags);
  if (r.stuck) stuck = true;
  parentPort.postMessage({ id: m.id, ...r });
  // Memory back to the system once no batch followed for a while: a batch right after this one reuses it.
  clearTimeout(trimTimer);
  trimTimer = setTimeout(trim, TRIM_AFTER_MS);
});
`;
}

/** The path of the koffi module netfence uses (for {@link nftThreadSource}'s `workerData.koffi`). */
export function koffiPath(): string {
  return createRequire(import.meta.url).resolve('koffi');
}
