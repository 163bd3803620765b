import { describe, expect, it } from 'vitest';
import { leftoverLabNamespaces, withLab } from '../../src/lab/index.js';

describe('lab', () => {
  it('builds a routed topology with IPv4 and IPv6 and tears it down', async () => {
    let names: string[] = [];
    await withLab('labtest', async (lab) => {
      const a = await lab.host('a');
      const r = await lab.host('r');
      const b = await lab.host('b');
      await lab.link({ host: a, addrs: ['198.18.1.2/24', 'fd00:1::2/64'] }, { host: r, addrs: ['198.18.1.1/24', 'fd00:1::1/64'] });
      await lab.link({ host: r, addrs: ['198.18.2.1/24', 'fd00:2::1/64'] }, { host: b, addrs: ['198.18.2.2/24', 'fd00:2::2/64'] });
      await lab.forwarding(r);
      await lab.route(a, 'default', '198.18.1.1');
      await lab.route(b, 'default', '198.18.2.1');
      await lab.route(a, 'default', 'fd00:1::1');
      await lab.route(b, 'default', 'fd00:2::1');
      expect(await lab.ping(a, '198.18.2.2', 2)).toBe(2);
      expect(await lab.ping(a, 'fd00:2::2', 2)).toBe(2);
      names = lab.hosts.map((h) => h.netns);
    });
    const left = await leftoverLabNamespaces();
    for (const n of names) expect(left).not.toContain(n);
  });

  it('tears down even when the body throws', async () => {
    let ns = '';
    await expect(
      withLab('throws', async (lab) => {
        ns = (await lab.host('x')).netns;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await leftoverLabNamespaces()).not.toContain(ns);
  });
});
