/**
 * Counting the elements of an nftables set without listing it, on a
 * `NETLINK_NETFILTER` socket, from the raw reply bytes (no JSON, no
 * per-element object):
 *
 * 1. `NFT_MSG_GETSET` of the one set: kernels since 6.16 answer with
 *    `NFTA_SET_COUNT` (the kernel's element counter), which costs the same
 *    for 10 or 10,000,000 elements. Used for sets without the `interval`
 *    flag (an interval set's kernel counter also counts range-end markers).
 * 2. Otherwise (older kernels, interval sets) one `NFT_MSG_GETSETELEM` dump,
 *    whose elements are counted while the bytes arrive. The kernel walks a
 *    hash set from its start for every ~32 KB reply, so this costs about what
 *    `nft list set` costs in the kernel, without nft's JSON (15 MB for 1M
 *    addresses) or its memory.
 *
 * The socket is opened inside the namespace with setns(2) on the calling
 * thread, which moves straight back; a netlink socket keeps the namespace it
 * was created in. Everything native goes through host/libc.ts.
 * @module
 */
import { closeSync, openSync } from 'node:fs';
import { Err, Ok, type Result } from '../result.js';
import { NetfenceError } from '../errors.js';
import { NetnsName } from '../validate.js';
import { libc } from './libc.js';

/** How many elements a set holds, as the kernel dumped them. */
export interface SetElementCount {
  /** Entries as nft lists them: elements, minus the interval-end markers of interval sets. */
  elements: number;
  /** Interval-end markers the kernel stores for interval sets (rbtree: one per range). */
  intervalEnds: number;
  /** Bytes of netlink replies read. */
  bytes: number;
  /** `kernel-count`: the kernel's counter (NFTA_SET_COUNT); `dump`: the elements were dumped and counted. */
  method: 'kernel-count' | 'dump';
  /**
   * True when the dump stopped at `CountSetOptions.dumpLimit`: the set holds
   * at least `elements` entries (kernels before 6.16 have no counter, and
   * dumping a million-element set costs as much as listing it).
   */
  atLeast: boolean;
}

/** nftables family numbers (NFPROTO_*). */
const FAMILY: Record<string, number> = { ip: 2, ip6: 10, inet: 1, arp: 3, bridge: 7, netdev: 5 };

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_NETFILTER = 12;
const CLONE_NEWNET = 0x40000000;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_GETSETELEM = 13;
const NFT_MSG_GETSET = 10;
const NFTA_SET_FLAGS = 3;
const NFTA_SET_COUNT = 20;
const NFT_SET_INTERVAL = 0x4;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_FLAGS = 3;
const NFT_SET_ELEM_INTERVAL_END = 1;
const MSG_DONTWAIT = 0x40;
const POLLIN = 1;
const RECV_SIZE = 1 << 20;

/** Netlink attribute lengths are padded to 4 bytes. */
export const align4 = (n: number): number => (n + 3) & ~3;

/** A netlink attribute holding a NUL-terminated string (shared with nft-object.ts). */
export function attr(type: number, value: string): Buffer {
  const data = Buffer.from(`${value}\0`, 'utf8');
  const b = Buffer.alloc(align4(4 + data.length));
  b.writeUInt16LE(4 + data.length, 0);
  b.writeUInt16LE(type, 2);
  data.copy(b, 4);
  return b;
}

/** The GETSETELEM dump request (or with `getSet`, the GETSET request of the one set) for `table`/`set` in `family` (exported for tests). */
export function getSetElemRequest(family: string, table: string, set: string, seq: number, getSet = false): Buffer {
  const fam = FAMILY[family];
  if (fam === undefined) throw new Error(`unknown nft family ${family}`);
  const attrs = Buffer.concat([attr(NFTA_SET_ELEM_LIST_TABLE, table), attr(NFTA_SET_ELEM_LIST_SET, set)]);
  const b = Buffer.alloc(16 + 4 + attrs.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE((NFNL_SUBSYS_NFTABLES << 8) | (getSet ? NFT_MSG_GETSET : NFT_MSG_GETSETELEM), 4);
  b.writeUInt16LE(getSet ? NLM_F_REQUEST : NLM_F_REQUEST | NLM_F_DUMP, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt32LE(0, 12);
  b.writeUInt8(fam, 16); // nfgen_family
  b.writeUInt8(0, 17); // NFNETLINK_V0
  b.writeUInt16BE(0, 18); // res_id
  attrs.copy(b, 20);
  return b;
}

/** State of one dump being counted (exported for tests). */
export interface DumpCounter {
  elements: number;
  intervalEnds: number;
  bytes: number;
  done: boolean;
  /** errno the kernel answered with (positive), if any. */
  errno?: number | undefined;
}

/** The set's flags and kernel element counter (undefined on kernels before 6.16) from a GETSET reply (exported for tests). */
export function parseGetSetReply(buf: Buffer, len: number): { flags: number; count: number | undefined } | { errno: number } {
  if (len < 16) return { errno: 71 };
  const type = buf.readUInt16LE(4);
  if (type === NLMSG_ERROR) return { errno: -buf.readInt32LE(16) };
  const end = Math.min(len, buf.readUInt32LE(0));
  let flags = 0;
  let count: number | undefined;
  let a = 20;
  while (a + 4 <= end) {
    const alen = buf.readUInt16LE(a);
    if (alen < 4) break;
    const t = buf.readUInt16LE(a + 2) & 0x3fff;
    if (t === NFTA_SET_FLAGS && alen >= 8) flags = buf.readUInt32BE(a + 4);
    if (t === NFTA_SET_COUNT && alen >= 8) count = buf.readUInt32BE(a + 4);
    a += align4(alen);
  }
  return { flags, count };
}

/** Count the elements in one chunk of netlink replies (exported for tests). */
export function countChunk(buf: Buffer, len: number, st: DumpCounter): void {
  st.bytes += len;
  let off = 0;
  while (off + 16 <= len && !st.done) {
    const mlen = buf.readUInt32LE(off);
    const type = buf.readUInt16LE(off + 4);
    if (mlen < 16 || off + mlen > len) break;
    if (type === NLMSG_DONE) st.done = true;
    else if (type === NLMSG_ERROR) {
      const e = -buf.readInt32LE(off + 16);
      if (e !== 0) {
        st.errno = e;
        st.done = true;
      }
    } else {
      // nfgenmsg (4 bytes), then the attributes of the set-element list
      let a = off + 20;
      const end = off + mlen;
      while (a + 4 <= end) {
        const alen = buf.readUInt16LE(a);
        const atype = buf.readUInt16LE(a + 2) & 0x3fff;
        if (alen < 4) break;
        if (atype === NFTA_SET_ELEM_LIST_ELEMENTS) {
          let e = a + 4;
          const eend = a + alen;
          while (e + 4 <= eend) {
            const elen = buf.readUInt16LE(e);
            if (elen < 4) break;
            let isEnd = false;
            let i = e + 4;
            const iend = e + elen;
            while (i + 4 <= iend) {
              const ilen = buf.readUInt16LE(i);
              if (ilen < 4) break;
              if ((buf.readUInt16LE(i + 2) & 0x3fff) === NFTA_SET_ELEM_FLAGS && ilen >= 8 && (buf.readUInt32BE(i + 4) & NFT_SET_ELEM_INTERVAL_END) !== 0) isEnd = true;
              i += align4(ilen);
            }
            if (isEnd) st.intervalEnds++;
            else st.elements++;
            e += align4(elen);
          }
        }
        a += align4(alen);
      }
    }
    off += align4(mlen);
  }
}

/** A netlink socket of `netns` (or of this thread's namespace): setns(2) there and straight back. @internal (host/nft-object.ts) */
/**
 * Open a netfilter netlink socket in `netns` (or here), with the libc binding
 * that reads and closes it; Err `NETLINK` when the namespace cannot be entered
 * or the socket not opened (shared by the set counter and the object probe).
 */
export function openNetfilter(netns: string | undefined): Result<{ libc: ReturnType<typeof libc>; fd: number }, NetfenceError> {
  try {
    return Ok({ libc: libc(), fd: netfilterSocket(netns) });
  } catch (e) {
    return Err(new NetfenceError('NETLINK', `cannot open a netfilter netlink socket${netns ? ` in ${netns}` : ''}: ${(e as Error).message}`));
  }
}

export function netfilterSocket(netns: string | undefined): number {
  const l = libc();
  if (netns === undefined) return l.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  const own = openSync('/proc/thread-self/ns/net', 'r');
  let target: number | undefined;
  try {
    target = openSync(`/run/netns/${netns}`, 'r');
    if (l.setns(target, CLONE_NEWNET) !== 0) throw new Error(`setns(${netns}): ${l.strerror(l.errno())}`);
    let fd: number;
    let err = 0;
    try {
      fd = l.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
      if (fd < 0) err = l.errno();
    } finally {
      // Going back cannot fail once entering worked (same privilege); if it did, nothing this thread does would be right.
      if (l.setns(own, CLONE_NEWNET) !== 0) {
        process.stderr.write(`netfence: setns back to the own network namespace failed: ${l.strerror(l.errno())}\n`);
        process.abort();
      }
    }
    if (fd < 0) throw new Error(`netlink socket: ${l.strerror(err)}`);
    return fd;
  } finally {
    if (target !== undefined) closeSync(target);
    closeSync(own);
  }
}

/** Options of `HostNft.countElements` (on this machine: `countSetElementsOnMachine`). */
export interface CountSetOptions {
  /** `auto` (default): the kernel's counter where usable, else a dump; `dump`: always dump and count. */
  method?: 'auto' | 'dump' | undefined;
  /**
   * Stop a dump after this many entries and report `atLeast` (default
   * 100,000; 0: count them all, however many).
   */
  dumpLimit?: number | undefined;
}

/** Entries a dump counts before it stops and reports a lower bound (see {@link CountSetOptions.dumpLimit}). */
export const DEFAULT_DUMP_LIMIT = 100_000;

let seqCounter = Math.floor(Math.random() * 0x7fff0000);

/** The next reply chunk of `fd` into `buf` (waits off the event loop); its length, or -errno. @internal (host/nft-object.ts) */
export async function recvChunk(fd: number, buf: Buffer): Promise<number> {
  const l = libc();
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLIN, 4);
  for (;;) {
    const n = l.recv(fd, buf, buf.length, MSG_DONTWAIT);
    if (n >= 0) return n;
    const e = l.errno();
    if (e !== 11 && e !== 4) return -e;
    // EAGAIN / EINTR: wait on a thread-pool thread for the kernel's next chunk
    const ready = await new Promise<number>((resolve) => {
      l.pollAsync(pfd, 1, 10_000, (err, r) => resolve(err ? -1 : r));
    });
    if (ready <= 0) return -110; // ETIMEDOUT
  }
}

/**
 * Count the elements of set (or map) `set` of table `family table` in
 * `netns` (see the module comment: the kernel's counter where it has one,
 * else one element dump). Err when the set does not exist (code `NOT_FOUND`),
 * the namespace cannot be entered, or netlink fails. Needs CAP_NET_ADMIN
 * (and CAP_SYS_ADMIN for another namespace), like `nft list`.
 */
export async function countSetElementsOnMachine(
  family: string,
  table: string,
  set: string,
  netns?: string,
  options: CountSetOptions = {},
): Promise<Result<SetElementCount, NetfenceError>> {
  if (netns !== undefined && !NetnsName.safeParse(netns).success) return Err(new NetfenceError('VALIDATION', `invalid namespace name ${JSON.stringify(netns)}`));
  if (FAMILY[family] === undefined) return Err(new NetfenceError('VALIDATION', `unknown nft family ${JSON.stringify(family)}`));
  const opened = openNetfilter(netns);
  if (opened.err) return opened;
  const { libc: l, fd } = opened.val;
  const what = `set ${family} ${table} ${set}`;
  const fail = (errno: number) => Err(new NetfenceError(errno === 2 ? 'NOT_FOUND' : 'NETLINK', `netlink read of ${what}: ${errno === 110 ? 'no answer from the kernel' : l.strerror(errno)}`));
  const buf = Buffer.alloc(RECV_SIZE);
  try {
    // 1. the kernel's counter
    const q = getSetElemRequest(family, table, set, ++seqCounter >>> 0, true);
    if (l.send(fd, q, q.length, 0) !== q.length) return fail(l.errno());
    const n = await recvChunk(fd, buf);
    if (n < 0) return fail(-n);
    const info = parseGetSetReply(buf, n);
    if ('errno' in info) return fail(info.errno);
    if (options.method !== 'dump' && info.count !== undefined && (info.flags & NFT_SET_INTERVAL) === 0) return Ok({ elements: info.count, intervalEnds: 0, bytes: n, method: 'kernel-count', atLeast: false });
    // 2. one element dump, counted as it arrives, up to the limit (closing the socket ends the dump)
    const limit = options.dumpLimit ?? DEFAULT_DUMP_LIMIT;
    const st: DumpCounter = { elements: 0, intervalEnds: 0, bytes: 0, done: false };
    const req = getSetElemRequest(family, table, set, ++seqCounter >>> 0);
    if (l.send(fd, req, req.length, 0) !== req.length) return fail(l.errno());
    while (!st.done) {
      const m = await recvChunk(fd, buf);
      if (m < 0) return fail(-m);
      if (m === 0) break;
      countChunk(buf, m, st);
      if (limit > 0 && !st.done && st.errno === undefined && st.elements >= limit) {
        return Ok({ elements: st.elements, intervalEnds: st.intervalEnds, bytes: st.bytes, method: 'dump', atLeast: true });
      }
    }
    if (st.errno !== undefined) return fail(st.errno);
    return Ok({ elements: st.elements, intervalEnds: st.intervalEnds, bytes: st.bytes, method: 'dump', atLeast: false });
  } finally {
    l.close(fd);
  }
}
