import { describe, expect, it } from 'vitest';
import { SettledServices } from '../../src/dpi/settled-services.js';
import { compileSteering, settleElements } from '../../src/dpi/steering.js';
import { NetfenceError } from '../../src/errors.js';
import type { Plan } from '../../src/plan/types.js';
import { Err, Ok } from '../../src/result.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

/** SettledServices with a recording apply; `fail` makes the next apply fail. */
function harness(opts: { maxEntries?: number } = {}) {
  const plans: Plan[] = [];
  const errors: NetfenceError[] = [];
  let fail = false;
  const s = new SettledServices({
    name: 'dpi',
    netns: 'nfx',
    owner: 'dpi:test',
    ttlSeconds: 60,
    maxEntries: opts.maxEntries ?? 100,
    onError: (e) => errors.push(e),
    apply: async (p) => {
      plans.push(p);
      if (fail) {
        fail = false;
        return Err(new NetfenceError('COMMAND_FAILED', 'set full'));
      }
      return Ok(undefined);
    },
  });
  return { s, plans, errors, failNext: () => (fail = true) };
}

const web = { family: 4 as const, transport: 'tcp' as const, addr: '198.18.2.2', port: 80 };

describe('settled services', () => {
  it('compiles the sets and the priority -1 marking chains in both forms, and a decision', () => {
    for (const nftQueue of [true, false]) {
      const p = compileSteering({ queues: [0, 1], failOpen: true, nftQueue, settle: { size: 500 }, hooks: ['forward', 'input'] }).unwrap();
      const text = JSON.stringify(p.nft);
      expect(p.tables).toContainEqual({ family: 'inet', name: 'netfence_dpi' });
      expect(text).toContain('"name":"settled4"');
      expect(text).toContain('"name":"settled6"');
      expect(text).toContain('"size":500');
      expect(text).toContain('"name":"settle_forward"');
      expect(text).toContain('"name":"settle_input"');
      expect(text).toContain('"prio":-1');
      expect(p.decisions.find((d) => d.subject === 'dpi settled services')?.chosen).toBe('on');
      // the xtables form keeps its rules in iptables-nft and adds the table itself
      if (!nftQueue) expect(p.steps.some((s) => s.id.includes('xtables'))).toBe(true);
    }
    const off = compileSteering({ queues: [0, 1], failOpen: true, nftQueue: false }).unwrap();
    expect(off.nft).toHaveLength(0);
    expect(off.decisions.find((d) => d.subject === 'dpi settled services')?.chosen).toBe('off');
  });

  it('element commands: address . protocol . port with the timeout, by family', () => {
    const cmds = settleElements('x', 'add', [web, { family: 6, transport: 'udp', addr: 'fd00::1', port: 443 }], 30);
    expect(cmds).toEqual([
      { add: { element: { family: 'inet', table: 'netfence_x', name: 'settled4', elem: [{ elem: { val: { concat: ['198.18.2.2', 'tcp', 80] }, timeout: 30 } }] } } },
      { add: { element: { family: 'inet', table: 'netfence_x', name: 'settled6', elem: [{ elem: { val: { concat: ['fd00::1', 'udp', 443] }, timeout: 30 } }] } } },
    ]);
    expect(settleElements('x', 'delete', [web])).toEqual([{ delete: { element: { family: 'inet', table: 'netfence_x', name: 'settled4', elem: [{ concat: ['198.18.2.2', 'tcp', 80] }] } } }]);
  });

  it('adds offered services in batches, once per half TTL; a BitTorrent peer is taken out at once (add then delete: no error if the kernel expired it)', async () => {
    const h = harness();
    h.s.offer(web);
    h.s.offer({ ...web, port: 443 });
    h.s.offer(web);
    await tick();
    // the first offer went alone, the second with the next batch; the third was in flight already
    expect(h.plans.map((p) => JSON.stringify(p.nft).match(/"concat":\[[^\]]*\]/g))).toEqual([['"concat":["198.18.2.2","tcp",80]'], ['"concat":["198.18.2.2","tcp",443]']]);
    expect(h.s.stats()).toMatchObject({ size: 2, added: 2, removed: 0, errors: 0 });
    const n = h.plans.length;
    h.s.offer(web); // refreshed less than ttl/2 ago: nothing to do
    await tick();
    expect(h.plans.length).toBe(n);
    h.s.forget([{ addr: '198.18.2.2', port: 80 }, { addr: '198.18.9.9', port: 1 }]);
    await tick();
    const last = h.plans.at(-1)!;
    expect(last.nft).toEqual([
      { add: { element: { family: 'inet', table: 'netfence_dpi', name: 'settled4', elem: [{ elem: { val: { concat: ['198.18.2.2', 'tcp', 80] }, timeout: 1 } }] } } },
      { delete: { element: { family: 'inet', table: 'netfence_dpi', name: 'settled4', elem: [{ concat: ['198.18.2.2', 'tcp', 80] }] } } },
    ]);
    expect(last.tables).toEqual([{ family: 'inet', name: 'netfence_dpi' }]);
    expect(last.owner).toBe('dpi:test');
    expect(h.s.stats()).toMatchObject({ size: 1, removed: 1 });
    // forgotten: the next offer adds it again
    h.s.offer(web);
    await tick();
    expect(h.s.stats()).toMatchObject({ size: 2, added: 3 });
  });

  it('a failed transaction is counted and reported, its services are not taken as settled; after close() nothing is applied', async () => {
    const h = harness();
    h.failNext();
    h.s.offer(web);
    await tick();
    expect(h.errors).toHaveLength(1);
    expect(h.s.stats()).toMatchObject({ size: 0, errors: 1, added: 0 });
    await h.s.close();
    const n = h.plans.length;
    h.s.offer(web);
    h.s.forget([web]);
    await tick();
    expect(h.plans.length).toBe(n);
  });
});

describe('settled services: races and failures', () => {
  it('a peer forgotten while its addition is in flight is deleted right after; a failed batch retries its deletions alone', async () => {
    const plans: Plan[] = [];
    let failAdds = false;
    const s = new SettledServices({
      name: 'dpi',
      netns: undefined,
      owner: 'o',
      ttlSeconds: 60,
      maxEntries: 100,
      onError: () => {},
      apply: async (p) => {
        plans.push(p);
        await new Promise((r) => setTimeout(r, 10));
        const hasAdd = p.nft.some((c) => 'add' in c && JSON.stringify(c).includes('"timeout":60'));
        return failAdds && hasAdd ? Err(new NetfenceError('COMMAND_FAILED', 'set full')) : Ok(undefined);
      },
    });
    s.offer(web);
    await tick(); // the addition is in flight
    s.forget([{ addr: web.addr, port: web.port }]);
    await new Promise((r) => setTimeout(r, 40));
    expect(plans.map((p) => p.nft.map((c) => Object.keys(c)[0]))).toEqual([['add'], ['add', 'delete']]);
    expect(s.stats()).toMatchObject({ size: 0, added: 1, removed: 1 });
    // settled again, then a batch of an addition (refused: set full) and the deletion of a peer
    s.offer(web);
    await new Promise((r) => setTimeout(r, 30));
    failAdds = true;
    s.offer({ ...web, port: 8080 });
    await tick();
    s.forget([{ addr: web.addr, port: web.port }]);
    s.offer({ ...web, port: 8081 });
    await new Promise((r) => setTimeout(r, 80));
    const last = plans.slice(-2).map((p) => JSON.stringify(p.nft));
    // the refused batch held 8081's addition and 80's deletion; the deletion went again on its own
    expect(last[0]).toContain('8081');
    expect(last[1]).not.toContain('8081');
    expect(last[1]).toContain('"delete"');
    expect(s.stats()).toMatchObject({ removed: 2 });
    await s.close();
  });
});

describe('PeerCache.has', () => {
  it('tells a live entry of either tier without counting a lookup or a hit', async () => {
    const { PeerCache } = await import('../../src/dpi/classifiers/peer-cache.js');
    const c = new PeerCache({ ttlSeconds: 10, learntTtlSeconds: 5 });
    c.add({ addr: '198.18.0.5', port: 6881 }, 'seen', 100);
    c.add({ addr: '198.18.0.6', port: 51413 }, 'listed', 100, 'learnt');
    const before = c.snapshot();
    expect(c.has({ addr: '198.18.0.5', port: 6881 }, 105)).toBe(true);
    expect(c.has({ addr: '198.18.0.6', port: 51413 }, 104)).toBe(true);
    expect(c.has({ addr: '198.18.0.6', port: 51413 }, 106)).toBe(false); // learnt TTL over
    expect(c.has({ addr: '198.18.0.5', port: 6882 }, 105)).toBe(false);
    expect(c.snapshot()).toEqual(before);
  });
});
