import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KEY_SIZE, covers, ipv6Bytes, ipv6Text, listKind, parseEntries, parseEntry, readKey, readValue, writeKey, writeValue } from '../../src/xdp/entries.js';
import { XdpBlocklist, defaultName } from '../../src/xdp/xdp-blocklist.js';
import { ALL_MAPS, mapName } from '../../src/xdp/maps.js';
import { bpfSyscallNumber, possibleCpus } from '../../src/host/bpf.js';
import { ValidationError } from '../../src/errors.js';

describe('blocklist entries', () => {
  it('accepts addresses and prefixes and gives canonical text', () => {
    const r = parseEntries(['198.18.0.1', '198.18.0.0/15', 'FD00::1', 'fd00:0:0::/8', '198.18.0.1/32', 'fd00::1/128', '0.0.0.0/0']);
    expect(r.ok).toBe(true);
    // duplicates (198.18.0.1 = 198.18.0.1/32, fd00::1 = fd00::1/128) removed
    expect(r.unwrap().map((e) => e.text)).toEqual(['198.18.0.1', '198.18.0.0/15', 'fd00::1', 'fd00::/8', '0.0.0.0/0']);
  });

  it('refuses bad entries with their index and reason, and returns none', () => {
    const r = parseEntries(['198.18.0.1', 'x', '198.18.1.5/24', 'fd00::/129', '198.18.0.0/15', 'fe80::1%eth0', 42]);
    expect(r.err).toBe(true);
    const e = r.val as ValidationError;
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.issues.map((i) => i.path)).toEqual(['1', '2', '3', '5', '6']);
    expect(e.issues[1]!.message).toContain('host bits set; did you mean 198.18.1.0/24?');
  });

  it('refuses a non-array', () => {
    expect(parseEntries({}).err).toBe(true);
  });

  it('formats IPv6 per RFC 5952 and round-trips through bytes', () => {
    expect(ipv6Text(ipv6Bytes('2001:db8:0:0:1:0:0:1'))).toBe('2001:db8::1:0:0:1');
    expect(ipv6Text(ipv6Bytes('fd00:0:0:1::'))).toBe('fd00:0:0:1::');
    expect(ipv6Text(ipv6Bytes('::'))).toBe('::');
    expect(ipv6Text(ipv6Bytes('::ffff:198.18.0.1'))).toBe('::ffff:c612:1');
    fc.assert(
      fc.property(fc.ipV6(), (s) => {
        const b = ipv6Bytes(s);
        expect(ipv6Bytes(ipv6Text(b)).equals(b)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('puts addresses in hash maps and prefixes in LPM tries, with the C struct layouts', () => {
    const [a4, p4, a6, p6] = parseEntries(['198.18.0.1', '198.18.0.0/15', 'fd00::1', 'fd00::/8']).unwrap();
    expect([a4, p4, a6, p6].map((e) => listKind(e!))).toEqual(['v4', 'p4', 'v6', 'p6']);
    const buf = Buffer.alloc(64);
    writeKey('p4', p4!, buf, 0);
    expect(buf.subarray(0, KEY_SIZE.p4).toString('hex')).toBe('0f000000c6120000'); // u32 prefixlen LE, address BE
    writeKey('v4', a4!, buf, 0);
    expect(buf.subarray(0, 4).toString('hex')).toBe('c6120001');
    writeKey('p6', p6!, buf, 0);
    expect(readKey('p6', buf, 0).text).toBe('fd00::/8');
    writeValue({ expiresNs: 123n, hits: 7n, len: 15 }, buf, 0);
    expect(buf.subarray(0, 24).toString('hex')).toBe('7b000000000000000700000000000000' + '0f000000' + '00000000');
    expect(readValue(buf, 0)).toEqual({ expiresNs: 123n, hits: 7n, len: 15 });
  });

  it('prefix coverage', () => {
    const p = parseEntry('198.18.1.16/28').unwrap();
    expect(covers(p, parseEntry('198.18.1.20').unwrap())).toBe(true);
    expect(covers(p, parseEntry('198.18.1.40').unwrap())).toBe(false);
    expect(covers(p, parseEntry('fd00::1').unwrap())).toBe(false);
  });
});

describe('XdpBlocklist options', () => {
  it('validates options with zod and throws ValidationError for bad ones', () => {
    expect(() => new XdpBlocklist({ iface: 'eth0; rm -rf /' })).toThrow(ValidationError);
    expect(() => new XdpBlocklist({ iface: 'eth0', name: 'has.dot' })).toThrow(/bpffs refuses dots/);
    expect(() => new XdpBlocklist({ iface: 'eth0', maxEntries: 0 })).toThrow(ValidationError);
    expect(() => new XdpBlocklist({ iface: 'eth0', mode: 'fast' as 'native' })).toThrow(ValidationError);
    expect(() => new XdpBlocklist({ iface: 'eth0', extra: 1 } as unknown as { iface: string })).toThrow(ValidationError);
  });

  it('derives a pin directory from netns and interface; backend starts as requested', () => {
    const bl = new XdpBlocklist({ iface: 'eth0', netns: 'lab.1' });
    expect(bl.name).toBe('lab_1_eth0');
    expect(bl.pinDir).toBe('/sys/fs/bpf/netfence/lab_1_eth0');
    expect(bl.nftTable).toBe('netfence_bl_lab_1_eth0');
    expect(bl.backend).toBe('xdp');
    expect(new XdpBlocklist({ iface: 'eth0', backend: 'nft' }).backend).toBe('nft');
    expect(defaultName('eth0')).toBe('host_eth0');
  });

  it('refuses bad entries before touching anything', async () => {
    const bl = new XdpBlocklist({ iface: 'eth0', name: 'unit_never_attached' });
    const r = await bl.add(['198.18.0.1', 'bad']);
    expect(r.err && r.val).toBeInstanceOf(ValidationError);
    const t = await bl.add(['198.18.0.1'], { ttl: -1 });
    expect(t.err && t.val).toBeInstanceOf(ValidationError);
  });
});

describe('maps and syscalls', () => {
  it('names the ten maps of bpf/xdp_blocklist.c', () => {
    expect(ALL_MAPS).toEqual(['nf_v4_a', 'nf_v4_b', 'nf_v6_a', 'nf_v6_b', 'nf_p4_a', 'nf_p4_b', 'nf_p6_a', 'nf_p6_b', 'nf_cfg', 'nf_stats']);
    expect(mapName('p6', 1)).toBe('nf_p6_b');
  });
  it('knows SYS_bpf per architecture and parses the possible-CPU list', () => {
    expect(bpfSyscallNumber('x64')).toBe(321);
    expect(bpfSyscallNumber('arm64')).toBe(280);
    expect(bpfSyscallNumber('ia32')).toBeUndefined();
    expect(possibleCpus('0-3\n')).toBe(4);
    expect(possibleCpus('0,2-3')).toBe(3);
  });
});
