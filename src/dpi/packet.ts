/**
 * Packet decoding: link layer (Ethernet with VLAN/QinQ/MPLS/PPPoE, Linux cooked
 * SLL and SLL2, raw IP, BSD null/loopback, PPP, Cisco HDLC, 802.11 with radiotap
 * or PPI) → IPv4 / IPv6 (extension headers, IP-in-IP, GRE) → TCP / UDP with payload.
 * Pure functions over byte arrays; no allocation beyond the result object and views.
 * @module
 */
import { addressText } from '../net/ip.js';

/** pcap link-layer type numbers (LINKTYPE_*) this decoder understands. */
export const LinkType = {
  NULL: 0,
  ETHERNET: 1,
  PPP: 9,
  RAW_OLD_12: 12,
  RAW_OLD_14: 14,
  PPP_HDLC: 50,
  PPP_ETHER: 51,
  RAW: 101,
  C_HDLC: 104,
  IEEE802_11: 105,
  LOOP: 108,
  LINUX_SLL: 113,
  IEEE802_11_RADIOTAP: 127,
  PPI: 192,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** A decoded IP packet with its transport header fields and payload. */
export interface DecodedPacket {
  /** IP version of the innermost packet. */
  family: 4 | 6;
  /** Source address bytes (4 or 16; a view into the frame). */
  src: Uint8Array;
  /** Destination address bytes (4 or 16; a view into the frame). */
  dst: Uint8Array;
  /** IP protocol number of the transport (6 = TCP, 17 = UDP, others passed through). */
  protocol: number;
  /** Source port (0 when not TCP/UDP). */
  sport: number;
  /** Destination port (0 when not TCP/UDP). */
  dport: number;
  /** TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10); 0 for UDP. */
  tcpFlags: number;
  /** TCP sequence number (unsigned 32-bit); 0 for UDP. */
  seq: number;
  /** TCP acknowledgment number (unsigned 32-bit; meaningful with the ACK flag); 0 for UDP. */
  ack: number;
  /** Transport payload (a view into the frame, cut to the IP/UDP length). */
  payload: Uint8Array;
  /** Bytes of the IP packet (IP total length, or what was captured). */
  ipBytes: number;
  /** True when this is the first fragment of a fragmented IP datagram (payload incomplete). */
  fragmented: boolean;
  /**
   * What the kernel's connection tracking says about the packet, when the reader had it (an NFQUEUE
   * reader with conntrack attributes; never from a capture): whether it travels in the reply
   * direction, and the connection's id. With it a flow is oriented and told apart from an earlier
   * connection on the same 5-tuple without seeing its SYN.
   */
  conntrack?: PacketConntrackHint | undefined;
}

/** See {@link DecodedPacket.conntrack}. */
export interface PacketConntrackHint {
  /** The packet travels in the connection's reply direction (server to client). */
  reply: boolean;
  /** The conntrack entry's id (a new id on a known 5-tuple is a new connection). */
  id?: number | undefined;
}

/** TCP flag bits. */
export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

const MAX_DEPTH = 6;

function u16(b: Uint8Array, o: number): number {
  return ((b[o]! << 8) | b[o + 1]!) >>> 0;
}
function u16le(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8)) >>> 0;
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
function u32le(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/**
 * Decode one captured frame of the given link type down to the transport payload.
 * Returns `undefined` for frames that carry no IP packet, are truncated before the
 * transport header, or are non-first IP fragments.
 */
export function decodeFrame(linkType: number, frame: Uint8Array): DecodedPacket | undefined {
  return decodeLink(linkType & 0xffff, frame, 0, 0);
}

function decodeLink(linkType: number, b: Uint8Array, off: number, depth: number): DecodedPacket | undefined {
  if (depth > MAX_DEPTH) return undefined;
  switch (linkType) {
    case LinkType.ETHERNET:
      if (b.length < off + 14) return undefined;
      return decodeEtherType(u16(b, off + 12), b, off + 14, depth);
    case LinkType.RAW:
    case LinkType.RAW_OLD_12:
    case LinkType.RAW_OLD_14:
    case LinkType.IPV4:
    case LinkType.IPV6:
      return decodeIpGuess(b, off, depth);
    case LinkType.NULL:
    case LinkType.LOOP: {
      if (b.length < off + 4) return undefined;
      // Address family in the capturing host's byte order (NULL) or network order (LOOP).
      const le = u32le(b, off);
      const be = u32(b, off);
      const fam = le < 0x10000 ? le : be;
      if (fam === 2) return decodeIp4(b, off + 4, depth);
      if (fam === 10 || fam === 24 || fam === 28 || fam === 30) return decodeIp6(b, off + 4, depth);
      return decodeIpGuess(b, off + 4, depth);
    }
    case LinkType.LINUX_SLL:
      if (b.length < off + 16) return undefined;
      return decodeEtherType(u16(b, off + 14), b, off + 16, depth);
    case LinkType.LINUX_SLL2:
      if (b.length < off + 20) return undefined;
      return decodeEtherType(u16(b, off), b, off + 20, depth);
    case LinkType.PPP:
    case LinkType.PPP_HDLC:
    case LinkType.PPP_ETHER:
      return decodePpp(b, off, depth);
    case LinkType.C_HDLC:
      if (b.length < off + 4) return undefined;
      return decodeEtherType(u16(b, off + 2), b, off + 4, depth);
    case LinkType.IEEE802_11:
      return decode80211(b, off, depth);
    case LinkType.IEEE802_11_RADIOTAP: {
      if (b.length < off + 4) return undefined;
      const len = u16le(b, off + 2);
      return decode80211(b, off + len, depth);
    }
    case LinkType.PPI: {
      if (b.length < off + 8) return undefined;
      const len = u16le(b, off + 2);
      const dlt = u32le(b, off + 4);
      return decodeLink(dlt & 0xffff, b, off + len, depth + 1);
    }
    default:
      return undefined;
  }
}

function decodeIpGuess(b: Uint8Array, off: number, depth: number): DecodedPacket | undefined {
  if (b.length <= off) return undefined;
  const v = b[off]! >> 4;
  if (v === 4) return decodeIp4(b, off, depth);
  if (v === 6) return decodeIp6(b, off, depth);
  return undefined;
}

function decodeEtherType(type: number, b: Uint8Array, off: number, depth: number): DecodedPacket | undefined {
  for (let i = 0; i < 8; i++) {
    switch (type) {
      case 0x0800:
        return decodeIp4(b, off, depth);
      case 0x86dd:
        return decodeIp6(b, off, depth);
      case 0x8100: // 802.1Q
      case 0x88a8: // 802.1ad
      case 0x9100:
      case 0x9200:
        if (b.length < off + 4) return undefined;
        type = u16(b, off + 2);
        off += 4;
        continue;
      case 0x8847: // MPLS unicast
      case 0x8848: {
        // Pop labels until bottom of stack, then guess by IP version nibble.
        for (let n = 0; n < 16; n++) {
          if (b.length < off + 4) return undefined;
          const bos = b[off + 2]! & 0x01;
          off += 4;
          if (bos) return decodeIpGuess(b, off, depth);
        }
        return undefined;
      }
      case 0x8864: // PPPoE session
        if (b.length < off + 8) return undefined;
        return decodePppProto(u16(b, off + 6), b, off + 8, depth);
      default:
        // 802.3 length field + LLC/SNAP
        if (type <= 1500 && b.length >= off + 8 && b[off] === 0xaa && b[off + 1] === 0xaa && b[off + 2] === 0x03) {
          type = u16(b, off + 6);
          off += 8;
          continue;
        }
        return undefined;
    }
  }
  return undefined;
}

function decodePpp(b: Uint8Array, off: number, depth: number): DecodedPacket | undefined {
  if (b.length < off + 2) return undefined;
  if (b[off] === 0xff && b[off + 1] === 0x03) off += 2; // HDLC address/control
  if (b.length < off + 1) return undefined;
  // Protocol field may be compressed to one byte (odd value).
  if (b[off]! & 0x01) return decodePppProto(b[off]!, b, off + 1, depth);
  if (b.length < off + 2) return undefined;
  return decodePppProto(u16(b, off), b, off + 2, depth);
}

function decodePppProto(proto: number, b: Uint8Array, off: number, depth: number): DecodedPacket | undefined {
  if (proto === 0x0021) return decodeIp4(b, off, depth);
  if (proto === 0x0057) return decodeIp6(b, off, depth);
  return undefined;
}

function decode80211(b: Uint8Array, off: number, depth: number): DecodedPacket | undefined {
  if (b.length < off + 24) return undefined;
  const fc0 = b[off]!;
  const fc1 = b[off + 1]!;
  const type = (fc0 >> 2) & 0x3;
  const subtype = (fc0 >> 4) & 0xf;
  if (type !== 2) return undefined; // data frames only
  if (fc1 & 0x40) return undefined; // protected: encrypted payload
  let hdr = 24;
  if ((fc1 & 0x03) === 0x03) hdr += 6; // 4-address (WDS)
  if (subtype & 0x08) {
    hdr += 2; // QoS control
    if (fc1 & 0x80) hdr += 4; // HT control (order bit)
  }
  if (subtype & 0x04) return undefined; // null data
  const p = off + hdr;
  if (b.length < p + 8) return undefined;
  if (b[p] === 0xaa && b[p + 1] === 0xaa && b[p + 2] === 0x03) return decodeEtherType(u16(b, p + 6), b, p + 8, depth);
  return undefined;
}

function decodeIp4(b: Uint8Array, off: number, depth: number): DecodedPacket | undefined {
  if (b.length < off + 20) return undefined;
  const vihl = b[off]!;
  if (vihl >> 4 !== 4) return undefined;
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < 20 || b.length < off + ihl) return undefined;
  const total = u16(b, off + 2);
  // Captured bytes may be fewer (snaplen) or more (Ethernet padding); TSO captures may say 0.
  let end = total >= ihl ? Math.min(b.length, off + total) : b.length;
  if (end < off + ihl) end = off + ihl;
  const fragField = u16(b, off + 6);
  const mf = (fragField & 0x2000) !== 0;
  const fragOff = fragField & 0x1fff;
  if (fragOff !== 0) return undefined; // not the first fragment: no transport header
  const proto = b[off + 9]!;
  const src = b.subarray(off + 12, off + 16);
  const dst = b.subarray(off + 16, off + 20);
  const ipBytes = total >= ihl ? total : end - off;
  return decodeL4(proto, b, off + ihl, end, 4, src, dst, ipBytes, mf, depth);
}

function decodeIp6(b: Uint8Array, off: number, depth: number): DecodedPacket | undefined {
  if (b.length < off + 40) return undefined;
  if (b[off]! >> 4 !== 6) return undefined;
  const plen = u16(b, off + 4);
  let next = b[off + 6]!;
  const src = b.subarray(off + 8, off + 24);
  const dst = b.subarray(off + 24, off + 40);
  const end = plen > 0 ? Math.min(b.length, off + 40 + plen) : b.length; // plen 0: jumbogram / TSO
  let p = off + 40;
  let fragmented = false;
  for (let i = 0; i < 10; i++) {
    switch (next) {
      case 0: // hop-by-hop
      case 43: // routing
      case 60: // destination options
      case 135: // mobility
      case 139: // HIP
      case 140: // shim6
        if (end < p + 8) return undefined;
        next = b[p]!;
        p += (b[p + 1]! + 1) * 8;
        continue;
      case 44: {
        // fragment
        if (end < p + 8) return undefined;
        const fo = u16(b, p + 2);
        if (fo >> 3 !== 0) return undefined; // not the first fragment
        fragmented = (fo & 1) === 1;
        next = b[p]!;
        p += 8;
        continue;
      }
      case 51: // AH
        if (end < p + 8) return undefined;
        next = b[p]!;
        p += (b[p + 1]! + 2) * 4;
        continue;
      default:
        if (p > end) return undefined;
        return decodeL4(next, b, p, end, 6, src, dst, plen > 0 ? plen + 40 : end - off, fragmented, depth);
    }
  }
  return undefined;
}

function decodeL4(
  proto: number,
  b: Uint8Array,
  p: number,
  end: number,
  family: 4 | 6,
  src: Uint8Array,
  dst: Uint8Array,
  ipBytes: number,
  fragmented: boolean,
  depth: number,
): DecodedPacket | undefined {
  switch (proto) {
    case 6: {
      if (end < p + 20) return undefined;
      const doff = (b[p + 12]! >> 4) * 4;
      if (doff < 20) return undefined;
      const start = Math.min(p + doff, end);
      return {
        family,
        src,
        dst,
        protocol: 6,
        sport: u16(b, p),
        dport: u16(b, p + 2),
        tcpFlags: b[p + 13]!,
        seq: u32(b, p + 4),
        ack: u32(b, p + 8),
        payload: b.subarray(start, end),
        ipBytes,
        fragmented,
      };
    }
    case 17: {
      if (end < p + 8) return undefined;
      const ulen = u16(b, p + 4);
      const stop = ulen >= 8 && !fragmented ? Math.min(end, p + ulen) : end;
      return {
        family,
        src,
        dst,
        protocol: 17,
        sport: u16(b, p),
        dport: u16(b, p + 2),
        tcpFlags: 0,
        seq: 0,
        ack: 0,
        payload: b.subarray(p + 8, stop),
        ipBytes,
        fragmented,
      };
    }
    case 4: // IP-in-IP
      return depth < MAX_DEPTH && !fragmented ? decodeIp4(b.subarray(0, end), p, depth + 1) : undefined;
    case 41: // IPv6-in-IP
      return depth < MAX_DEPTH && !fragmented ? decodeIp6(b.subarray(0, end), p, depth + 1) : undefined;
    case 47: {
      // GRE (v0): flags/version, protocol type, optional checksum/key/sequence
      if (fragmented || depth >= MAX_DEPTH || end < p + 4) return undefined;
      const flags = u16(b, p);
      if ((flags & 0x7) !== 0) return undefined; // only GRE version 0
      let q = p + 4;
      if (flags & 0x8000) q += 4;
      if (flags & 0x2000) q += 4;
      if (flags & 0x1000) q += 4;
      const et = u16(b, p + 2);
      const inner = b.subarray(0, end);
      if (et === 0x6558) return decodeLink(LinkType.ETHERNET, inner, q, depth + 1);
      return decodeEtherType(et, inner, q, depth + 1);
    }
    default:
      return {
        family,
        src,
        dst,
        protocol: proto,
        sport: 0,
        dport: 0,
        tcpFlags: 0,
        seq: 0,
        ack: 0,
        payload: b.subarray(Math.min(p, end), end),
        ipBytes,
        fragmented,
      };
  }
}

/** Format 4 or 16 address bytes as text (IPv6 compressed per RFC 5952). */
export function formatAddress(a: Uint8Array): string {
  return addressText(a);
}
