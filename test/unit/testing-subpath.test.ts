// netfence/testing: the FakeHost as users get it, with the example of its module doc.
import './fake-setup.js'; // first: journal and lock directories in a temporary place
import { describe, expect, it } from 'vitest';
import { Firewall } from '../../src/index.js';
import { withHost } from '../../src/advanced.js';
import { FakeHost, FakeNft, FakeFiles, FakeBpf, FakeProcess } from '../../src/testing.js';

describe('netfence/testing', () => {
  it('exports the fake machine and its parts', () => {
    for (const c of [FakeHost, FakeNft, FakeFiles, FakeBpf, FakeProcess]) expect(typeof c).toBe('function');
  });

  it('runs the module doc example: a Firewall applied to a fake namespace holds its rule there', async () => {
    const fake = new FakeHost({ netns: ['app'] });
    await withHost(fake, async () => {
      const fw = new Firewall({ table: 'web', family: 'inet', netns: 'app' })
        .chain('input', { hook: 'input', priority: 0 })
        .rule('input', { id: 'ssh', dport: 22, protocol: 'tcp', action: 'accept' });
      (await fw.apply()).unwrap();
    });
    const rules = fake.nftOf('app').rules('inet', 'web', 'input') ?? [];
    expect(rules.length).toBe(1);
    expect(JSON.stringify(rules[0])).toContain('accept');
    // the machine's own namespace was not touched
    expect(fake.nftOf().table('inet', 'web')).toBeUndefined();
  });
});
