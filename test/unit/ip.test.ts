import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isIPv6 } from 'node:net';
import {
  addressBytes,
  addressText,
  addressToBigInt,
  bigIntToAddress,
  bytesToBigInt,
  ipFamily,
  ipv6Bytes,
  ipv6Text,
  isIpAddress,
  maskBytes,
  mergeIntervals,
  parsedPrefixInterval,
  parsePrefix,
  prefixContains,
  prefixInterval,
  unmapIPv4,
} from '../../src/net/ip.js';

describe('net/ip', () => {
  it('detects the family, refusing zone ids', () => {
    expect(ipFamily('198.18.0.1')).toBe(4);
    expect(ipFamily('fd00::1')).toBe(6);
    expect(ipFamily('::ffff:198.18.0.1')).toBe(6);
    expect(ipFamily('fe80::1%eth0')).toBeUndefined();
    expect(ipFamily('198.18.0')).toBeUndefined();
    expect(ipFamily('host.example')).toBeUndefined();
    expect(isIpAddress('fd00::')).toBe(true);
    expect(isIpAddress('')).toBe(false);
  });

  it('parses addresses and prefixes', () => {
    expect(parsePrefix('198.18.0.0/15')).toEqual({ family: 4, address: '198.18.0.0', len: 15, explicit: true });
    expect(parsePrefix('fd00::1')).toEqual({ family: 6, address: 'fd00::1', len: 128, explicit: false });
    expect(parsePrefix('fd00::/8')).toEqual({ family: 6, address: 'fd00::', len: 8, explicit: true });
    for (const bad of ['1.2.3.4/33', '1.2.3/8', 'fd00::/129', '1.2.3.4/', '1.2.3.4/+1', '1.2.3.4/0x1', 'fe80::1%eth0/64', `1.2.3.4/${'1'.repeat(70)}`]) {
      expect(parsePrefix(bad), bad).toBeUndefined();
    }
    expect(parsePrefix(42 as unknown as string)).toBeUndefined();
  });

  it('unmaps IPv4-mapped IPv6 addresses only', () => {
    expect(unmapIPv4('::ffff:198.18.0.1')).toBe('198.18.0.1');
    expect(unmapIPv4('::FFFF:198.18.0.1')).toBe('198.18.0.1');
    expect(unmapIPv4('::ffff:999.18.0.1')).toBe('::ffff:999.18.0.1');
    expect(unmapIPv4('fd00::1')).toBe('fd00::1');
  });

  it('formats IPv6 per RFC 5952', () => {
    const t = (s: string) => ipv6Text(ipv6Bytes(s));
    expect(t('fd00:0:0:0:0:0:0:1')).toBe('fd00::1');
    expect(t('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1'); // a single zero group stays
    expect(t('2001:0:0:1:0:0:0:1')).toBe('2001:0:0:1::1'); // the longest run
    expect(t('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1'); // the first of equal runs
    expect(t('::')).toBe('::');
    expect(t('::ffff:198.18.0.1')).toBe('::ffff:c612:1');
    expect(t('FD00::AB')).toBe('fd00::ab');
    expect(addressText(addressBytes('198.18.0.1', 4))).toBe('198.18.0.1');
  });

  it('round-trips addresses through bytes and numbers', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (a) => {
        const fam = ipFamily(a)!;
        const text = addressText(addressBytes(a, fam));
        expect(ipFamily(text)).toBe(fam);
        expect(addressToBigInt(text, fam)).toBe(addressToBigInt(a, fam));
        expect(bigIntToAddress(addressToBigInt(a, fam), fam)).toBe(text);
        if (fam === 6) expect(isIPv6(text)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('converts bytes and numbers', () => {
    expect(bytesToBigInt([198, 18, 0, 1])).toBe(0xc6120001n);
    expect(bigIntToAddress(0xc6120001n, 4)).toBe('198.18.0.1');
    expect(bigIntToAddress(1n, 6)).toBe('::1');
    expect(bigIntToAddress(0xfd00n << 112n, 6)).toBe('fd00::');
  });

  it('computes prefix intervals, masks and containment', () => {
    expect(prefixInterval(addressToBigInt('198.18.1.5', 4), 24, 4)).toEqual({ lo: 0xc6120100n, hi: 0xc61201ffn });
    expect(prefixInterval(0n, 0, 4)).toEqual({ lo: 0n, hi: 0xffffffffn });
    expect(parsedPrefixInterval(parsePrefix('fd00::/8')!)).toEqual({ lo: 0xfdn << 120n, hi: (0xfen << 120n) - 1n });
    expect([...maskBytes(Buffer.from([198, 18, 255, 255]), 15)]).toEqual([198, 18, 0, 0]);
    expect([...maskBytes(Buffer.from([255, 255, 255, 255]), 0)]).toEqual([0, 0, 0, 0]);
    const net = addressBytes('198.18.0.0', 4);
    expect(prefixContains(net, 15, addressBytes('198.19.255.255', 4))).toBe(true);
    expect(prefixContains(net, 15, addressBytes('198.20.0.0', 4))).toBe(false);
    expect(prefixContains(net, 15, addressBytes('fd00::', 6))).toBe(false);
  });

  it('merges overlapping intervals, keeps adjacent ones apart', () => {
    expect(mergeIntervals([{ lo: 5n, hi: 9n }, { lo: 0n, hi: 3n }, { lo: 2n, hi: 4n }, { lo: 8n, hi: 12n }])).toEqual([
      { lo: 0n, hi: 4n },
      { lo: 5n, hi: 12n },
    ]);
    const input = [{ lo: 1n, hi: 2n }];
    const out = mergeIntervals(input);
    out[0]!.hi = 7n;
    expect(input[0]!.hi).toBe(2n); // the input is not modified
    expect(mergeIntervals([])).toEqual([]);
  });
});
