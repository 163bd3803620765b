import { afterEach, describe, expect, it } from 'vitest';
import { resolveProgram } from '../../src/capabilities/nft.js';
import { ValidationError } from '../../src/errors.js';
import { configureHost, nftProgram, run } from '../../src/host/run.js';

const savedEnv = process.env.NETFENCE_NFT;
afterEach(() => {
  configureHost({ nft: undefined });
  if (savedEnv === undefined) delete process.env.NETFENCE_NFT;
  else process.env.NETFENCE_NFT = savedEnv;
});

describe('choosing the nft program', () => {
  it('defaults to nft from PATH, then $NETFENCE_NFT (read at every call), then configureHost', () => {
    delete process.env.NETFENCE_NFT;
    expect(nftProgram()).toEqual({ program: 'nft', source: 'path' });
    process.env.NETFENCE_NFT = '';
    expect(nftProgram()).toEqual({ program: 'nft', source: 'path' });
    process.env.NETFENCE_NFT = '/opt/a/nft';
    expect(nftProgram()).toEqual({ program: '/opt/a/nft', source: 'env' });
    process.env.NETFENCE_NFT = '/opt/b/nft';
    expect(nftProgram()).toEqual({ program: '/opt/b/nft', source: 'env' });
    expect(configureHost({ nft: '/opt/c/nft' })).toEqual({ nft: '/opt/c/nft' });
    expect(nftProgram()).toEqual({ program: '/opt/c/nft', source: 'option' });
    expect(configureHost({})).toEqual({ nft: '/opt/c/nft' }); // nothing named, nothing changed
    configureHost({ nft: undefined });
    expect(nftProgram()).toEqual({ program: '/opt/b/nft', source: 'env' });
  });

  it('refuses a relative path, NUL bytes and unknown settings', () => {
    for (const bad of ['nft', './nft', 'sbin/nft', '/opt/n\0ft', '']) {
      expect(() => configureHost({ nft: bad }), JSON.stringify(bad)).toThrow(ValidationError);
    }
    expect(() => configureHost({ nft: 1 as unknown as string })).toThrow(ValidationError);
    expect(() => configureHost({ tc: '/sbin/tc' } as unknown as { nft: string })).toThrow(/unknown field "tc"/);
    expect(nftProgram().source).not.toBe('option');
    process.env.NETFENCE_NFT = 'relative/nft';
    expect(() => nftProgram()).toThrow(/NETFENCE_NFT.*absolute/s);
  });

  it('run() executes the chosen program for argv[0] "nft", and only for that', async () => {
    configureHost({ nft: '/bin/echo' });
    const r = await run(['nft', '-j', 'list', 'tables']);
    expect(r.ok && r.val.stdout).toBe('-j list tables');
    const other = await run(['echo', 'nft']);
    expect(other.ok && other.val.stdout).toBe('nft');
  });

  it('a chosen program that does not exist fails with a hint naming where it came from', async () => {
    process.env.NETFENCE_NFT = '/nonexistent/netfence-test/nft';
    const r = await run(['nft', '--version']);
    expect(r.err).toBe(true);
    if (r.err) {
      expect(r.val.failure.argv[0]).toBe('/nonexistent/netfence-test/nft');
      expect(r.val.hint).toMatch(/NETFENCE_NFT/);
    }
  });

  it('resolveProgram finds an executable on PATH, or checks an absolute path', () => {
    expect(resolveProgram('sh', '/nonexistent:/bin')).toBe('/bin/sh');
    expect(resolveProgram('sh', '/nonexistent')).toBeNull();
    expect(resolveProgram('/bin/sh')).toBe('/bin/sh');
    expect(resolveProgram('/nonexistent/nft')).toBeNull();
    expect(resolveProgram('/etc/passwd')).toBeNull(); // not executable (mode 0644)
    expect(resolveProgram('/etc')).toBeNull(); // a directory
  });
});
