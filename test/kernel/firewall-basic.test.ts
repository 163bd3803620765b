import { describe, expect, it } from 'vitest';
import { Firewall } from '../../src/firewall/firewall.js';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';
import { nftList } from '../../src/host/nft.js';

/** client (198.18.1.2, fd00:1::2) -- router -- server (198.18.2.2, fd00:2::2) */
async function topo(lab: Lab): Promise<{ client: LabHost; router: LabHost; server: LabHost; server2: LabHost }> {
  const client = await lab.host('client');
  const router = await lab.host('router');
  const server = await lab.host('server');
  const server2 = await lab.host('server2');
  await lab.link({ host: client, addrs: ['198.18.1.2/24', 'fd00:1::2/64'] }, { host: router, addrs: ['198.18.1.1/24', 'fd00:1::1/64'] });
  await lab.link({ host: router, addrs: ['198.18.2.1/24', 'fd00:2::1/64'] }, { host: server, addrs: ['198.18.2.2/24', 'fd00:2::2/64'] });
  await lab.link({ host: router, addrs: ['198.18.3.1/24', 'fd00:3::1/64'] }, { host: server2, addrs: ['198.18.3.2/24', 'fd00:3::2/64'] });
  await lab.forwarding(router);
  for (const [h, v4, v6] of [[client, '198.18.1.1', 'fd00:1::1'], [server, '198.18.2.1', 'fd00:2::1'], [server2, '198.18.3.1', 'fd00:3::1']] as const) {
    await lab.route(h, 'default', v4);
    await lab.route(h, 'default', v6);
  }
  return { client, router, server, server2 };
}

describe('Firewall (inet) with real traffic', () => {
  it('filters TCP and UDP over IPv4 and IPv6: accept, drop (silent), reject (reset / unreachable)', async () => {
    await withLab('fwbasic', async (lab) => {
      const { client, server } = await topo(lab);
      for (const p of [8080, 8081, 8082]) await lab.serve(server, 'tcp', p);
      for (const p of [9000, 9001, 9002]) await lab.serve(server, 'udp', p);
      const fw = new Firewall({ table: 'nf_basic', family: 'inet', netns: server.netns })
        .chain('input', { hook: 'input', priority: 0, policy: 'drop' })
        .rule('input', { id: 'lo', iifname: 'lo', action: 'accept' })
        .rule('input', { id: 'est', ctState: ['established', 'related'], action: 'accept' })
        .rule('input', { id: 'icmp', protocol: 'icmp', action: 'accept' })
        .rule('input', { id: 'icmp6', protocol: 'icmpv6', action: 'accept' })
        .rule('input', { id: 'web', protocol: 'tcp', dport: 8080, action: 'accept' })
        .rule('input', { id: 'reject-tcp', protocol: 'tcp', dport: 8082, action: { type: 'reject', with: 'tcp-reset' } })
        .rule('input', { id: 'dns', protocol: 'udp', dport: { from: 9000, to: 9000 }, action: 'accept' })
        .rule('input', { id: 'reject-udp', protocol: 'udp', dport: 9002, action: { type: 'reject', code: 'port-unreachable' } });
      const r = await fw.apply();
      expect(r.err ? r.val.message : 'ok').toBe('ok');
      for (const a of ['198.18.2.2', 'fd00:2::2']) {
        expect((await lab.probe(client, 'tcp', a, 8080)).result).toBe('open');
        expect((await lab.probe(client, 'tcp', a, 8081, { timeoutMs: 1200 })).result).toBe('timeout');
        expect((await lab.probe(client, 'tcp', a, 8082)).result).toBe('refused');
        expect((await lab.probe(client, 'udp', a, 9000)).result).toBe('open');
        expect((await lab.probe(client, 'udp', a, 9001, { timeoutMs: 1200 })).result).toBe('timeout');
        expect((await lab.probe(client, 'udp', a, 9002)).result).toBe('refused');
      }
      const st = await fw.status();
      expect(st.ok).toBe(true);
      if (st.ok) {
        expect(st.val.rules.web?.packets).toBeGreaterThanOrEqual(2);
        expect(st.val.rules['reject-tcp']?.packets).toBeGreaterThanOrEqual(2);
        expect(st.val.rules.dns?.packets).toBeGreaterThanOrEqual(2);
      }
      expect((await fw.destroy()).ok).toBe(true);
      const l = await nftList(['tables'], { netns: server.netns });
      expect(JSON.stringify(l.ok ? l.val : '')).not.toContain('nf_basic');
      // Without the firewall 8081 is open again.
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8081)).result).toBe('open');
    });
  });

  it('named sets: interval set blocks CIDRs; live add/delete of elements changes traffic at once', async () => {
    await withLab('fwsets', async (lab) => {
      const { client, server } = await topo(lab);
      await lab.serve(server, 'tcp', 8080);
      const fw = new Firewall({ table: 'nf_sets', netns: server.netns })
        .set('blocked4', { type: 'ipv4_addr', interval: true, counter: true, elements: ['198.18.200.0/24'] })
        .set('blocked6', { type: 'ipv6_addr', interval: true, elements: ['fd00:99::/64'] })
        .set('pairs', { type: ['ipv4_addr', 'inet_service'], elements: [['198.18.1.2', 7]] })
        .chain('input', { hook: 'input', priority: 0 })
        .rule('input', { id: 'block4', saddr: '@blocked4', action: 'drop' })
        .rule('input', { id: 'block6', saddr: '@blocked6', action: 'drop' });
      expect((await fw.apply()).ok).toBe(true);
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8080)).result).toBe('open');
      expect((await lab.probe(client, 'tcp', 'fd00:2::2', 8080)).result).toBe('open');
      expect((await fw.addElements('blocked4', ['198.18.1.0/24'])).ok).toBe(true);
      expect((await fw.addElements('blocked6', ['fd00:1::2'])).ok).toBe(true);
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8080, { timeoutMs: 1000 })).result).toBe('timeout');
      expect((await lab.probe(client, 'tcp', 'fd00:2::2', 8080, { timeoutMs: 1000 })).result).toBe('timeout');
      const st = await fw.status();
      expect(st.ok && st.val.sets.blocked4?.packets).toBeGreaterThan(0);
      expect(st.ok && st.val.sets.blocked4?.elements).toBe(2);
      expect((await fw.deleteElements('blocked4', ['198.18.1.0/24'])).ok).toBe(true);
      expect((await fw.deleteElements('blocked6', ['fd00:1::2'])).ok).toBe(true);
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8080)).result).toBe('open');
      expect((await lab.probe(client, 'tcp', 'fd00:2::2', 8080)).result).toBe('open');
      // a bad element is refused before nft, naming the set and index
      const bad = await fw.addElements('blocked4', ['fd00::1']);
      expect(bad.err && bad.val.message).toMatch(/blocked4\.elements\.0/);
      expect((await fw.destroy()).ok).toBe(true);
    });
  });

  it('adds and removes single rules by id, without recompiling; counters per id', async () => {
    await withLab('fwrules', async (lab) => {
      const { client, server } = await topo(lab);
      await lab.serve(server, 'tcp', 8080);
      await lab.serve(server, 'udp', 9000);
      const fw = new Firewall({ table: 'nf_rules', netns: server.netns })
        .chain('input', { hook: 'input', priority: 0 })
        .rule('input', { id: 'count-all', counter: true });
      expect((await fw.apply()).ok).toBe(true);
      const before = await nftList(['chain', 'inet', 'nf_rules', 'input'], { netns: server.netns });
      expect((await lab.probe(client, 'udp', '198.18.2.2', 9000)).result).toBe('open');
      expect((await fw.addRule('input', { id: 'no-udp-9000', protocol: 'udp', dport: 9000, action: 'drop' })).ok).toBe(true);
      expect((await fw.addRule('input', { id: 'no-tcp6', nfproto: 'ipv6', protocol: 'tcp', dport: 8080, action: { type: 'reject', with: 'tcp-reset' } }, { position: 'first' })).ok).toBe(true);
      expect((await lab.probe(client, 'udp', '198.18.2.2', 9000, { timeoutMs: 1000 })).result).toBe('timeout');
      expect((await lab.probe(client, 'tcp', 'fd00:2::2', 8080)).result).toBe('refused');
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8080)).result).toBe('open');
      const st = await fw.status();
      expect(st.ok && st.val.rules['no-udp-9000']?.packets).toBeGreaterThan(0);
      expect(st.ok && st.val.rules['no-tcp6']?.packets).toBeGreaterThan(0);
      expect((await fw.removeRule('no-udp-9000')).ok).toBe(true);
      expect((await fw.removeRule('no-tcp6')).ok).toBe(true);
      expect((await lab.probe(client, 'udp', '198.18.2.2', 9000)).result).toBe('open');
      expect((await lab.probe(client, 'tcp', 'fd00:2::2', 8080)).result).toBe('open');
      // the untouched rule kept its handle
      const after = await nftList(['chain', 'inet', 'nf_rules', 'input'], { netns: server.netns });
      const handle = (l: typeof after) => JSON.stringify(l.ok ? l.val.nftables.filter((o) => 'rule' in (o as object)).map((o) => (o as { rule: { handle: number } }).rule.handle) : []);
      expect(handle(after)).toBe(handle(before));
      const gone = await fw.removeRule('no-udp-9000');
      expect(gone.err).toBe(true);
      expect((await fw.destroy()).ok).toBe(true);
    });
  });

  it('SSH brute-force meter: a dynamic set updated from the packet path limits new connections per source', async () => {
    await withLab('fwmeter', async (lab) => {
      const { client, server } = await topo(lab);
      await lab.serve(server, 'tcp', 2222);
      const fw = new Firewall({ table: 'nf_meter', netns: server.netns })
        .chain('input', { hook: 'input', priority: 0 })
        .rule('input', {
          id: 'ssh-guard',
          nfproto: 'ipv4',
          protocol: 'tcp',
          dport: 2222,
          ctState: ['new'],
          meter: { name: 'ssh_meter', key: 'saddr', timeout: 60, limit: { rate: 3, per: 'minute', burst: 3, over: true } },
          action: 'drop',
        });
      expect((await fw.apply()).ok).toBe(true);
      const results: string[] = [];
      for (let i = 0; i < 6; i++) results.push((await lab.probe(client, 'tcp', '198.18.2.2', 2222, { timeoutMs: 700 })).result);
      expect(results.slice(0, 3)).toEqual(['open', 'open', 'open']);
      expect(results.slice(3)).toContain('timeout');
      // IPv6 is not metered by this rule
      expect((await lab.probe(client, 'tcp', 'fd00:2::2', 2222)).result).toBe('open');
      const m = await nftList(['meter', 'inet', 'nf_meter', 'ssh_meter'], { netns: server.netns });
      const text = JSON.stringify(m.ok ? m.val : (await nftList(['set', 'inet', 'nf_meter', 'ssh_meter'], { netns: server.netns })).val);
      expect(text).toContain('198.18.1.2');
      expect((await fw.destroy()).ok).toBe(true);
    });
  });

  it('NAT: port forward (DNAT + masquerade), load-balancing across two servers, port range, redirect', async () => {
    await withLab('fwnat', async (lab) => {
      const { client, router, server, server2 } = await topo(lab);
      // The servers answer the address they see the client at: the router's (masquerade), not the client's 198.18.1.2 / fd00:1::2.
      await lab.serve(server, 'tcp', 80, '%peer');
      await lab.serve(server2, 'tcp', 80, '%peer');
      await lab.serve(server, 'udp', 5353, '%peer');
      for (const p of [7001, 7002]) await lab.serve(server, 'tcp', p);
      await lab.serve(router, 'tcp', 3128, 'proxy');
      const fw = new Firewall({ table: 'nf_nat', netns: router.netns })
        .chain('pre', { type: 'nat', hook: 'prerouting', priority: -100 })
        .chain('post', { type: 'nat', hook: 'postrouting', priority: 100 })
        .rule('pre', { id: 'fwd', daddr: '198.18.1.1', protocol: 'tcp', dport: 8080, action: { type: 'dnat', to: '198.18.2.2', port: 80 } })
        .rule('pre', { id: 'fwd6', daddr: 'fd00:1::1', protocol: 'tcp', dport: 8080, action: { type: 'dnat', to: 'fd00:2::2', port: 80 } })
        .rule('pre', { id: 'lb', daddr: '198.18.1.1', protocol: 'tcp', dport: 8081, action: { type: 'dnat', to: ['198.18.2.2', '198.18.3.2'], port: 80 } })
        .rule('pre', { id: 'udp', daddr: '198.18.1.1', protocol: 'udp', dport: 53, action: { type: 'dnat', to: '198.18.2.2', port: 5353 } })
        .rule('pre', { id: 'range', daddr: '198.18.1.1', protocol: 'tcp', dport: { from: 7001, to: 7002 }, action: { type: 'dnat', to: '198.18.2.2' } })
        .rule('pre', { id: 'redir', protocol: 'tcp', dport: 3000, action: { type: 'redirect', port: 3128 } })
        .rule('post', { id: 'masq', oifname: ['eth1', 'eth2'], action: 'masquerade' });
      const r = await fw.apply();
      expect(r.err ? r.val.message : 'ok').toBe('ok');
      // server (198.18.2.2) saw the router's address on its link, 198.18.2.1 / fd00:2::1
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8080)).reply).toBe('198.18.2.1');
      expect((await lab.probe(client, 'tcp', 'fd00:1::1', 8080)).reply).toBe('fd00:2::1');
      // both servers answered (each sees the router's address on its own link: 198.18.2.1, 198.18.3.1)
      const lb = new Set<string>();
      for (let i = 0; i < 4; i++) lb.add((await lab.probe(client, 'tcp', '198.18.1.1', 8081)).reply);
      expect([...lb].sort()).toEqual(['198.18.2.1', '198.18.3.1']);
      expect((await lab.probe(client, 'udp', '198.18.1.1', 53)).reply).toBe('198.18.2.1');
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 7002)).reply).toBe('ok 7002');
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 3000)).reply).toBe('proxy');
      // not forwarded: another port on the router is closed
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8082)).result).toBe('refused');
      expect((await fw.destroy()).ok).toBe(true);
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8080)).result).toBe('refused');
    });
  });
});

describe('Firewall rollback of a re-apply', () => {
  it('rollback() after applying a second version brings the first version back (packets decide)', async () => {
    await withLab('fwrollback', async (lab) => {
      const { client, server } = await topo(lab);
      for (const p of [8080, 8081]) await lab.serve(server, 'tcp', p);
      const version = (port: number): Firewall =>
        new Firewall({ table: 'nf_versions', family: 'inet', netns: server.netns })
          .chain('input', { hook: 'input', priority: 0, policy: 'drop' })
          .rule('input', { id: 'est', ctState: ['established', 'related'], action: 'accept' })
          .rule('input', { id: 'nd', protocol: 'icmpv6', action: 'accept' })
          .rule('input', { id: 'open', protocol: 'tcp', dport: port, action: 'accept' });
      const v1 = version(8080);
      expect((await v1.apply()).ok).toBe(true);
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8080)).result).toBe('open');
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8081, { timeoutMs: 1000 })).result).toBe('timeout');
      const v2 = version(8081);
      expect((await v2.apply()).ok).toBe(true);
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8081)).result).toBe('open');
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8080, { timeoutMs: 1000 })).result).toBe('timeout');
      const rb = await v2.rollback();
      expect(rb.err ? rb.val.message : 'ok').toBe('ok');
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8080)).result).toBe('open');
      expect((await lab.probe(client, 'tcp', '198.18.2.2', 8081, { timeoutMs: 1000 })).result).toBe('timeout');
      expect((await v1.destroy()).ok).toBe(true);
    });
  });
});
