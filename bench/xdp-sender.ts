/**
 * A small pktgen-like sender for bench/xdp-drop.ts: prebuilt Ethernet/IPv4/UDP
 * frames (64-byte payload) written to an AF_PACKET socket with
 * PACKET_QDISC_BYPASS, 64 frames per sendmmsg(2) call, through koffi, for a
 * bounded time. No UDP stack, routing or neighbour lookups on the sending
 * side, so more of each packet's cost is the receiver's drop path.
 * Prints `sent=<n>`. argv: iface dstMac src dst seconds
 * Runs inside a lab namespace (started with nsenter by the bench).
 */
import koffi from 'koffi';
import { CMem } from '../src/host/bpf.js';

const [iface, dstMac, src, dst, secondsText] = process.argv.slice(2) as [string, string, string, string, string];
const seconds = Math.min(30, Number(secondsText));
const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int domain, int type, int protocol)') as (a: number, b: number, c: number) => number;
const bind = libc.func('int bind(int fd, void *addr, uint32_t len)') as (fd: number, a: unknown, l: number) => number;
const setsockopt = libc.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)') as (fd: number, l: number, n: number, v: unknown, len: number) => number;
const ifNameToIndex = libc.func('unsigned int if_nametoindex(const char *name)') as (n: string) => number;
const sendmmsg = libc.func('int sendmmsg(int fd, void *msgs, unsigned int vlen, int flags)') as (fd: number, m: unknown, n: number, f: number) => number;

const AF_PACKET = 17;
const SOCK_RAW = 3;
const ETH_P_IP_BE = 0x0008; // htons(0x0800)
const ifindex = ifNameToIndex(iface);
if (!ifindex) throw new Error(`no interface ${iface}`);
const fd = socket(AF_PACKET, SOCK_RAW, 0);
if (fd < 0) throw new Error('socket(AF_PACKET) failed');
const one = new CMem(4);
one.buf.writeInt32LE(1, 0);
setsockopt(fd, 263 /* SOL_PACKET */, 20 /* PACKET_QDISC_BYPASS */, one.buf, 4);
const sll = new CMem(20);
sll.buf.fill(0, 0, 20);
sll.buf.writeUInt16LE(AF_PACKET, 0);
sll.buf.writeUInt16LE(ETH_P_IP_BE, 2);
sll.buf.writeInt32LE(ifindex, 4);
if (bind(fd, sll.buf, 20) !== 0) throw new Error('bind(AF_PACKET) failed');

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
frame.writeUInt16BE(40000, 34);
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
let sent = 0;
const end = performance.now() + seconds * 1000;
while (performance.now() < end) {
  for (let k = 0; k < 16; k++) {
    const n = sendmmsg(fd, msgs.buf, VLEN, 0);
    if (n > 0) sent += n;
  }
}
console.log(`sent=${sent}`);
