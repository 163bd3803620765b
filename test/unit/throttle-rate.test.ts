import { describe, expect, it } from 'vitest';
import { htbBurst, nftBurst, parseRate, parseSize, payloadFactor, policeBurst, leafQueueBytes } from '../../src/throttle/rate.js';
import { LimitSchema } from '../../src/throttle/types.js';

describe('parseRate', () => {
  it.each([
    ['10mbit', 10_000_000],
    ['10Mbit', 10_000_000],
    ['1.5mbit', 1_500_000],
    ['512kbit', 512_000],
    ['1gbit', 1_000_000_000],
    ['1mibit', 1_048_576],
    ['1.5MB/s', 12_000_000],
    ['100kB/s', 800_000],
    ['1KiB/s', 8192],
    [8000, 8000],
    [12_345.6, 12_346],
  ])('%s → %d bit/s', (input, bps) => {
    expect(parseRate(input)).toBe(bps);
  });

  it.each([
    [0, 'greater than zero'],
    [-5, 'greater than zero'],
    ['-10mbit', 'positive'],
    [Number.NaN, 'finite'],
    [Number.POSITIVE_INFINITY, 'finite'],
    ['0mbit', 'greater than zero'],
    ['101gbit', 'at most'],
    ['1bit', 'at least'],
    ['10', 'no unit'],
    ['10 furlongs', 'unknown unit'],
    ['10mbps', 'ambiguous'],
    ['10kbps', 'ambiguous'],
    ['10Mb/s', 'ambiguous'],
    ['10xbit', 'unknown unit'],
    ['', 'rate such as'],
    ['10mbit; rm -rf /', 'not a rate'],
  ])('refuses %s (%s)', (input, msg) => {
    const r = parseRate(input);
    expect(typeof r).toBe('string');
    expect(r as string).toContain(msg);
  });

  it('sizes', () => {
    expect(parseSize('64KiB')).toBe(65536);
    expect(parseSize('10MB')).toBe(10_000_000);
    expect(parseSize(1500)).toBe(1500);
    expect(typeof parseSize('10 bananas')).toBe('string');
    expect(typeof parseSize(-1)).toBe('string');
  });
});

describe('burst derivation', () => {
  it('HTB burst is rate × 10 ms with a floor that fits two GSO super-packets', () => {
    expect(htbBurst(1e6)).toBe(2 * 65536 + 1514);
    expect(htbBurst(1e9)).toBe(1_250_000);
  });
  it('tc police burst is rate × 100 ms, at least 256 KiB', () => {
    expect(policeBurst(1e6)).toBe(262144);
    expect(policeBurst(1e9)).toBe(125_000_000);
  });
  it('nft limit burst is a floor (the kernel bucket already holds one second)', () => {
    expect(nftBurst(1e6)).toBe(131072);
    expect(nftBurst(1e9)).toBe(131072);
  });
  it('leaf queue is 250 ms, at least 256 KiB', () => {
    expect(leafQueueBytes(1e6)).toBe(262144);
    expect(leafQueueBytes(1e9)).toBe(31_250_000);
  });
  it('payload factor for MTU 1500', () => {
    expect(payloadFactor(1500, 'l2')).toBeCloseTo(1514 / 1448, 6);
    expect(payloadFactor(1500, 'l3')).toBeCloseTo(1500 / 1448, 6);
  });
});

describe('LimitSchema', () => {
  it('normalizes a request', () => {
    const r = LimitSchema.parse({ iface: 'eth0', direction: 'egress', rate: '10mbit', quota: '1MB' });
    expect(r.rate).toBe(10_000_000);
    expect(r.quota).toEqual({ bytes: 1_000_000, action: 'drop' });
    expect(r.accounting).toBe('tcp-payload');
  });
  it.each([
    [{ iface: 'eth0', direction: 'egress' }, 'rate'],
    [{ iface: 'eth0;x', direction: 'egress', rate: '1mbit' }, 'iface'],
    [{ iface: 'eth0', direction: 'up', rate: '1mbit' }, 'direction'],
    [{ iface: 'eth0', direction: 'egress', rate: '1mbit', match: { src: '10.0.0.1', dst: 'fd00::1' } }, 'match.dst'],
    [{ iface: 'eth0', direction: 'egress', rate: '1mbit', match: { pid: 1, cgroup: 'a' } }, 'match.cgroup'],
    [{ iface: 'eth0', direction: 'egress', rate: '1mbit', match: { dport: 80, protocol: 'icmp' } }, 'match.protocol'],
    [{ iface: 'eth0', direction: 'egress', rate: '1mbit', match: { cgroup: '../etc' } }, 'match.cgroup'],
    [{ iface: 'eth0', direction: 'egress', rate: '1mbit', match: { cgroup: 'a"b' } }, 'match.cgroup'],
    [{ iface: 'eth0', direction: 'egress', rate: '1mbit', burst: 10 }, 'burst'],
    [{ iface: 'eth0', direction: 'egress', rate: '1mbit', backend: 'tc-cake' }, 'backend'],
    [{ iface: 'eth0', direction: 'egress', rate: '1mbit', extra: 1 }, ''],
  ])('refuses %j (%s)', (input, path) => {
    const r = LimitSchema.safeParse(input);
    expect(r.success).toBe(false);
    if (!r.success && path) expect(r.error.issues.map((i) => i.path.join('.'))).toContain(path);
  });
});
