/**
 * A netfilter netlink socket (AF_NETLINK, NETLINK_NETFILTER) driven from Node
 * through host/libc.ts: open with a large receive buffer, send, non-blocking
 * receive, poll (synchronous or on the thread pool), request/ack.
 * Used inside queue reader workers; every call is a plain syscall.
 * @module
 */
import {
  AF_NETLINK,
  EAGAIN,
  EINTR,
  ENOBUFS,
  MSG_DONTWAIT,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_NETFILTER,
  NETLINK_NO_ENOBUFS,
  NLMSG_ERROR,
  POLLIN,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_NETLINK,
  SOL_SOCKET,
} from './constants.js';
import { libc } from './libc.js';
import { parseError, parseMessages, type NlMessage } from './netlink.js';
import { NetfenceError } from '../../errors.js';
import { Err, Ok, type Result } from '../../result.js';

/** A failed socket call: the syscall, its errno, and the kernel's extended-ack text when there was one. */
export class NetlinkError extends NetfenceError {
  /** Positive errno. */
  readonly errno: number;
  /** The call or request that failed (e.g. `bind queue 3`). */
  readonly what: string;
  constructor(what: string, errno: number, kernelMessage?: string, hint?: string) {
    const text = errno ? libc().strerror(errno) : 'error';
    super('NETLINK', `${what} failed: ${text} (errno ${errno})${kernelMessage ? `: ${kernelMessage}` : ''}`, hint ? { hint } : {});
    this.errno = errno;
    this.what = what;
  }
}

/** Options for {@link NetlinkSocket.open}. */
export interface NetlinkSocketOptions {
  /** Receive buffer in bytes (SO_RCVBUFFORCE, falling back to SO_RCVBUF). Default 8 MiB. */
  rcvbuf?: number | undefined;
  /** Set NETLINK_NO_ENOBUFS: overruns are not reported (default false: they are counted). */
  noEnobufs?: boolean | undefined;
}

function intBuf(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  return b;
}

/** A bound NETLINK_NETFILTER socket. Not thread-safe; one per reader. */
export class NetlinkSocket {
  /** The file descriptor. */
  readonly fd: number;
  /** The netlink port id the kernel assigned. */
  readonly portid: number;
  /** Receive buffer size the kernel reports (doubled by the kernel for bookkeeping). */
  readonly rcvbuf: number;
  private seq = 1;
  private closed = false;
  private readonly pollfd = Buffer.alloc(8);
  /** Messages read while waiting for an ack, handed out by the next {@link drainBacklog}. */
  private backlog: NlMessage[] = [];

  private constructor(fd: number, portid: number, rcvbuf: number) {
    this.fd = fd;
    this.portid = portid;
    this.rcvbuf = rcvbuf;
    this.pollfd.writeInt32LE(fd, 0);
    this.pollfd.writeInt16LE(POLLIN, 4);
  }

  /** Open, configure and bind a socket (the kernel picks the port id). */
  static open(options: NetlinkSocketOptions = {}): Result<NetlinkSocket, NetlinkError> {
    const c = libc();
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
    if (fd < 0) return Err(new NetlinkError('socket(AF_NETLINK, NETLINK_NETFILTER)', c.errno(), undefined, 'needs CAP_NET_ADMIN (run as root)'));
    const fail = (what: string): Result<NetlinkSocket, NetlinkError> => {
      const e = c.errno();
      c.close(fd);
      return Err(new NetlinkError(what, e));
    };
    const size = options.rcvbuf ?? 8 * 1024 * 1024;
    if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, intBuf(size), 4) < 0) {
      // Without CAP_NET_ADMIN: capped by net.core.rmem_max.
      if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, intBuf(size), 4) < 0) return fail('setsockopt SO_RCVBUF');
    }
    // Best effort: error strings from the kernel, and acks without the request echoed.
    c.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, intBuf(1), 4);
    c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, intBuf(1), 4);
    if (options.noEnobufs) c.setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, intBuf(1), 4);
    const addr = Buffer.alloc(12);
    addr.writeUInt16LE(AF_NETLINK, 0);
    if (c.bind(fd, addr, 12) < 0) return fail('bind(AF_NETLINK)');
    const out = Buffer.alloc(12);
    const len = intBuf(12);
    if (c.getsockname(fd, out, len) < 0) return fail('getsockname');
    const got = Buffer.alloc(4);
    const glen = intBuf(4);
    c.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, got, glen);
    return Ok(new NetlinkSocket(fd, out.readUInt32LE(4), got.readInt32LE(0)));
  }

  /** Next sequence number for a request. */
  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /** Send one datagram (one or more concatenated netlink messages) to the kernel. */
  send(buf: Buffer): Result<void, NetlinkError> {
    const c = libc();
    for (;;) {
      const n = c.send(this.fd, buf, buf.length, 0);
      if (n >= 0) return Ok(undefined);
      const e = c.errno();
      if (e === EINTR) continue;
      return Err(new NetlinkError('send', e));
    }
  }

  /**
   * Read one datagram without blocking. Returns its length, 0 when nothing is
   * waiting, or -errno (ENOBUFS: the receive buffer overflowed and messages were lost).
   */
  recv(buf: Buffer): number {
    const c = libc();
    for (;;) {
      const n = c.recv(this.fd, buf, buf.length, MSG_DONTWAIT);
      if (n >= 0) return n === 0 ? -EAGAIN : n;
      const e = c.errno();
      if (e === EINTR) continue;
      return -e;
    }
  }

  /** Wait up to `timeoutMs` for data, blocking this thread. Returns > 0 when readable. */
  poll(timeoutMs: number): number {
    this.pollfd.writeInt16LE(0, 6);
    return libc().poll(this.pollfd, 1, timeoutMs);
  }

  /** Wait up to `timeoutMs` for data on a thread-pool thread; the event loop stays free. */
  pollAsync(timeoutMs: number): Promise<number> {
    const fds = Buffer.alloc(8);
    fds.writeInt32LE(this.fd, 0);
    fds.writeInt16LE(POLLIN, 4);
    return new Promise((resolve) => {
      libc().pollAsync(fds, 1, timeoutMs, (err, r) => resolve(err ? -1 : r));
    });
  }

  /**
   * Send a request that asks for an ack and wait (blocking, up to `timeoutMs`)
   * for the matching NLMSG_ERROR. Other messages read meanwhile (queued packets)
   * are kept for {@link drainBacklog}.
   */
  request(msg: Buffer, seq: number, what: string, timeoutMs = 2000): Result<void, NetlinkError> {
    const sent = this.send(msg);
    if (sent.err) return sent;
    const buf = Buffer.alloc(65536);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return Err(new NetlinkError(what, 110 /* ETIMEDOUT */, 'no ack from the kernel'));
      const n = this.recv(buf);
      if (n === -EAGAIN) {
        this.poll(Math.min(left, 100));
        continue;
      }
      if (n === -ENOBUFS) continue;
      if (n < 0) return Err(new NetlinkError(`${what} (recv)`, -n));
      for (const m of parseMessages(buf, n)) {
        if (m.type === NLMSG_ERROR) {
          const e = parseError(m);
          if (e.seq === seq) return e.errno === 0 ? Ok(undefined) : Err(new NetlinkError(what, e.errno, e.message));
          continue;
        }
        // Copy: the buffer is reused.
        this.backlog.push({ ...m, body: Buffer.from(m.body) });
      }
    }
  }

  /** Messages that arrived while {@link request} waited for an ack. */
  drainBacklog(): NlMessage[] {
    const b = this.backlog;
    this.backlog = [];
    return b;
  }

  /** Close the socket (the kernel unbinds its queues). Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.fd);
  }
}
