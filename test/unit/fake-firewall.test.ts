/**
 * Firewall orchestration on a FakeHost (no root, no kernel): apply, live
 * changes, destroy, a failed batch that leaves the previous state, and the
 * refusal to touch a table netfence does not own — judged on the fake
 * kernel's ruleset afterwards, the way the kernel tests judge with packets.
 */
import './fake-setup.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { Firewall } from '../../src/firewall/index.js';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { clearNftBatchFeatures } from '../../src/plan/nft-features.js';
import { OwnershipError } from '../../src/plan/ownership.js';

const NS = 'fw-fake';

function build(extraRule = false): Firewall {
  const fw = new Firewall({ table: 'web', netns: NS });
  fw.chain('input', { type: 'filter', hook: 'input', priority: 0, policy: 'drop' });
  fw.set('allowed', { type: 'ipv4_addr', elements: ['198.18.0.1'] });
  fw.rule('input', { id: 'est', ctState: ['established', 'related'], action: { type: 'accept' } });
  fw.rule('input', { id: 'ssh', protocol: 'tcp', dport: 22, saddr: '@allowed', action: { type: 'accept' } });
  if (extraRule) fw.rule('input', { id: 'web', protocol: 'tcp', dport: 443, action: { type: 'accept' } });
  return fw;
}

/** The rule ids (from `nf:` comments) of a chain of the fake kernel, in order. */
function ruleIds(fake: FakeHost, table = 'web', chain = 'input'): string[] {
  return (fake.nftOf(NS).rules('inet', table, chain) ?? []).map((r) => r.comment ?? `#${r.handle}`);
}

let fake: FakeHost;
beforeEach(() => {
  clearNftBatchFeatures();
  fake = new FakeHost({ netns: [NS] });
});

describe('Firewall on a FakeHost', () => {
  it('apply puts the table into the namespace, owned, in one committed batch', async () => {
    const fw = build();
    const r = await withHost(fake, () => fw.apply());
    expect(r.err ? r.val.message : 'ok').toBe('ok');
    const t = fake.nftOf(NS).table('inet', 'web');
    expect(t?.chains.get('input')?.spec).toMatchObject({ type: 'filter', hook: 'input', prio: 0, policy: 'drop' });
    expect(ruleIds(fake)).toEqual([expect.stringContaining('est'), expect.stringContaining('ssh')]);
    expect(fake.nftOf(NS).elements('inet', 'web', 'allowed')).toEqual(['198.18.0.1']);
    // ownership mark, and nothing outside the namespace
    expect([...(t?.objects.keys() ?? [])].some((k) => k.startsWith('counter netfence_owner_'))).toBe(true);
    expect(fake.nftOf().state.tables.size).toBe(0);
    expect(fake.calls.every((c) => c.argv[0] !== 'nft' || c.netns === NS || /^nfcap-/.test(c.netns ?? ''))).toBe(true);
  });

  it('live changes: addElements, addRule (first and last), removeRule, deleteElements; a re-apply replaces the table', async () => {
    const fw = build();
    await withHost(fake, async () => {
      expect((await fw.apply()).ok).toBe(true);
      expect((await fw.addElements('allowed', ['198.18.0.2', '198.18.0.3'])).ok).toBe(true);
      expect((await fw.addRule('input', { id: 'first', protocol: 'udp', dport: 53, action: { type: 'accept' } }, { position: 'first' })).ok).toBe(true);
      expect((await fw.addRule('input', { id: 'last', protocol: 'tcp', dport: 80, action: { type: 'accept' } })).ok).toBe(true);
      expect(ruleIds(fake).map((c) => /first|est|ssh|last/.exec(c)?.[0])).toEqual(['first', 'est', 'ssh', 'last']);
      expect((await fw.removeRule('ssh')).ok).toBe(true);
      expect(ruleIds(fake).map((c) => /first|est|ssh|last/.exec(c)?.[0])).toEqual(['first', 'est', 'last']);
      expect((await fw.deleteElements('allowed', ['198.18.0.1'])).ok).toBe(true);
      expect(fake.nftOf(NS).elements('inet', 'web', 'allowed')).toEqual(['198.18.0.2', '198.18.0.3']);
      // the builder kept the live changes: a full apply gives the same rules
      expect((await fw.apply()).ok).toBe(true);
      expect(ruleIds(fake).map((c) => /first|est|ssh|last/.exec(c)?.[0])).toEqual(['first', 'est', 'last']);
    });
    // live changes are small batches: none of them listed the set
    expect(fake.callsOf('nft', '-j', 'list', 'set')).toEqual([]);
  });

  it('status reads rule counters by id from the fake kernel', async () => {
    const fw = build();
    await withHost(fake, async () => {
      expect((await fw.apply()).ok).toBe(true);
      const ssh = fake.nftOf(NS).rules('inet', 'web', 'input')!.find((r) => r.comment?.includes('ssh'))!;
      fake.nftOf(NS).setRuleCounter('inet', 'web', 'input', ssh.handle, { packets: 7, bytes: 420 });
      const s = await fw.status();
      expect(s.ok && s.val.rules.ssh).toMatchObject({ chain: 'input', handle: ssh.handle, packets: 7, bytes: 420 });
    });
  });

  it('a failed batch leaves the previous state, and the error names the failed command', async () => {
    const fw = build();
    await withHost(fake, async () => {
      expect((await fw.apply()).ok).toBe(true);
      const before = JSON.stringify(fake.nftOf(NS).list('ruleset', null));
      // a live change the kernel refuses: an element of another type, only the kernel can say
      fake.respond(['nft', '-j', '-f', '-'], (req) => (req.input?.includes('"element"') ? { exitCode: 1, stderr: 'internal:0:0-0: Error: Could not process rule: Invalid argument' } : undefined));
      const r = await fw.addElements('allowed', ['198.18.0.9']);
      expect(r.err).toBe(true);
      expect(JSON.stringify(fake.nftOf(NS).list('ruleset', null))).toBe(before);
      // a whole apply whose nft batch fails (injected): atomic, nothing changes
      const fw2 = build(true);
      fake.failNftBatch(1);
      const a = await fw2.apply();
      expect(a.err).toBe(true);
      expect(a.err && a.val.message).toMatch(/nothing was applied|rolled back|restored|fault injected/i);
      expect(JSON.stringify(fake.nftOf(NS).list('ruleset', null))).toBe(before);
    });
  });

  it('names the failed command of a batch the model refuses (nft -c bisection against the fake)', async () => {
    const fw = build();
    await withHost(fake, async () => {
      expect((await fw.apply()).ok).toBe(true);
      // a rule in a chain deleted behind the builder's back: the kernel refuses the add
      fake.nftOf(NS).transact([{ delete: { rule: { family: 'inet', table: 'web', chain: 'input', handle: fake.nftOf(NS).rules('inet', 'web', 'input')![0]!.handle } } }]);
      fake.nftOf(NS).transact([{ flush: { chain: { family: 'inet', table: 'web', name: 'input' } } }, { delete: { chain: { family: 'inet', table: 'web', name: 'input' } } }]);
      const r = await fw.addRule('input', { id: 'late', protocol: 'tcp', dport: 8080, action: { type: 'accept' } });
      expect(r.err).toBe(true);
      expect(r.err && r.val.message).toMatch(/No such file or directory/);
      expect(r.err && r.val.message).toMatch(/add rule inet web input/);
      // the bisection ran nft -c against the fake
      expect(fake.callsOf('nft', '-c', '-j', '-f', '-').length).toBeGreaterThan(0);
    });
  });

  it('refuses a table of the same name it does not own, and leaves it alone', async () => {
    // somebody else's table
    fake.nftOf(NS).transact([
      { add: { table: { family: 'inet', name: 'web' } } },
      { add: { chain: { family: 'inet', table: 'web', name: 'theirs' } } },
    ]);
    const theirs = (): string => JSON.stringify(fake.nftOf(NS).list('table', { family: 'inet', name: 'web' }));
    const before = theirs();
    const fw = build();
    const r = await withHost(fake, () => fw.apply());
    expect(r.err).toBe(true);
    expect(r.err && r.val.cause).toBeInstanceOf(OwnershipError);
    expect(r.err && (r.val.cause as OwnershipError).ownedBy).toBeUndefined();
    const d = await withHost(fake, () => fw.destroy());
    expect(d.err && d.val).toBeInstanceOf(OwnershipError);
    // another netfence owner's table is refused too, naming that owner
    const mine = new Firewall({ table: 'other', netns: NS, owner: 'app:a' });
    mine.chain('c', {});
    expect((await withHost(fake, () => mine.apply())).ok).toBe(true);
    const thief = new Firewall({ table: 'other', netns: NS, owner: 'app:b' });
    thief.chain('c', {});
    const t = await withHost(fake, () => thief.apply());
    expect(t.err && (t.val.cause as OwnershipError).ownedBy).toBe('app:a');
    expect(theirs()).toBe(before);
  });

  it('destroy removes exactly its table; a second destroy is fine', async () => {
    fake.nftOf(NS).transact([{ add: { table: { family: 'inet', name: 'neighbour' } } }]);
    const fw = build();
    await withHost(fake, async () => {
      expect((await fw.apply()).ok).toBe(true);
      expect((await fw.destroy()).ok).toBe(true);
      expect((await fw.destroy()).ok).toBe(true);
    });
    expect(fake.nftOf(NS).table('inet', 'web')).toBeUndefined();
    expect(fake.nftOf(NS).table('inet', 'neighbour')).toBeDefined();
  });

  it('works with nft 1.0.6 behaviour (no destroy, table comments dropped)', async () => {
    const old = new FakeHost({ netns: [NS], nft: { version: '1.0.6', destroy: false, tableComments: false } });
    const fw = build();
    await withHost(old, async () => {
      expect((await fw.apply()).ok).toBe(true);
      expect((await fw.destroy()).ok).toBe(true);
    });
    expect(old.nftOf(NS).table('inet', 'web')).toBeUndefined();
    // it never sent a destroy command to the old nft outside the feature probe
    const sent = old.calls.filter((c) => c.netns === NS && c.input?.includes('"destroy"'));
    expect(sent).toEqual([]);
  });
});
