/**
 * The few libc calls the queue reader needs, bound with koffi (prebuilt FFI,
 * no native compile, no libnetfilter_queue). Loaded lazily so that importing
 * the protocol code never loads koffi.
 * @module
 */
import { createRequire } from 'node:module';

/** Bound libc functions. Pointers are Node Buffers. */
export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  getsockname(fd: number, addr: Buffer, len: Buffer): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, len: Buffer): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  /** poll() on one pollfd (8 bytes: fd, events, revents). */
  poll(fds: Buffer, nfds: number, timeoutMs: number): number;
  /** poll() on a libuv thread-pool thread: does not block the event loop. */
  pollAsync(fds: Buffer, nfds: number, timeoutMs: number, cb: (err: unknown, r: number) => void): void;
  close(fd: number): number;
  /** errno of the last failed call on this thread. */
  errno(): number;
  /** strerror-like text for an errno. */
  strerror(errno: number): string;
}

let cached: Libc | undefined;

/** Load libc through koffi once per process/thread. */
export function libc(): Libc {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  // koffi is CommonJS; require() avoids ESM/CJS interop differences between tsx and dist.
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const bind = lib.func('int bind(int fd, void *addr, uint32_t len)');
  const getsockname = lib.func('int getsockname(int fd, void *addr, void *len)');
  const setsockopt = lib.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)');
  const getsockopt = lib.func('int getsockopt(int fd, int level, int name, void *value, void *len)');
  const send = lib.func('intptr_t send(int fd, void *buf, size_t len, int flags)');
  const recv = lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
  const poll = lib.func('int poll(void *fds, unsigned long nfds, int timeout)');
  const close = lib.func('int close(int fd)');
  const strerror = lib.func('const char *strerror(int errnum)');
  cached = {
    socket: (d, t, p) => socket(d, t, p) as number,
    bind: (fd, a, l) => bind(fd, a, l) as number,
    getsockname: (fd, a, l) => getsockname(fd, a, l) as number,
    setsockopt: (fd, lv, n, v, l) => setsockopt(fd, lv, n, v, l) as number,
    getsockopt: (fd, lv, n, v, l) => getsockopt(fd, lv, n, v, l) as number,
    send: (fd, b, l, f) => Number(send(fd, b, l, f)),
    recv: (fd, b, l, f) => Number(recv(fd, b, l, f)),
    poll: (fds, n, t) => poll(fds, n, t) as number,
    pollAsync: (fds, n, t, cb) => poll.async(fds, n, t, cb),
    close: (fd) => close(fd) as number,
    errno: () => koffi.errno(),
    strerror: (e) => String(strerror(e)),
  };
  return cached;
}
