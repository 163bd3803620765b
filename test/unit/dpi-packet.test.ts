import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeFrame, formatAddress, LinkType } from '../../src/dpi/packet.js';
import { readCapture, type CapturedPacket } from '../../src/dpi/pcap.js';
import { ether, ipv4Packet, ipv6Packet, pcapFile, pcapngFile, sll, sll2 } from './dpi-fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'netfence-dpi-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readAll(buf: Buffer, name: string): { pkts: { ts: number; linkType: number; len: number; iface: number }[]; format: string } {
  const file = path.join(dir, name);
  writeFileSync(file, buf);
  const pkts: { ts: number; linkType: number; len: number; iface: number }[] = [];
  const r = readCapture(file, (p: CapturedPacket) => pkts.push({ ts: p.ts, linkType: p.linkType, len: p.data.length, iface: p.interfaceId }));
  if (r.err) throw r.val;
  return { pkts, format: r.val.format };
}

describe('packet decoding', () => {
  const udp = { proto: 'udp' as const, sport: 6881, dport: 51413, payload: 'hello' };

  it('decodes Ethernet / IPv4 / UDP with payload', () => {
    const d = decodeFrame(LinkType.ETHERNET, ether(ipv4Packet('198.18.0.1', '198.18.0.2', udp)))!;
    expect(formatAddress(d.src)).toBe('198.18.0.1');
    expect(formatAddress(d.dst)).toBe('198.18.0.2');
    expect([d.protocol, d.sport, d.dport]).toEqual([17, 6881, 51413]);
    expect(Buffer.from(d.payload).toString()).toBe('hello');
  });

  it('decodes stacked VLAN tags (QinQ)', () => {
    const d = decodeFrame(LinkType.ETHERNET, ether(ipv4Packet('198.18.0.1', '198.18.0.2', udp), [100, 200]))!;
    expect(d.sport).toBe(6881);
  });

  it('walks IPv6 extension headers to TCP', () => {
    const d = decodeFrame(LinkType.ETHERNET, ether(ipv6Packet('fd00::1', 'fd00::2', { proto: 'tcp', sport: 443, dport: 40000, payload: 'x' }, true)))!;
    expect(d.family).toBe(6);
    expect(formatAddress(d.src)).toBe('fd00::1');
    expect([d.protocol, d.sport, d.dport]).toEqual([6, 443, 40000]);
    expect(Buffer.from(d.payload).toString()).toBe('x');
  });

  it('decodes Linux cooked SLL and SLL2, raw IP and BSD loopback', () => {
    const ip = ipv4Packet('198.18.0.1', '198.18.0.2', udp);
    expect(decodeFrame(LinkType.LINUX_SLL, sll(ip))?.dport).toBe(51413);
    expect(decodeFrame(LinkType.LINUX_SLL2, sll2(ip))?.dport).toBe(51413);
    expect(decodeFrame(LinkType.RAW, Uint8Array.from(ip))?.dport).toBe(51413);
    expect(decodeFrame(LinkType.IPV4, Uint8Array.from(ip))?.dport).toBe(51413);
    expect(decodeFrame(LinkType.NULL, Uint8Array.from([2, 0, 0, 0, ...ip]))?.dport).toBe(51413);
    const ip6 = ipv6Packet('fd00::1', 'fd00::2', udp);
    expect(decodeFrame(LinkType.NULL, Uint8Array.from([30, 0, 0, 0, ...ip6]))?.family).toBe(6);
  });

  it('refuses truncated frames and non-first fragments', () => {
    const ip = ipv4Packet('198.18.0.1', '198.18.0.2', udp);
    expect(decodeFrame(LinkType.RAW, Uint8Array.from(ip.slice(0, 24)))).toBeUndefined();
    const frag = [...ip];
    frag[6] = 0x00;
    frag[7] = 0x10; // offset 16*8
    expect(decodeFrame(LinkType.RAW, Uint8Array.from(frag))).toBeUndefined();
    expect(decodeFrame(LinkType.ETHERNET, Uint8Array.from([1, 2, 3]))).toBeUndefined();
  });

  it('formats IPv6 addresses compressed', () => {
    expect(formatAddress(Uint8Array.from([0x20, 1, 0xd, 0xb8, ...Array(11).fill(0), 1]))).toBe('2001:db8::1');
    expect(formatAddress(Uint8Array.from(Array(16).fill(0)))).toBe('::');
  });
});

describe('capture files', () => {
  const frame = ether(ipv4Packet('198.18.0.1', '198.18.0.2', { proto: 'udp', sport: 1, dport: 2, payload: 'abc' }));

  it('reads pcap little- and big-endian, micro- and nanosecond', () => {
    for (const opts of [{}, { bigEndian: true }, { nano: true }, { bigEndian: true, nano: true }]) {
      const { pkts, format } = readAll(pcapFile([{ ts: 1700000000.123456, data: frame }, { ts: 1700000001.5, data: frame }], 1, opts), `a${JSON.stringify(opts)}.pcap`);
      expect(format).toBe(opts.nano ? 'pcap-ns' : 'pcap');
      expect(pkts.length).toBe(2);
      expect(pkts[0]!.ts).toBeCloseTo(1700000000.123456, 5);
      expect(pkts[1]!.linkType).toBe(1);
    }
  });

  it('reads pcapng with several interfaces of different link types, tsresol, EPB and SPB, both byte orders', () => {
    const ipOnly = Uint8Array.from(ipv4Packet('198.18.0.1', '198.18.0.2', { proto: 'udp', sport: 1, dport: 2 }));
    for (const bigEndian of [false, true]) {
      const buf = pcapngFile(
        [{ linkType: 1 }, { linkType: 101, tsresol: 9 }],
        [
          { ts: 1700000000.25, data: frame, iface: 0 },
          { ts: 1700000002.000000001, data: ipOnly, iface: 1 },
          { ts: 0, data: frame, iface: 0, spb: true },
        ],
        { bigEndian },
      );
      const { pkts, format } = readAll(buf, `b${bigEndian}.pcapng`);
      expect(format).toBe('pcapng');
      expect(pkts.map((p) => p.linkType)).toEqual([1, 101, 1]);
      expect(pkts[0]!.ts).toBeCloseTo(1700000000.25, 5);
      expect(pkts[1]!.ts).toBeCloseTo(1700000002, 5);
      expect(pkts[1]!.iface).toBe(1);
      expect(pkts[2]!.ts).toBe(pkts[1]!.ts); // SPB has no timestamp: the last one is kept
    }
  });

  it('returns an error for a missing file or a non-capture', () => {
    expect(readCapture(path.join(dir, 'missing.pcap'), () => {}).err).toBe(true);
    const junk = path.join(dir, 'junk.pcap');
    writeFileSync(junk, 'this is not a capture');
    const r = readCapture(junk, () => {});
    expect(r.err).toBe(true);
    expect(r.err && r.val.code).toBe('CAPTURE_FORMAT');
  });

  it('ends a truncated capture without error and says so', () => {
    const buf = pcapFile([{ ts: 1, data: frame }, { ts: 2, data: frame }], 1);
    const file = path.join(dir, 'trunc.pcap');
    writeFileSync(file, buf.subarray(0, buf.length - 5));
    let n = 0;
    const r = readCapture(file, () => n++);
    expect(r.ok && r.val.truncated).toBe(true);
    expect(n).toBe(1);
  });
});
