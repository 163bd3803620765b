import { describe, expect, it } from 'vitest';
import { linkShowArgv, parseLinks, xdpModeName } from '../../src/host/links.js';

// Output of `ip -j link show` (iproute2 6.x): loopback, a veth with generic XDP.
const LISTING = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, qdisc: 'noqueue', operstate: 'UNKNOWN', linkmode: 'DEFAULT', group: 'default', txqlen: 1000, link_type: 'loopback', address: '00:00:00:00:00:00', broadcast: '00:00:00:00:00:00' },
  {
    ifindex: 5,
    link_index: 4,
    ifname: 'veth0',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1500,
    xdp: { mode: 2, prog: { id: 42, name: 'nf_xdp', tag: 'abcdef0123456789', jited: 1 } },
    operstate: 'UP',
    link_type: 'ether',
    address: '02:00:00:00:00:01',
    link_netnsid: 0,
  },
]);

describe('host/links', () => {
  it('parses a listing, keeping unknown fields', () => {
    const r = parseLinks(LISTING);
    expect(r.ok).toBe(true);
    const links = r.unwrap();
    expect(links.map((l) => [l.ifindex, l.ifname, l.mtu, l.link_type])).toEqual([
      [1, 'lo', 65536, 'loopback'],
      [5, 'veth0', 1500, 'ether'],
    ]);
    expect(links[1]?.xdp?.prog).toMatchObject({ id: 42, name: 'nf_xdp' });
    expect((links[1] as Record<string, unknown>)['link_netnsid']).toBe(0);
    expect(xdpModeName(links[1]?.xdp?.mode)).toBe('generic');
  });

  it('parses an empty listing and refuses what is not one', () => {
    expect(parseLinks('[]').unwrap()).toEqual([]);
    expect(parseLinks('not json').err).toBe(true);
    expect(parseLinks('{}').err).toBe(true);
    const r = parseLinks(JSON.stringify([{ ifname: 'x' }]));
    expect(r.err && r.val).toMatch(/^0\.ifindex: /);
  });

  it('names the XDP modes and builds the argv', () => {
    expect([1, 2, 3, 4, undefined].map(xdpModeName)).toEqual(['native', 'generic', 'offload', 'multi', 'multi']);
    expect(linkShowArgv()).toEqual(['ip', '-j', 'link', 'show']);
    expect(linkShowArgv('eth0')).toEqual(['ip', '-j', 'link', 'show', 'dev', 'eth0']);
  });
});
