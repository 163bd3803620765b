/**
 * `netfence xdp` without a kernel: list files parsed line by line with the
 * blocklist's own validation (line numbers of bad lines), XdpBlocklist.open()
 * finding a blocklist by name on a FakeHost (XDP pins with an attached
 * program, or the nft fallback's table), and the dispatcher's exit codes
 * (`--version`, unknown command, unknown option) run as a process.
 */
import './fake-setup.js';
import { describe, expect, it } from 'vitest';
import { parseListText } from '../../src/cli/commands/xdp.js';
import { FakeHost } from '../../src/host/fake.js';
import { withHost } from '../../src/host/host.js';
import { run } from '../../src/host/run.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { primeFakeCapabilities } from './fake-caps.js';

describe('parseListText', () => {
  it('one entry per line; # comments, blank lines and surrounding spaces ignored; CRLF files too', () => {
    const r = parseListText('# header\n198.18.0.1\n\n  198.18.0.0/15   # a prefix\r\nfd00::/8\nfd00::1 #x\n', 'f');
    expect(r).toEqual({ entries: ['198.18.0.1', '198.18.0.0/15', 'fd00::/8', 'fd00::1'], bad: [], badCount: 0 });
  });

  it('bad lines are named by file and line number with the reason; the count covers those not listed', () => {
    const text = ['198.18.0.1', 'nope', '198.18.1.5/24', ...Array.from({ length: 30 }, () => 'x')].join('\n');
    const r = parseListText(text, 'list.txt', 20);
    expect(r.entries).toEqual(['198.18.0.1']);
    expect(r.badCount).toBe(32);
    expect(r.bad).toHaveLength(20);
    expect(r.bad[0]).toMatchObject({ file: 'list.txt', line: 2, text: 'nope' });
    expect(r.bad[1]).toMatchObject({ line: 3, text: '198.18.1.5/24', reason: 'prefix has host bits set; did you mean 198.18.1.0/24?' });
  });

  it('a large file is parsed in one pass (100,000 lines)', () => {
    const lines = Array.from({ length: 100_000 }, (_, i) => `198.19.${(i >> 8) & 255}.${i & 255}`);
    const r = parseListText(lines.join('\n'), 'big');
    expect(r.entries).toHaveLength(100_000);
    expect(r.badCount).toBe(0);
  });
});

describe('XdpBlocklist.open on a FakeHost', () => {
  const NS = 'cli-fake';
  const OBJ = '/opt/netfence/xdp_blocklist.o';
  const host = () => {
    const fake = new FakeHost({ netns: [NS], links: { [NS]: [{ ifname: 'veth0' }, { ifname: 'veth1' }] } });
    fake.files.put(OBJ, '(a BPF object)');
    primeFakeCapabilities(NS);
    return fake;
  };

  it('XDP: found by name through its pinned program attached in the namespace; entries written by the opened object are seen by the original', async () => {
    const fake = host();
    await withHost(fake, async () => {
      const bl = new XdpBlocklist({ iface: 'veth1', netns: NS, backend: 'xdp', name: 'clix', objectPath: OBJ });
      (await bl.apply()).unwrap();
      const o = (await XdpBlocklist.open('clix', { netns: NS })).unwrap();
      expect([o.name, o.iface, o.backend, o.mode, o.options.netns]).toEqual(['clix', 'veth1', 'xdp', bl.mode, NS]);
      expect((await o.add(['198.18.5.5', 'fd00::/16'])).unwrap()).toEqual({ added: 2 });
      expect((await bl.has('198.18.5.5')).unwrap()).toBe(true);
      o.close();
      // the wrong interface, another namespace, another name: not attached there
      for (const [name, opts] of [['clix', { netns: NS, iface: 'veth0' }], ['clix', {}], ['other', { netns: NS }]] as const) {
        const r = await XdpBlocklist.open(name, opts);
        expect(r.err && r.val.code).toBe('NOT_ATTACHED');
      }
      (await bl.destroy()).unwrap();
      const gone = await XdpBlocklist.open('clix', { netns: NS });
      expect(gone.err && gone.val.code).toBe('NOT_ATTACHED');
    });
  });

  it('nft fallback: found by its table; an instance without a known interface refuses apply()', async () => {
    const fake = host();
    await withHost(fake, async () => {
      const bl = new XdpBlocklist({ iface: 'veth0', netns: NS, backend: 'nft', name: 'clin' });
      (await bl.apply()).unwrap();
      const o = (await XdpBlocklist.open('clin', { netns: NS })).unwrap();
      expect(o.backend).toBe('nft');
      expect((await o.add(['198.18.6.6'])).unwrap()).toEqual({ added: 1 });
      expect((await bl.list()).unwrap().map((e) => e.entry)).toEqual(['198.18.6.6']);
      if (o.iface === undefined) {
        const a = await o.apply();
        expect(a.err && a.val.code).toBe('VALIDATION');
      } else expect(o.iface).toBe('veth0');
      const given = (await XdpBlocklist.open('clin', { netns: NS, iface: 'veth0' })).unwrap();
      expect(given.iface).toBe('veth0');
      (await bl.destroy()).unwrap();
    });
  });

  it('a bad name is a ValidationError, before anything is read', async () => {
    const fake = host();
    await withHost(fake, async () => {
      const r = await XdpBlocklist.open('bad/name', { netns: NS });
      expect(r.err && r.val.code).toBe('VALIDATION');
      expect(fake.calls).toHaveLength(0);
    });
  });
});

describe('the dispatcher (as a process)', () => {
  const cli = async (args: string[]) => {
    const r = await run(['npx', 'tsx', 'src/cli/main.ts', ...args], { timeoutMs: 120_000 });
    return r.ok ? { code: 0, out: r.val.stdout, err: r.val.stderr } : { code: r.val.failure.exitCode, out: r.val.failure.stdout, err: r.val.failure.stderr };
  };

  it('--version, unknown command (2), unknown option (2), bad list file (2, the line named), no arguments (2)', async () => {
    const v = await cli(['--version', '--json']);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.out)).toMatchObject({ name: 'netfence' });
    expect((await cli(['--version'])).out).toMatch(/^netfence \d+\.\d+\.\d+/);
    const u = await cli(['xdp', 'frob']);
    expect(u.code).toBe(2);
    expect(u.err).toContain('Did you mean: netfence xdp add');
    const o = await cli(['xdp', 'add', '--frob']);
    expect(o.code).toBe(2);
    expect(o.err).toContain('usage: netfence xdp add');
    const bad = await cli(['xdp', 'add', '--name', 'x', '198.18.0.1', '198.18.0.1/8']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("argument 2: '198.18.0.1/8' is not an address or prefix: prefix has host bits set; did you mean 198.0.0.0/8?");
    expect(bad.err).toContain('Nothing was changed');
    expect((await cli([])).code).toBe(2);
    const h = await cli(['xdp', 'add', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('Exit codes: 0 done');
  }, 120_000);
});
