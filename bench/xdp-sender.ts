/**
 * A small pktgen-like sender for bench/xdp-drop.ts (this kernel has no
 * pktgen): prebuilt Ethernet/IPv4/UDP frames (64-byte payload) written to an
 * AF_PACKET socket with PACKET_QDISC_BYPASS, 64 frames per sendmmsg(2) call.
 * No UDP stack, routing or neighbour lookups on the sending side.
 *
 * Or, with `--xdp-live` as the fifth argument, an in-kernel generator (what
 * xdp-trafficgen does): a 4-instruction XDP program returning
 * bpf_redirect(iface) run by BPF_PROG_TEST_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES), so the same frame leaves `iface` as an XDP
 * frame — no skb, no socket — 16,384 frames per call.
 * Or, with `--gro` (argv: iface --gro), it turns GRO on for `iface` (the
 * ETHTOOL_SGRO ioctl; this machine has no ethtool) and exits: a veth takes
 * XDP frames from its peer only with NAPI, i.e. an XDP program or GRO.
 *
 * Long-lived, driven over the Node IPC channel: `{ blast: { ms, pps } }`
 * sends for `ms` milliseconds, paced to `pps` frames per second (0: as fast as
 * it can), and answers `{ sent, ms }` (or `{ error }`); `{ exit: true }` ends it. It prints
 * `ready` once its socket is bound. argv: iface dstMac src dst
 * Runs inside a lab namespace, pinned to a CPU by the bench (taskset).
 */
import { BpfProgType, CMem, bpfSyscallNumber, progLoad } from '../src/host/bpf.js';
import { koffi, libc } from '../src/host/libc.js';

const SIOCETHTOOL = 0x8946;
const ETHTOOL_SGRO = 0x2c;
if (process.argv[3] === '--gro') {
  const l = koffi().load('libc.so.6');
  const sock = l.func('int socket(int domain, int type, int protocol)') as (a: number, b: number, c: number) => number;
  const ioctl = l.func('int ioctl(int fd, unsigned long req, void *arg)') as (fd: number, r: number, a: unknown) => number;
  const s = sock(2 /* AF_INET */, 2 /* SOCK_DGRAM */, 0);
  const val = new CMem(8);
  val.buf.writeUInt32LE(ETHTOOL_SGRO, 0);
  val.buf.writeUInt32LE(1, 4);
  const ifr = new CMem(40);
  ifr.buf.fill(0, 0, 40);
  ifr.buf.write(process.argv[2] ?? '', 0, 15, 'ascii');
  ifr.buf.writeBigUInt64LE(val.addr, 16);
  if (s < 0 || ioctl(s, SIOCETHTOOL, ifr.buf) !== 0) {
    console.error(`ETHTOOL_SGRO on ${process.argv[2]} failed: errno ${koffi().errno()}`);
    process.exit(1);
  }
  console.log('gro on');
  process.exit(0);
}
if (!process.send) {
  console.error('bench/xdp-sender.ts is started by bench/xdp-drop.ts (over an IPC channel), not on its own');
  process.exit(2);
}
const [iface, dstMac, src, dst, mode] = process.argv.slice(2) as [string, string, string, string, string | undefined];
const live = mode === '--xdp-live';
const lib = koffi().load('libc.so.6');
const socket = lib.func('int socket(int domain, int type, int protocol)') as (a: number, b: number, c: number) => number;
const bind = lib.func('int bind(int fd, void *addr, uint32_t len)') as (fd: number, a: unknown, l: number) => number;
const setsockopt = lib.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)') as (fd: number, l: number, n: number, v: unknown, len: number) => number;
const ifNameToIndex = lib.func('unsigned int if_nametoindex(const char *name)') as (n: string) => number;
const sendmmsg = lib.func('int sendmmsg(int fd, void *msgs, unsigned int vlen, int flags)') as (fd: number, m: unknown, n: number, f: number) => number;

const AF_PACKET = 17;
const SOCK_RAW = 3;
const ETH_P_IP_BE = 0x0008; // htons(0x0800)
const ifindex = ifNameToIndex(iface);
if (!ifindex) throw new Error(`no interface ${iface}`);
const fd = live ? 0 : socket(AF_PACKET, SOCK_RAW, 0);
if (fd < 0) throw new Error('socket(AF_PACKET) failed');
const one = new CMem(4);
one.buf.writeInt32LE(1, 0);
if (!live) setsockopt(fd, 263 /* SOL_PACKET */, 20 /* PACKET_QDISC_BYPASS */, one.buf, 4);
const sll = new CMem(20);
sll.buf.fill(0, 0, 20);
sll.buf.writeUInt16LE(AF_PACKET, 0);
sll.buf.writeUInt16LE(ETH_P_IP_BE, 2);
sll.buf.writeInt32LE(ifindex, 4);
if (!live && bind(fd, sll.buf, 20) !== 0) throw new Error('bind(AF_PACKET) failed');

// one frame: Ethernet + IPv4 + UDP + 64 bytes payload
const frame = Buffer.alloc(14 + 20 + 8 + 64, 0x5a);
Buffer.from(dstMac.split(':').map((x) => parseInt(x, 16))).copy(frame, 0);
Buffer.from([0x02, 0, 0, 0, 0, 0x01]).copy(frame, 6);
frame.writeUInt16BE(0x0800, 12);
frame[14] = 0x45;
frame[15] = 0;
frame.writeUInt16BE(20 + 8 + 64, 16);
frame.writeUInt32BE(0, 18);
frame[22] = 64;
frame[23] = 17;
frame.writeUInt16BE(0, 24);
Buffer.from(src.split('.').map(Number)).copy(frame, 26);
Buffer.from(dst.split('.').map(Number)).copy(frame, 30);
let sum = 0;
for (let i = 14; i < 34; i += 2) sum += frame.readUInt16BE(i);
while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
frame.writeUInt16BE(~sum & 0xffff, 24);
frame.writeUInt16BE(40000 + (process.pid % 1000), 34);
frame.writeUInt16BE(9, 36);
frame.writeUInt16BE(8 + 64, 38);
frame.writeUInt16BE(0, 40);

const VLEN = 64;
const data = new CMem(frame.length);
frame.copy(data.buf);
const iov = new CMem(16);
iov.buf.writeBigUInt64LE(data.addr, 0);
iov.buf.writeBigUInt64LE(BigInt(frame.length), 8);
const msgs = new CMem(VLEN * 64);
msgs.buf.fill(0, 0, VLEN * 64);
for (let i = 0; i < VLEN; i++) {
  const o = i * 64; // struct mmsghdr: msghdr (56 bytes) + msg_len, padded to 64
  msgs.buf.writeBigUInt64LE(iov.addr, o + 16); // msg_iov
  msgs.buf.writeBigUInt64LE(1n, o + 24); // msg_iovlen
}
const nap = new Int32Array(new SharedArrayBuffer(4));

// --xdp-live: r1 = ifindex; r2 = 0; r0 = bpf_redirect(r1, r2); exit
const insn = (code: number, regs: number, imm: number): Buffer => {
  const b = Buffer.alloc(8);
  b[0] = code;
  b[1] = regs;
  b.writeInt32LE(imm, 4);
  return b;
};
const progFd = live ? progLoad({ type: BpfProgType.XDP, insns: Buffer.concat([insn(0xb7, 1, ifindex), insn(0xb7, 2, 0), insn(0x85, 0, 23), insn(0x95, 0, 0)]), license: 'GPL', name: 'bench_xdp_gen', logSize: 4096 }) : -1;
const LIVE_CHUNK = 16_384;
/** Frames per flush: the kernel's maximum (TEST_XDP_MAX_BATCH), the size of the veth's ring, so the receiver wakes once per ring-full. */
const LIVE_BATCH = 256;
const testAttr = new CMem(128);
/** BPF_PROG_TEST_RUN, BPF_F_TEST_XDP_LIVE_FRAMES: `n` copies of the frame out of `iface`. */
function liveRun(n: number): number {
  testAttr.buf.fill(0, 0, 128);
  testAttr.buf.writeUInt32LE(progFd, 0);
  testAttr.buf.writeUInt32LE(frame.length, 8);
  testAttr.buf.writeBigUInt64LE(data.addr, 16);
  testAttr.buf.writeUInt32LE(n, 32); // repeat
  testAttr.buf.writeUInt32LE(2, 64); // flags: BPF_F_TEST_XDP_LIVE_FRAMES
  testAttr.buf.writeUInt32LE(LIVE_BATCH, 72); // batch_size: frames between two flushes (wake-ups of the receiver)
  const r = libc().syscall(bpfSyscallNumber() ?? -1, 10 /* BPF_PROG_TEST_RUN */, testAttr.buf, 128);
  if (r < 0) throw new Error(`BPF_PROG_TEST_RUN (live frames) failed: errno ${libc().errno()}`);
  return n;
}

/** Send for `ms`, paced to `pps` (0: unpaced); returns frames sent and the time taken. */
function blast(ms: number, pps: number): { sent: number; ms: number } {
  let sent = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  for (let now = t0; now < end; now = performance.now()) {
    if (pps > 0 && sent >= ((now - t0) * pps) / 1000) {
      Atomics.wait(nap, 0, 0, 0.2); // ahead of the pace: yield the CPU
      continue;
    }
    const n = live ? liveRun(pps > 0 ? Math.min(LIVE_CHUNK, Math.max(VLEN, Math.ceil(pps / 1000))) : LIVE_CHUNK) : sendmmsg(fd, msgs.buf, VLEN, 0);
    if (n > 0) sent += n;
  }
  return { sent, ms: performance.now() - t0 };
}

process.on('message', (m: { blast?: { ms: number; pps: number }; exit?: boolean }) => {
  if (m.blast) {
    try {
      process.send?.(blast(Math.min(30_000, m.blast.ms), m.blast.pps));
    } catch (e) {
      process.send?.({ sent: 0, ms: 0, error: e instanceof Error ? e.message : String(e) });
    }
  }
  if (m.exit) process.exit(0);
});
process.on('disconnect', () => process.exit(0));
console.log('ready');
