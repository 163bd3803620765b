/**
 * Builders of synthetic frames and capture files for the DPI unit tests.
 */

export function ip4(s: string): number[] {
  return s.split('.').map(Number);
}

export function ip6(s: string): number[] {
  const [l, r] = s.split('::') as [string, string | undefined];
  const left = l ? l.split(':') : [];
  const right = r ? r.split(':') : [];
  const words = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right].map((w) => parseInt(w, 16));
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

export const be16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];
const be32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

export interface L4 {
  proto: 'tcp' | 'udp';
  sport: number;
  dport: number;
  payload?: Uint8Array | number[] | string;
  flags?: number; // TCP flags, default PSH|ACK (0x18) with `ack`, else PSH (0x08)
  seq?: number;
  /** TCP acknowledgment number (sets the default flags to PSH|ACK). */
  ack?: number;
}

function bytes(p: Uint8Array | number[] | string | undefined): number[] {
  if (p === undefined) return [];
  if (typeof p === 'string') return [...Buffer.from(p, 'latin1')];
  return [...p];
}

function l4(x: L4): { proto: number; data: number[] } {
  const pl = bytes(x.payload);
  if (x.proto === 'udp') return { proto: 17, data: [...be16(x.sport), ...be16(x.dport), ...be16(8 + pl.length), 0, 0, ...pl] };
  return {
    proto: 6,
    data: [...be16(x.sport), ...be16(x.dport), ...be32(x.seq ?? 1000), ...be32(x.ack ?? 0), 0x50, x.flags ?? (x.ack === undefined ? 0x08 : 0x18), ...be16(65535), 0, 0, 0, 0, ...pl],
  };
}

/** IPv4 packet. */
export function ipv4Packet(src: string, dst: string, x: L4): number[] {
  const t = l4(x);
  const total = 20 + t.data.length;
  return [0x45, 0, ...be16(total), 0, 1, 0x40, 0, 64, t.proto, 0, 0, ...ip4(src), ...ip4(dst), ...t.data];
}

/** IPv6 packet, optionally with extension headers (hop-by-hop + destination options). */
export function ipv6Packet(src: string, dst: string, x: L4, withExtensions = false): number[] {
  const t = l4(x);
  let ext: number[] = [];
  let next = t.proto;
  if (withExtensions) {
    // hop-by-hop (8 bytes, PadN) -> destination options (8 bytes) -> transport
    const dstOpts = [t.proto, 0, 1, 4, 0, 0, 0, 0];
    const hbh = [60, 0, 1, 4, 0, 0, 0, 0];
    ext = [...hbh, ...dstOpts];
    next = 0;
  }
  const plen = ext.length + t.data.length;
  return [0x60, 0, 0, 0, ...be16(plen), next, 64, ...ip6(src), ...ip6(dst), ...ext, ...t.data];
}

/** Ethernet frame around an IP packet, optionally with 802.1Q tags. */
export function ether(ip: number[], vlans: number[] = []): Uint8Array {
  const v6 = ip[0]! >> 4 === 6;
  const tags = vlans.flatMap((id) => [0x81, 0x00, ...be16(id)]);
  return Uint8Array.from([...Array(6).fill(0x02), ...Array(6).fill(0x04), ...tags, ...(v6 ? [0x86, 0xdd] : [0x08, 0x00]), ...ip]);
}

/** Linux cooked v1 (SLL) frame. */
export function sll(ip: number[]): Uint8Array {
  const v6 = ip[0]! >> 4 === 6;
  return Uint8Array.from([0, 0, 0, 1, 0, 6, ...Array(8).fill(1), ...(v6 ? [0x86, 0xdd] : [0x08, 0x00]), ...ip]);
}

/** Linux cooked v2 (SLL2) frame. */
export function sll2(ip: number[]): Uint8Array {
  const v6 = ip[0]! >> 4 === 6;
  return Uint8Array.from([...(v6 ? [0x86, 0xdd] : [0x08, 0x00]), 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, ...Array(8).fill(1), ...ip]);
}

export interface Rec {
  ts: number;
  data: Uint8Array;
  linkType?: number;
}

/** Classic pcap file. */
export function pcapFile(recs: Rec[], linkType: number, opts: { bigEndian?: boolean; nano?: boolean } = {}): Buffer {
  const le = !opts.bigEndian;
  const parts: Buffer[] = [];
  const h = Buffer.alloc(24);
  const w32 = (b: Buffer, v: number, o: number) => (le ? b.writeUInt32LE(v >>> 0, o) : b.writeUInt32BE(v >>> 0, o));
  const w16 = (b: Buffer, v: number, o: number) => (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  w32(h, opts.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(h, 2, 4);
  w16(h, 4, 6);
  w32(h, 65535, 16);
  w32(h, linkType, 20);
  parts.push(h);
  for (const r of recs) {
    const rh = Buffer.alloc(16);
    const sec = Math.floor(r.ts);
    w32(rh, sec, 0);
    w32(rh, Math.round((r.ts - sec) * (opts.nano ? 1e9 : 1e6)), 4);
    w32(rh, r.data.length, 8);
    w32(rh, r.data.length, 12);
    parts.push(rh, Buffer.from(r.data));
  }
  return Buffer.concat(parts);
}

/** pcapng file: interfaces with their link types (and optional if_tsresol), EPB per record (SPB when spb is set). */
export function pcapngFile(ifaces: { linkType: number; tsresol?: number }[], recs: (Rec & { iface: number; spb?: boolean })[], opts: { bigEndian?: boolean } = {}): Buffer {
  const le = !opts.bigEndian;
  const w32 = (b: Buffer, v: number, o: number) => (le ? b.writeUInt32LE(v >>> 0, o) : b.writeUInt32BE(v >>> 0, o));
  const w16 = (b: Buffer, v: number, o: number) => (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  const block = (type: number, body: Buffer) => {
    const pad = (4 - (body.length % 4)) % 4;
    const len = 12 + body.length + pad;
    const b = Buffer.alloc(len);
    w32(b, type, 0);
    w32(b, len, 4);
    body.copy(b, 8);
    w32(b, len, len - 4);
    return b;
  };
  const parts: Buffer[] = [];
  const shb = Buffer.alloc(16);
  w32(shb, 0x1a2b3c4d, 0);
  w16(shb, 1, 4);
  w16(shb, 0, 6);
  shb.writeInt32LE(-1, 8);
  shb.writeInt32LE(-1, 12);
  parts.push(block(0x0a0d0d0a, shb));
  for (const i of ifaces) {
    const opt = i.tsresol !== undefined ? 8 + 4 : 0;
    const b = Buffer.alloc(8 + opt + 4);
    w16(b, i.linkType, 0);
    w32(b, 65535, 4);
    if (i.tsresol !== undefined) {
      w16(b, 9, 8);
      w16(b, 1, 10);
      b[12] = i.tsresol;
    }
    parts.push(block(1, b));
  }
  for (const r of recs) {
    if (r.spb) {
      const b = Buffer.alloc(4 + r.data.length);
      w32(b, r.data.length, 0);
      Buffer.from(r.data).copy(b, 4);
      parts.push(block(3, b));
      continue;
    }
    const res = ifaces[r.iface]!.tsresol ?? 6;
    const units = BigInt(Math.round(r.ts * 10 ** res));
    const b = Buffer.alloc(20 + r.data.length);
    w32(b, r.iface, 0);
    w32(b, Number(units >> 32n), 4);
    w32(b, Number(units & 0xffffffffn), 8);
    w32(b, r.data.length, 12);
    w32(b, r.data.length, 16);
    Buffer.from(r.data).copy(b, 20);
    parts.push(block(6, b));
  }
  return Buffer.concat(parts);
}

/** A BitTorrent handshake: 0x13 "BitTorrent protocol", reserved, info-hash, peer id. */
export function btHandshake(infoHashHex = 'dcfcdccfb9e670ccc3dd40c78c161f2bea243126', peerId = '-TR2940-abcdefghijkl'): Uint8Array {
  return Uint8Array.from([0x13, ...Buffer.from('BitTorrent protocol'), 0, 0, 0, 0, 0, 0x10, 0, 0x05, ...Buffer.from(infoHashHex, 'hex'), ...Buffer.from(peerId, 'latin1')]);
}

/** uTP v1 header (+ payload). */
export function utp(type: number, connId: number, tsUs: number, seq: number, ack: number, payload: number[] = [], tsDiff = 1000): number[] {
  return [(type << 4) | 1, 0, ...be16(connId), ...be32(tsUs), ...be32(type === 4 ? 0 : tsDiff), ...be32(1 << 20), ...be16(seq), ...be16(ack), ...payload];
}
