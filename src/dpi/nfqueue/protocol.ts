/**
 * The nfnetlink_queue protocol in TypeScript: configuration messages (bind,
 * copy mode, queue length, flags), the packet message parser, single and
 * batch verdicts with packet mark and conntrack mark. Pure, no I/O.
 * @module
 */
import {
  AF_UNSPEC,
  CTA,
  NF_INET_HOOK,
  NF_VERDICT,
  NFQA,
  NFQA_CFG,
  NFQA_SKB,
  NFQNL_CFG_CMD,
  NFQNL_COPY,
  NFQNL_MSG_CONFIG,
  NFQNL_MSG_PACKET,
  NFQNL_MSG_VERDICT,
  NFQNL_MSG_VERDICT_BATCH,
  NFNL_SUBSYS_QUEUE,
  NFGENMSG_LEN,
  NLM_F_ACK,
  NLM_F_REQUEST,
} from './constants.js';
import { nfgenmsg, nla, nlaNested, nlaU32be, nlmsg, parseAttrs, type NlMessage } from './netlink.js';

/** The netlink message type of an nfnetlink_queue message. */
export function queueMsgType(msg: number): number {
  return (NFNL_SUBSYS_QUEUE << 8) | msg;
}

/** The kind of verdict: what the kernel does with the packet. */
export type VerdictKind = 'accept' | 'drop' | 'repeat';

/** A verdict for one packet (or, in a batch, for every packet up to an id). */
export interface Verdict {
  /** accept: continue with the next hook; drop: discard; repeat: run the same hook (chain) again. */
  verdict: VerdictKind;
  /** Set the packet mark (skb->mark, the whole 32 bits). */
  mark?: number | undefined;
  /** Set the conntrack mark of the packet's connection (needs a kernel with CONFIG_NETFILTER_NETLINK_GLUE_CT). */
  connmark?: { value: number; mask?: number | undefined } | undefined;
  /** Replace the packet with these bytes (mangling). */
  payload?: Buffer | undefined;
}

/** Numeric netfilter verdict for a {@link VerdictKind}. */
export function verdictCode(kind: VerdictKind): number {
  return kind === 'accept' ? NF_VERDICT.ACCEPT : kind === 'drop' ? NF_VERDICT.DROP : NF_VERDICT.REPEAT;
}

function verdictHdr(kind: VerdictKind, id: number): Buffer {
  const v = Buffer.alloc(8);
  v.writeUInt32BE(verdictCode(kind), 0);
  v.writeUInt32BE(id >>> 0, 4);
  return nla(NFQA.VERDICT_HDR, v);
}

function verdictExtras(v: Verdict): Buffer[] {
  const parts: Buffer[] = [];
  if (v.mark !== undefined) parts.push(nlaU32be(NFQA.MARK, v.mark));
  if (v.connmark !== undefined) {
    const ct = [nlaU32be(CTA.MARK, v.connmark.value)];
    if (v.connmark.mask !== undefined) ct.push(nlaU32be(CTA.MARK_MASK, v.connmark.mask));
    parts.push(nlaNested(NFQA.CT, ct));
  }
  if (v.payload !== undefined) parts.push(nla(NFQA.PAYLOAD, v.payload));
  return parts;
}

/** NFQNL_MSG_VERDICT for packet `id` of `queue`. */
export function buildVerdict(queue: number, id: number, v: Verdict, seq = 0): Buffer {
  return nlmsg(queueMsgType(NFQNL_MSG_VERDICT), NLM_F_REQUEST, seq, [nfgenmsg(AF_UNSPEC, queue), verdictHdr(v.verdict, id), ...verdictExtras(v)]);
}

/**
 * NFQNL_MSG_VERDICT_BATCH: the same verdict for every packet of `queue` whose
 * id is at most `id`. The payload cannot be replaced in a batch.
 */
export function buildBatchVerdict(queue: number, id: number, v: Omit<Verdict, 'payload'>, seq = 0): Buffer {
  return nlmsg(queueMsgType(NFQNL_MSG_VERDICT_BATCH), NLM_F_REQUEST, seq, [
    nfgenmsg(AF_UNSPEC, queue),
    verdictHdr(v.verdict, id),
    ...verdictExtras({ ...v, payload: undefined }),
  ]);
}

/** Config command message (bind/unbind a queue, or the obsolete PF bind/unbind) with an ack request. */
export function buildConfigCmd(queue: number, cmd: keyof typeof NFQNL_CFG_CMD, pf = AF_UNSPEC, seq = 0): Buffer {
  const c = Buffer.alloc(4);
  c.writeUInt8(NFQNL_CFG_CMD[cmd], 0);
  c.writeUInt8(0, 1);
  c.writeUInt16BE(pf, 2);
  return nlmsg(queueMsgType(NFQNL_MSG_CONFIG), NLM_F_REQUEST | NLM_F_ACK, seq, [nfgenmsg(AF_UNSPEC, queue), nla(NFQA_CFG.CMD, c)]);
}

/** Parameters of a bound queue. */
export interface QueueParams {
  /** What to copy to userspace: nothing, metadata, or the packet (default). */
  copyMode?: keyof typeof NFQNL_COPY | undefined;
  /** How many bytes of each packet to copy (default 0xffff). */
  copyRange?: number | undefined;
  /** Kernel queue length (packets waiting for a verdict) before the queue counts as full. */
  maxLen?: number | undefined;
  /** Flags to set, by NFQA_CFG_F_* bits. */
  flags?: number | undefined;
  /** Which flags to change (default: exactly the bits of `flags` plus FAIL_OPEN, CONNTRACK, GSO). */
  flagsMask?: number | undefined;
}

/** NFQNL_MSG_CONFIG with copy mode/range, queue length and flags, with an ack request. */
export function buildConfigParams(queue: number, p: QueueParams, seq = 0): Buffer {
  const parts = [nfgenmsg(AF_UNSPEC, queue)];
  if (p.copyMode !== undefined || p.copyRange !== undefined) {
    const params = Buffer.alloc(5);
    params.writeUInt32BE((p.copyRange ?? 0xffff) >>> 0, 0);
    params.writeUInt8(NFQNL_COPY[p.copyMode ?? 'PACKET'], 4);
    parts.push(nla(NFQA_CFG.PARAMS, params));
  }
  if (p.maxLen !== undefined) parts.push(nlaU32be(NFQA_CFG.QUEUE_MAXLEN, p.maxLen));
  if (p.flags !== undefined) {
    parts.push(nlaU32be(NFQA_CFG.FLAGS, p.flags));
    parts.push(nlaU32be(NFQA_CFG.MASK, p.flagsMask ?? p.flags));
  }
  return nlmsg(queueMsgType(NFQNL_MSG_CONFIG), NLM_F_REQUEST | NLM_F_ACK, seq, parts);
}

/** Conntrack data sent with a packet when the queue has NFQA_CFG_F_CONNTRACK. */
export interface PacketConntrack {
  mark?: number;
  id?: number;
  status?: number;
}

/** A packet the kernel queued, as decoded from NFQNL_MSG_PACKET. */
export interface QueuedPacket {
  /** Queue number the packet came from. */
  queue: number;
  /** Packet id in the queue (verdicts refer to it). */
  id: number;
  /** Ethertype in host order (0x0800 IPv4, 0x86dd IPv6). */
  hwProtocol: number;
  /** Netfilter hook number (NF_INET_*). */
  hook: number;
  /** Hook name (`forward`, `input`, ...). */
  hookName: string;
  /** Packet mark (0 when absent). */
  mark: number;
  /** Kernel receive timestamp in microseconds since the epoch, when the skb had one. */
  timestampUs?: number;
  /** Input interface index. */
  indev?: number;
  /** Output interface index. */
  outdev?: number;
  /** Bridge port the packet came in on. */
  physindev?: number;
  /** Bridge port the packet goes out on. */
  physoutdev?: number;
  /** Source hardware address, `aa:bb:...`. */
  hwaddr?: string;
  /** The packet from the network header on (copied: safe to keep). */
  payload: Buffer;
  /** Length of the packet in the kernel (larger than payload.length when the copy range truncated it). */
  length: number;
  /** NFQA_SKB_INFO bits. */
  skbInfo: number;
  /** A GSO super-packet (exceeds the device MTU; only with NFQA_CFG_F_GSO). */
  gso: boolean;
  /** Checksums may look wrong but are fine (offloaded). */
  csumNotReady: boolean;
  /** Conntrack info (enum ip_conntrack_info: 0 established, 2 new, 3 established reply...). */
  ctInfo?: number;
  /** Conntrack attributes (only with NFQA_CFG_F_CONNTRACK on a kernel that supports it). */
  ct?: PacketConntrack;
  /** Socket owner, for locally generated packets with NFQA_CFG_F_UID_GID. */
  uid?: number;
  /** Socket group, with NFQA_CFG_F_UID_GID. */
  gid?: number;
  /** skb->priority. */
  priority?: number;
  /** VLAN tag. */
  vlan?: { proto: number; tci: number };
}

function u32(b: Buffer | undefined): number | undefined {
  return b && b.length >= 4 ? b.readUInt32BE(0) : undefined;
}

/**
 * Decode an NFQNL_MSG_PACKET message (body = nfgenmsg + attributes).
 * Returns undefined for other messages or when the packet header is missing.
 * The payload is copied so it stays valid after the receive buffer is reused.
 */
export function parsePacket(msg: NlMessage): QueuedPacket | undefined {
  if (msg.type !== queueMsgType(NFQNL_MSG_PACKET) || msg.body.length < NFGENMSG_LEN) return undefined;
  const queue = msg.body.readUInt16BE(2);
  const a = parseAttrs(msg.body, NFGENMSG_LEN);
  const hdr = a[NFQA.PACKET_HDR];
  if (!hdr || hdr.length < 7) return undefined;
  const hook = hdr.readUInt8(6);
  const payloadView = a[NFQA.PAYLOAD];
  const payload = payloadView ? Buffer.from(payloadView) : Buffer.alloc(0);
  const skbInfo = u32(a[NFQA.SKB_INFO]) ?? 0;
  const p: QueuedPacket = {
    queue,
    id: hdr.readUInt32BE(0),
    hwProtocol: hdr.readUInt16BE(4),
    hook,
    hookName: NF_INET_HOOK[hook] ?? String(hook),
    mark: u32(a[NFQA.MARK]) ?? 0,
    payload,
    length: u32(a[NFQA.CAP_LEN]) ?? payload.length,
    skbInfo,
    gso: (skbInfo & NFQA_SKB.GSO) !== 0,
    csumNotReady: (skbInfo & NFQA_SKB.CSUMNOTREADY) !== 0,
  };
  const ts = a[NFQA.TIMESTAMP];
  if (ts && ts.length >= 16) p.timestampUs = Number(ts.readBigUInt64BE(0)) * 1e6 + Number(ts.readBigUInt64BE(8));
  const indev = u32(a[NFQA.IFINDEX_INDEV]);
  if (indev !== undefined) p.indev = indev;
  const outdev = u32(a[NFQA.IFINDEX_OUTDEV]);
  if (outdev !== undefined) p.outdev = outdev;
  const pin = u32(a[NFQA.IFINDEX_PHYSINDEV]);
  if (pin !== undefined) p.physindev = pin;
  const pout = u32(a[NFQA.IFINDEX_PHYSOUTDEV]);
  if (pout !== undefined) p.physoutdev = pout;
  const hw = a[NFQA.HWADDR];
  if (hw && hw.length >= 4) {
    const n = Math.min(hw.readUInt16BE(0), 8, hw.length - 4);
    p.hwaddr = [...hw.subarray(4, 4 + n)].map((x) => x.toString(16).padStart(2, '0')).join(':');
  }
  const ctInfo = u32(a[NFQA.CT_INFO]);
  if (ctInfo !== undefined) p.ctInfo = ctInfo;
  const ct = a[NFQA.CT];
  if (ct) {
    const c = parseAttrs(ct);
    const info: PacketConntrack = {};
    const mark = u32(c[CTA.MARK]);
    if (mark !== undefined) info.mark = mark;
    const id = u32(c[CTA.ID]);
    if (id !== undefined) info.id = id;
    const status = u32(c[CTA.STATUS]);
    if (status !== undefined) info.status = status;
    p.ct = info;
  }
  const uid = u32(a[NFQA.UID]);
  if (uid !== undefined) p.uid = uid;
  const gid = u32(a[NFQA.GID]);
  if (gid !== undefined) p.gid = gid;
  const prio = u32(a[NFQA.PRIORITY]);
  if (prio !== undefined) p.priority = prio;
  const vlan = a[NFQA.VLAN];
  if (vlan) {
    const v = parseAttrs(vlan);
    const proto = v[1];
    const tci = v[2];
    if (proto && tci && proto.length >= 2 && tci.length >= 2) p.vlan = { proto: proto.readUInt16BE(0), tci: tci.readUInt16BE(0) };
  }
  return p;
}

/** Encode a packet message the way the kernel does (for tests and replay tools). */
export function buildPacketMessage(p: {
  queue: number;
  id: number;
  hwProtocol?: number;
  hook?: number;
  mark?: number;
  payload?: Buffer;
  capLen?: number;
  skbInfo?: number;
  indev?: number;
  outdev?: number;
  ctMark?: number;
  ctInfo?: number;
  timestamp?: { sec: number; usec: number };
}): Buffer {
  const hdr = Buffer.alloc(7);
  hdr.writeUInt32BE(p.id >>> 0, 0);
  hdr.writeUInt16BE(p.hwProtocol ?? 0x0800, 4);
  hdr.writeUInt8(p.hook ?? 2, 6);
  const parts = [nfgenmsg(AF_UNSPEC, p.queue), nla(NFQA.PACKET_HDR, hdr)];
  if (p.mark !== undefined) parts.push(nlaU32be(NFQA.MARK, p.mark));
  if (p.timestamp) {
    const ts = Buffer.alloc(16);
    ts.writeBigUInt64BE(BigInt(p.timestamp.sec), 0);
    ts.writeBigUInt64BE(BigInt(p.timestamp.usec), 8);
    parts.push(nla(NFQA.TIMESTAMP, ts));
  }
  if (p.indev !== undefined) parts.push(nlaU32be(NFQA.IFINDEX_INDEV, p.indev));
  if (p.outdev !== undefined) parts.push(nlaU32be(NFQA.IFINDEX_OUTDEV, p.outdev));
  if (p.ctMark !== undefined) parts.push(nlaNested(NFQA.CT, [nlaU32be(CTA.MARK, p.ctMark)]));
  if (p.ctInfo !== undefined) parts.push(nlaU32be(NFQA.CT_INFO, p.ctInfo));
  if (p.capLen !== undefined) parts.push(nlaU32be(NFQA.CAP_LEN, p.capLen));
  if (p.skbInfo !== undefined) parts.push(nlaU32be(NFQA.SKB_INFO, p.skbInfo));
  if (p.payload !== undefined) parts.push(nla(NFQA.PAYLOAD, p.payload));
  return nlmsg(queueMsgType(NFQNL_MSG_PACKET), 0, 0, parts);
}
