/**
 * A packet-handler module for the nfqueue kernel tests (runs inside the queue
 * workers). Options:
 * - `verdict`: what to answer by default (`accept`, `drop`, `benign`);
 * - `badPattern`: an L4 payload containing it makes the flow `bad`;
 * - `benignOnPayload`: the first packet with L4 payload makes the flow `benign`;
 * - `holdMs`: answer asynchronously after this delay (to fill the queue);
 * - `emit`: report each packet as an event `{ id, len, l4, payloadLen, head, tcpFlags }`;
 * - `busyMs`: block the worker this long on the first packet (to overflow the socket buffer).
 */
import type { PacketHandlerFactory } from '../../src/dpi/nfqueue/handler.js';
import type { Decision } from '../../src/dpi/nfqueue/reader.js';

interface Options {
  verdict?: 'accept' | 'drop' | 'benign';
  badPattern?: string;
  benignOnPayload?: boolean;
  holdMs?: number;
  emit?: boolean;
  busyMs?: number;
}

/** L4 protocol and payload of an IPv4/IPv6 TCP/UDP packet. */
function l4(p: Buffer): { proto: number; payload: Buffer; tcpFlags?: number } {
  const v = (p[0] ?? 0) >> 4;
  let off: number;
  let proto: number;
  if (v === 4) {
    off = ((p[0] ?? 0) & 0x0f) * 4;
    proto = p[9] ?? 0;
  } else {
    off = 40;
    proto = p[6] ?? 0;
  }
  const tcpFlags = proto === 6 ? (p[off + 13] ?? 0) : undefined;
  if (proto === 6) off += ((p[off + 12] ?? 0) >> 4) * 4;
  else if (proto === 17) off += 8;
  return { proto, payload: p.subarray(Math.min(off, p.length)), tcpFlags };
}

export const createPacketHandler: PacketHandlerFactory = (ctx) => {
  const o = (ctx.options ?? {}) as Options;
  const pattern = o.badPattern ? Buffer.from(o.badPattern) : undefined;
  let first = true;
  return (p) => {
    if (first && o.busyMs) {
      const until = Date.now() + o.busyMs;
      while (Date.now() < until);
    }
    first = false;
    const { proto, payload, tcpFlags } = l4(p.payload);
    let d: Decision = o.verdict ?? 'accept';
    if (pattern && payload.includes(pattern)) d = 'bad';
    else if (o.benignOnPayload && payload.length > 0) d = 'benign';
    if (o.emit) ctx.emit({ id: p.id, len: p.length, l4: proto, payloadLen: payload.length, head: payload.subarray(0, 32).toString('latin1'), gso: p.gso, hook: p.hookName, tcpFlags });
    if (o.holdMs) return new Promise<Decision>((r) => setTimeout(() => r(d), o.holdMs));
    return d;
  };
};
