import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NFQA, NFQA_CFG_F, NFQA_SKB, NLM_F_ACK_TLVS, NLMSG_ERROR } from '../../src/dpi/nfqueue/constants.js';
import { align4, nla, nlaU32be, nlmsg, parseAttrs, parseError, parseMessages } from '../../src/dpi/nfqueue/netlink.js';
import { parseProcQueues } from '../../src/dpi/nfqueue/proc.js';
import {
  buildBatchVerdict,
  buildConfigCmd,
  buildConfigParams,
  buildPacketMessage,
  buildVerdict,
  parsePacket,
  queueMsgType,
} from '../../src/dpi/nfqueue/protocol.js';
import { planVerdicts } from '../../src/dpi/nfqueue/reader.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('netlink framing', () => {
  it('encodes attributes with length, type and padding', () => {
    expect(hex(nla(3, Buffer.from([1, 2, 3])))).toBe('0700' + '0300' + '010203' + '00');
    expect(hex(nlaU32be(5, 0x01020304))).toBe('0800' + '0500' + '01020304');
    expect(hex(nla(11, Buffer.alloc(0), true))).toBe('0400' + '0b80');
  });

  it('splits datagrams into messages and stops at a truncated one', () => {
    const a = nlmsg(0x0300, 0, 7, [Buffer.from([1, 2, 3, 4])]);
    const b = nlmsg(2, 0, 8, [Buffer.alloc(9)]);
    const both = Buffer.concat([a, b]);
    const msgs = parseMessages(both);
    expect(msgs.map((m) => [m.type, m.seq, m.body.length])).toEqual([
      [0x0300, 7, 4],
      [2, 8, 9],
    ]);
    expect(parseMessages(both, a.length + 20)).toHaveLength(1);
  });

  it('decodes error acks with the extended-ack message', () => {
    // errno -1 (EPERM), original header (capped), then NLMSGERR_ATTR_MSG.
    const orig = nlmsg(queueMsgType(2), 5, 42, []);
    const text = Buffer.from('queue is busy\0');
    const body = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), orig.subarray(0, 16), nla(1, text)]);
    const msg = parseMessages(nlmsg(NLMSG_ERROR, 0x100 | NLM_F_ACK_TLVS, 42, [body]))[0];
    expect(msg).toBeDefined();
    expect(parseError(msg!)).toEqual({ errno: 1, seq: 42, message: 'queue is busy' });
  });

  it('attributes round-trip (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 30 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 12 }), (attrs) => {
        const buf = Buffer.concat(attrs.map(([t, v]) => nla(t, Buffer.from(v))));
        expect(buf.length % 4).toBe(0);
        const parsed = parseAttrs(buf);
        const last = new Map(attrs.map(([t, v]) => [t, Buffer.from(v)]));
        for (const [t, v] of last) expect(hex(parsed[t] as Buffer)).toBe(hex(v));
      }),
    );
    expect(align4(5)).toBe(8);
  });
});

describe('nfnetlink_queue messages', () => {
  it('encodes a bind command as the kernel expects it', () => {
    expect(hex(buildConfigCmd(5, 'BIND', 0, 1))).toBe(
      '1c000000' + '0203' + '0500' + '01000000' + '00000000' + // nlmsghdr: len 28, type QUEUE<<8|CONFIG, REQUEST|ACK, seq 1
        '00000005' + // nfgenmsg: AF_UNSPEC, v0, queue 5 (big-endian)
        '0800' + '0100' + '01000000', // NFQA_CFG_CMD: BIND, pad, pf 0
    );
    expect(hex(buildConfigCmd(0, 'PF_BIND', 10, 2)).slice(-8)).toBe('0300000a');
  });

  it('encodes copy mode, range, queue length and flags', () => {
    const m = buildConfigParams(3, { copyMode: 'PACKET', copyRange: 0xffff, maxLen: 4096, flags: NFQA_CFG_F.FAIL_OPEN | NFQA_CFG_F.GSO, flagsMask: 7 }, 9);
    const [msg] = parseMessages(m);
    expect(msg?.type).toBe(0x0302);
    const a = parseAttrs(msg!.body, 4);
    expect(hex(a[2] as Buffer)).toBe('0000ffff02'); // params: be32 range, u8 mode (packed, 5 bytes)
    expect((a[3] as Buffer).readUInt32BE(0)).toBe(4096);
    expect((a[5] as Buffer).readUInt32BE(0)).toBe(5);
    expect((a[4] as Buffer).readUInt32BE(0)).toBe(7);
  });

  it('encodes verdicts with mark and conntrack mark', () => {
    const v = buildVerdict(2, 77, { verdict: 'accept', mark: 0x10000000, connmark: { value: 0x10000000, mask: 0x30000000 } });
    const [msg] = parseMessages(v);
    expect(msg?.type).toBe(0x0301);
    expect(msg?.flags).toBe(1);
    expect(msg?.body.readUInt16BE(2)).toBe(2);
    const a = parseAttrs(msg!.body, 4);
    expect(hex(a[NFQA.VERDICT_HDR] as Buffer)).toBe('00000001' + '0000004d');
    expect((a[NFQA.MARK] as Buffer).readUInt32BE(0)).toBe(0x10000000);
    const ct = parseAttrs(a[NFQA.CT] as Buffer);
    expect((ct[8] as Buffer).readUInt32BE(0)).toBe(0x10000000); // CTA_MARK
    expect((ct[21] as Buffer).readUInt32BE(0)).toBe(0x30000000); // CTA_MARK_MASK
    const rep = parseAttrs(parseMessages(buildVerdict(2, 1, { verdict: 'repeat' }))[0]!.body, 4);
    expect((rep[NFQA.VERDICT_HDR] as Buffer).readUInt32BE(0)).toBe(4);
    const drop = parseAttrs(parseMessages(buildVerdict(2, 1, { verdict: 'drop' }))[0]!.body, 4);
    expect((drop[NFQA.VERDICT_HDR] as Buffer).readUInt32BE(0)).toBe(0);
  });

  it('encodes batch verdicts (type 3) without payload', () => {
    const [msg] = parseMessages(buildBatchVerdict(4, 1000, { verdict: 'drop' }));
    expect(msg?.type).toBe(0x0303);
    const a = parseAttrs(msg!.body, 4);
    expect(hex(a[NFQA.VERDICT_HDR] as Buffer)).toBe('00000000' + '000003e8');
    expect(a[NFQA.PAYLOAD]).toBeUndefined();
  });

  it('parses packet messages: header, mark, interfaces, payload, cap len, GSO, conntrack', () => {
    const payload = Buffer.from('4500001c000000004011000000000000000000000000', 'hex');
    const raw = buildPacketMessage({
      queue: 6,
      id: 99,
      hwProtocol: 0x0800,
      hook: 2,
      mark: 0x42,
      payload,
      capLen: 1500,
      skbInfo: NFQA_SKB.GSO | NFQA_SKB.CSUMNOTREADY,
      indev: 3,
      outdev: 4,
      ctMark: 0x10000000,
      ctInfo: 2,
      timestamp: { sec: 1_700_000_000, usec: 250 },
    });
    const p = parsePacket(parseMessages(raw)[0]!);
    expect(p).toMatchObject({
      queue: 6,
      id: 99,
      hwProtocol: 0x0800,
      hook: 2,
      hookName: 'forward',
      mark: 0x42,
      length: 1500,
      gso: true,
      csumNotReady: true,
      indev: 3,
      outdev: 4,
      ctInfo: 2,
      ct: { mark: 0x10000000 },
      timestampUs: 1_700_000_000_000_250,
    });
    expect(hex(p!.payload)).toBe(hex(payload));
    // The payload is a copy: reusing the receive buffer does not change it.
    raw.fill(0);
    expect(hex(p!.payload)).toBe(hex(payload));
  });

  it('defaults mark to 0 and length to the payload length; ignores other messages', () => {
    const p = parsePacket(parseMessages(buildPacketMessage({ queue: 1, id: 1, payload: Buffer.alloc(60) }))[0]!);
    expect(p?.mark).toBe(0);
    expect(p?.length).toBe(60);
    expect(p?.gso).toBe(false);
    expect(parsePacket(parseMessages(buildVerdict(1, 1, { verdict: 'accept' }))[0]!)).toBeUndefined();
  });
});

describe('verdict planning', () => {
  const acc = { verdict: 'accept' as const };
  const drop = { verdict: 'drop' as const };
  it('merges runs of equal plain verdicts into batches, in id order', () => {
    const plan = planVerdicts([
      { id: 3, v: acc },
      { id: 1, v: acc },
      { id: 2, v: acc },
      { id: 4, v: drop },
      { id: 5, v: { verdict: 'repeat', mark: 0x10000000 } },
      { id: 6, v: acc },
      { id: 7, v: acc },
    ]);
    expect(plan.map((p) => [p.kind, p.id, p.verdict.verdict, p.count])).toEqual([
      ['batch', 3, 'accept', 3],
      ['single', 4, 'drop', 1],
      ['single', 5, 'repeat', 1],
      ['batch', 7, 'accept', 2],
    ]);
    expect(plan[2]?.verdict.mark).toBe(0x10000000);
  });

  it('never batches over a packet still waiting for an async decision', () => {
    const plan = planVerdicts(
      [
        { id: 1, v: acc },
        { id: 2, v: acc },
        { id: 4, v: acc },
        { id: 5, v: acc },
      ],
      3,
    );
    expect(plan.map((p) => [p.kind, p.id])).toEqual([
      ['batch', 2],
      ['single', 4],
      ['single', 5],
    ]);
  });

  it('sends single verdicts when batching is off', () => {
    expect(planVerdicts([{ id: 1, v: acc }, { id: 2, v: acc }], Infinity, false).map((p) => p.kind)).toEqual(['single', 'single']);
  });

  it('every decided packet is covered exactly once (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 500 }), { maxLength: 60 }), fc.array(fc.constantFrom('accept', 'drop'), { minLength: 60, maxLength: 60 }), fc.integer({ min: 1, max: 600 }), (ids, kinds, minPending) => {
        const list = ids.filter((id) => id < minPending).map((id, i) => ({ id, v: { verdict: kinds[i] as 'accept' | 'drop' } }));
        const plan = planVerdicts(list, minPending);
        expect(plan.reduce((n, p) => n + p.count, 0)).toBe(list.length);
        const sorted = [...list].sort((a, b) => a.id - b.id);
        let i = 0;
        for (const p of plan) {
          const covered = sorted.slice(i, i + p.count);
          for (const c of covered) expect(c.v.verdict).toBe(p.verdict.verdict);
          expect(covered[covered.length - 1]?.id).toBe(p.id);
          i += p.count;
        }
      }),
    );
  });
});

describe('/proc/net/netfilter/nfnetlink_queue', () => {
  it('parses every field of each bound queue', () => {
    const text = '    5  13946     0 2 65531     0     0        6  1\n   20 123456    17 2  1500     3     9   100000  1\ngarbage\n';
    expect(parseProcQueues(text)).toEqual([
      { queue: 5, portid: 13946, queueTotal: 0, copyMode: 2, copyRange: 65531, queueDropped: 0, userDropped: 0, idSequence: 6 },
      { queue: 20, portid: 123456, queueTotal: 17, copyMode: 2, copyRange: 1500, queueDropped: 3, userDropped: 9, idSequence: 100000 },
    ]);
    expect(parseProcQueues('')).toEqual([]);
  });
});
