/**
 * Netlink framing in TypeScript: message headers, nfgenmsg, attributes (TLVs),
 * error acks. Pure functions over Buffers, no I/O. Netlink headers are in host
 * byte order (little-endian on every platform netfence supports); nfnetlink
 * attribute payloads are big-endian.
 * @module
 */
import {
  NFGENMSG_LEN,
  NLA_F_NESTED,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLM_F_ACK_TLVS,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
} from './constants.js';

/** Round up to the 4-byte netlink alignment. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Encode one attribute (header, value, padding). */
export function nla(type: number, value: Buffer, nested = false): Buffer {
  const len = NLA_HDRLEN + value.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE((type & NLA_TYPE_MASK) | (nested ? NLA_F_NESTED : 0), 2);
  value.copy(out, NLA_HDRLEN);
  return out;
}

/** Encode a big-endian u32 attribute. */
export function nlaU32be(type: number, value: number): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32BE(value >>> 0, 0);
  return nla(type, v);
}

/** Encode a nested attribute holding `children` (already encoded). */
export function nlaNested(type: number, children: Buffer[]): Buffer {
  return nla(type, Buffer.concat(children), true);
}

/** Encode the nfnetlink generic header (family, version 0, resource id = queue number). */
export function nfgenmsg(family: number, resId: number): Buffer {
  const b = Buffer.alloc(NFGENMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeUInt8(0, 1);
  b.writeUInt16BE(resId & 0xffff, 2);
  return b;
}

/** Encode one netlink message: header plus the concatenated (aligned) parts. */
export function nlmsg(type: number, flags: number, seq: number, parts: Buffer[], pid = 0): Buffer {
  const body = Buffer.concat(parts);
  const len = NLMSG_HDRLEN + body.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq >>> 0, 8);
  out.writeUInt32LE(pid >>> 0, 12);
  body.copy(out, NLMSG_HDRLEN);
  return out;
}

/** A decoded netlink message header with a view of its payload. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Payload after the 16-byte header (a view into the receive buffer). */
  body: Buffer;
}

/**
 * Split a received datagram into netlink messages. Truncated or malformed
 * trailing bytes are ignored (a datagram is never split across reads).
 */
export function parseMessages(buf: Buffer, length = buf.length): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      body: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/**
 * Parse a run of attributes into an array indexed by attribute type (flags
 * stripped). Later duplicates win. Values are views into `buf`.
 */
export function parseAttrs(buf: Buffer, start = 0, end = buf.length): (Buffer | undefined)[] {
  const out: (Buffer | undefined)[] = [];
  let off = start;
  while (off + NLA_HDRLEN <= end) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || off + len > end) break;
    out[type] = buf.subarray(off + NLA_HDRLEN, off + len);
    off += align4(len);
  }
  return out;
}

/** A decoded NLMSG_ERROR: errno 0 is an ack. */
export interface NlError {
  /** Positive errno, 0 for a plain ack. */
  errno: number;
  /** Sequence number of the request it answers. */
  seq: number;
  /** Extended-ack message from the kernel, when NETLINK_EXT_ACK is on. */
  message?: string;
}

/** Decode the payload of an NLMSG_ERROR message. */
export function parseError(msg: NlMessage): NlError {
  if (msg.type !== NLMSG_ERROR || msg.body.length < 4 + NLMSG_HDRLEN) return { errno: 0, seq: msg.seq };
  const errno = -msg.body.readInt32LE(0);
  const origLen = msg.body.readUInt32LE(4);
  const origSeq = msg.body.readUInt32LE(12);
  const out: NlError = { errno, seq: origSeq };
  if (msg.flags & NLM_F_ACK_TLVS) {
    // With NETLINK_CAP_ACK only the original header is echoed; otherwise the whole request.
    const capped = (msg.flags & 0x100) !== 0;
    const tlvStart = 4 + (capped ? NLMSG_HDRLEN : align4(origLen));
    if (tlvStart <= msg.body.length) {
      const attrs = parseAttrs(msg.body, tlvStart);
      const m = attrs[NLMSGERR_ATTR_MSG];
      if (m) out.message = m.toString('utf8').replace(/\0+$/, '');
    }
  }
  return out;
}
