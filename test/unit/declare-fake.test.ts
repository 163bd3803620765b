/**
 * Declarative files on a FakeHost (no root): plan shows additions, apply
 * makes them real (judged on the fake kernel), plan afterwards shows no
 * change, an edited file shows exactly what changed, a transaction that fails
 * late leaves every table and the record as before, destroy removes exactly
 * what the file declares, and a foreign table is never taken.
 */
import './fake-setup.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { applyDeclaration, destroyDeclaration, planDeclaration } from '../../src/declare/engine.js';
import { parseDeclaration, type LoadedDeclaration } from '../../src/declare/load.js';
import { statePath } from '../../src/declare/state.js';
import { renderDiff } from '../../src/cli/commands/declarative.js';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { nftApply } from '../../src/host/nft.js';
import { failNth, setFaultHook } from '../../src/plan/faults.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';
import { OwnershipError } from '../../src/plan/ownership.js';

const NS = 'decl-fake';

function file(o: { port?: number; extra?: boolean; policy?: 'accept' | 'drop'; second?: boolean } = {}): LoadedDeclaration {
  const text = `version: 1
owner: test-file
firewalls:
  - table: web
    sets:
      blocked: { type: ipv4_addr, interval: true, elements: [198.18.9.0/24${o.extra ? ', 198.18.10.1' : ''}] }
    chains:
      input: { hook: input, priority: 0, policy: ${o.policy ?? 'accept'} }
    rules:
      input:
        - { id: est, ctState: [established, related], action: accept }
        - { id: blocked, saddr: '@blocked', action: drop }
        - { id: no-ssh, protocol: tcp, dport: ${o.port ?? 22}, action: drop }
${o.second === false ? '' : `  - table: admin
    chains:
      out: { hook: output, priority: 0, policy: accept }
    rules:
      out:
        - { id: log, protocol: tcp, dport: 25, action: drop }
`}`;
  const r = parseDeclaration(text, 'test.yaml');
  if (r.err) throw r.val;
  return r.val;
}

function ruleIds(fake: FakeHost, table: string, chain: string): string[] {
  return (fake.nftOf(NS).rules('inet', table, chain) ?? []).map((r) => r.comment ?? `#${r.handle}`);
}

let fake: FakeHost;
beforeEach(() => {
  clearNftBatchFeatures();
  setFaultHook(undefined);
  fake = new FakeHost({ netns: [NS] });
});

describe('declarative files on a FakeHost', () => {
  it('plan shows additions; apply makes them; plan then shows no change; the record is written', async () => {
    await withHost(fake, async () => {
      const p = await planDeclaration(file(), { netns: NS });
      expect(p.err ? p.val.message : 'ok').toBe('ok');
      const d = p.unwrap();
      expect(d.objects.map((o) => [o.key, o.action])).toEqual([['firewall inet web', 'add'], ['firewall inet admin', 'add']]);
      const text = renderDiff(d);
      expect(text).toContain('+ firewall inet web (new)');
      expect(text).toContain('+ rule input/no-ssh: meta l4proto tcp tcp dport 22 counter drop');
      expect(text).toContain('+ set blocked elements: 198.18.9.0/24');
      expect(text).toContain('Plan: 2 to add, 0 to change, 0 to remove.');
      expect(fake.nftOf(NS).table('inet', 'web')).toBeUndefined();

      const a = await applyDeclaration(file(), { netns: NS });
      expect(a.err ? a.val.message : 'ok').toBe('ok');
      expect(ruleIds(fake, 'web', 'input')).toEqual(['nf:est', 'nf:blocked', 'nf:no-ssh']);
      expect(ruleIds(fake, 'admin', 'out')).toEqual(['nf:log']);
      expect(fake.files.exists(statePath('test-file', NS))).toBe(true);

      const again = (await planDeclaration(file(), { netns: NS })).unwrap();
      expect(again.changes).toBe(0);
      expect(renderDiff(again)).toContain('No changes: the kernel matches the file.');
      const noop = (await applyDeclaration(file(), { netns: NS })).unwrap();
      expect(noop.plan).toBeUndefined();
    });
  });

  it('an edited file: the rule that changed, the element added, the policy, the firewall removed', async () => {
    await withHost(fake, async () => {
      (await applyDeclaration(file(), { netns: NS })).unwrap();
      const edited = file({ port: 23, extra: true, policy: 'drop', second: false });
      const d = (await planDeclaration(edited, { netns: NS })).unwrap();
      expect(d.objects.map((o) => [o.key, o.action])).toEqual([['firewall inet web', 'change'], ['firewall inet admin', 'remove']]);
      const c = d.objects[0]!.tables![0]!.changes;
      expect(c.rulesChanged).toEqual([{ chain: 'input', id: 'no-ssh', from: 'meta l4proto tcp tcp dport 22 counter drop', to: 'meta l4proto tcp tcp dport 23 counter drop' }]);
      expect(c.elementsAdded).toEqual([{ object: 'set blocked', elements: ['198.18.10.1'] }]);
      expect(c.chainsChanged).toEqual([{ chain: 'input', from: expect.stringContaining('policy accept'), to: expect.stringContaining('policy drop') }]);
      expect(c.rulesAdded).toEqual([]);
      expect(c.rulesRemoved).toEqual([]);
      const text = renderDiff(d);
      expect(text).toContain('~ rule input/no-ssh:');
      expect(text).toContain('- firewall inet admin (removed)');

      (await applyDeclaration(edited, { netns: NS })).unwrap();
      expect(fake.nftOf(NS).table('inet', 'admin')).toBeUndefined();
      expect(fake.nftOf(NS).elements('inet', 'web', 'blocked')).toEqual(expect.arrayContaining(['198.18.10.1']));
      expect((await planDeclaration(edited, { netns: NS })).unwrap().changes).toBe(0);
    });
  });

  it('a rule removed by hand shows up as a rule to add', async () => {
    await withHost(fake, async () => {
      (await applyDeclaration(file(), { netns: NS })).unwrap();
      const h = fake.nftOf(NS).rules('inet', 'web', 'input')!.find((r) => r.comment === 'nf:blocked')!.handle;
      (await nftApply([{ delete: { rule: { family: 'inet', table: 'web', chain: 'input', handle: h } } }], { netns: NS })).unwrap();
      const d = (await planDeclaration(file(), { netns: NS })).unwrap();
      expect(d.objects[0]!.tables![0]!.changes.rulesAdded.map((r) => r.id)).toEqual(['blocked']);
    });
  });

  it('a transaction that fails late (verification) leaves every table and the record as before', async () => {
    await withHost(fake, async () => {
      (await applyDeclaration(file(), { netns: NS })).unwrap();
      const snap = () => JSON.stringify([ruleIds(fake, 'web', 'input'), ruleIds(fake, 'admin', 'out'), fake.nftOf(NS).elements('inet', 'web', 'blocked'), fake.nftOf(NS).table('inet', 'web')?.chains.get('input')?.spec]);
      const before = snap();
      const record = fake.files.read(statePath('test-file', NS));
      const f = failNth(0);
      setFaultHook((p) => (p === 'verify' ? f.hook(p) : false));
      const r = await applyDeclaration(file({ port: 23, extra: true, policy: 'drop', second: false }), { netns: NS });
      setFaultHook(undefined);
      expect(r.err && r.val.message).toContain('verif');
      expect(r.err && (r.val as { restored?: boolean }).restored).toBe(true);
      expect(snap()).toBe(before);
      expect(fake.files.read(statePath('test-file', NS))).toBe(record);
      expect((await planDeclaration(file(), { netns: NS })).unwrap().changes).toBe(0);
    });
  });

  it('destroy removes exactly what the file declares, in one transaction', async () => {
    await withHost(fake, async () => {
      (await applyDeclaration(file(), { netns: NS })).unwrap();
      (await nftApply([{ add: { table: { family: 'inet', name: 'neighbour' } } }], { netns: NS })).unwrap();
      const r = (await destroyDeclaration(file(), { netns: NS })).unwrap();
      expect(r.objects.map((o) => [o.key, o.action])).toEqual([['firewall inet web', 'remove'], ['firewall inet admin', 'remove']]);
      expect(fake.nftOf(NS).table('inet', 'web')).toBeUndefined();
      expect(fake.nftOf(NS).table('inet', 'admin')).toBeUndefined();
      expect(fake.nftOf(NS).table('inet', 'neighbour')).toBeDefined();
      expect(fake.files.exists(statePath('test-file', NS))).toBe(false);
      const again = (await destroyDeclaration(file(), { netns: NS })).unwrap();
      expect(again.objects.every((o) => o.action === 'none')).toBe(true);
    });
  });

  it('a declared table that exists without the file\'s mark is refused, nothing changed', async () => {
    await withHost(fake, async () => {
      (await nftApply([{ add: { table: { family: 'inet', name: 'web' } } }], { netns: NS })).unwrap();
      const p = await planDeclaration(file(), { netns: NS });
      expect(p.err && p.val).toBeInstanceOf(OwnershipError);
      const a = await applyDeclaration(file(), { netns: NS });
      expect(a.err && a.val).toBeInstanceOf(OwnershipError);
      expect(fake.nftOf(NS).table('inet', 'admin')).toBeUndefined();
    });
  });

  it('SmartProxy routes: one owned table built by the route compiler; plan, apply, an edited route, destroy', async () => {
    const sp = (port: number) => {
      const r = parseDeclaration(`version: 1\nowner: sp-file\nsmartproxy:\n  tableName: spdecl\n  routes:\n    - name: https\n      match: { ports: 443 }\n      action: { type: forward, forwardingEngine: nftables, targets: [{ host: 198.18.0.10, port: ${port} }] }\n`, 'sp.yaml');
      if (r.err) throw r.val;
      return r.val;
    };
    await withHost(fake, async () => {
      const d = (await planDeclaration(sp(8443), { netns: NS })).unwrap();
      expect(d.objects.map((o) => [o.key, o.action])).toEqual([['smartproxy', 'add']]);
      expect(renderDiff(d)).toContain('+ chain sp_dnat');
      (await applyDeclaration(sp(8443), { netns: NS })).unwrap();
      expect(fake.nftOf(NS).table('inet', 'spdecl')).toBeDefined();
      expect((await planDeclaration(sp(8443), { netns: NS })).unwrap().changes).toBe(0);
      const changed = (await planDeclaration(sp(9443), { netns: NS })).unwrap();
      expect(changed.objects[0]?.action).toBe('change');
      expect(renderDiff(changed)).toMatch(/~ rule sp_dnat\/[^\n]*\n\s+- [^\n]*8443[^\n]*\n\s+\+ [^\n]*9443/);
      (await applyDeclaration(sp(9443), { netns: NS })).unwrap();
      expect((await planDeclaration(sp(9443), { netns: NS })).unwrap().changes).toBe(0);
      (await destroyDeclaration(sp(9443), { netns: NS })).unwrap();
      expect(fake.nftOf(NS).table('inet', 'spdecl')).toBeUndefined();
    });
  });

  it('VM firewalls: a bridge Firewall with attachVm specs; a VM rule edited shows as that rule changed', async () => {
    const vm = (port: number) => {
      const r = parseDeclaration(`version: 1\nowner: vm-file\nvmFirewalls:\n  - table: vmfw\n    vmOptions: { reject: drop, stateful: off }\n    vms:\n      - vmId: vm1\n        iface: tap1\n        rules:\n          - { id: web, name: web, action: ACCEPT, direction: IN, priority: 10, protocol: tcp, dstPortStart: ${port}, dstPortEnd: ${port} }\n        defaultPolicy: DROP\n`, 'vm.yaml');
      if (r.err) throw r.val;
      return r.val;
    };
    await withHost(fake, async () => {
      const d = (await planDeclaration(vm(80), { netns: NS })).unwrap();
      expect(d.objects.map((o) => [o.key, o.action])).toEqual([['vm-firewall bridge vmfw', 'add']]);
      (await applyDeclaration(vm(80), { netns: NS })).unwrap();
      expect(fake.nftOf(NS).table('bridge', 'vmfw')).toBeDefined();
      expect((await planDeclaration(vm(80), { netns: NS })).unwrap().changes).toBe(0);
      const c = (await planDeclaration(vm(8080), { netns: NS })).unwrap();
      const changes = c.objects[0]!.tables![0]!.changes;
      expect(changes.rulesChanged.map((r) => r.id)).toEqual([expect.stringContaining('web')]);
      expect(changes.rulesChanged[0]?.to).toContain('8080');
      (await destroyDeclaration(vm(8080), { netns: NS })).unwrap();
      expect(fake.nftOf(NS).table('bridge', 'vmfw')).toBeUndefined();
    });
  });
});
