/**
 * FakeHost itself: what it records, how responders and faults work, and that
 * its files, namespaces, tools and bpf(2) answer the way the real ones do
 * (errors with node:fs codes and errno values).
 */
import { describe, expect, it } from 'vitest';
import { BpfMapType, BpfSyscallError, Errno } from '../../src/host/bpf.js';
import { FakeHost } from '../../src/host/fake.js';
import { currentHost, withHost } from '../../src/host/host.js';
import { nftApply, nftList } from '../../src/host/nft.js';
import { run, runSync } from '../../src/host/run.js';
import { startProcess } from '../../src/host/spawn.js';

describe('FakeHost', () => {
  it('is the current host inside withHost only, and records every run() with its namespace and stdin', async () => {
    const fake = new FakeHost({ netns: ['a'] });
    expect(currentHost().name).toBe('real');
    await withHost(fake, async () => {
      expect(currentHost()).toBe(fake);
      expect((await run(['sysctl', '-n', 'net.ipv4.ip_forward'], { netns: 'a' })).unwrap().stdout).toBe('0');
      expect((await run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'], { netns: 'a' })).ok).toBe(true);
      expect(runSync(['sysctl', '-n', 'net.ipv4.ip_forward'], { netns: 'a' }).stdout).toBe('1');
    });
    expect(fake.calls.map((c) => [c.argv[0], c.netns])).toEqual([['sysctl', 'a'], ['sysctl', 'a'], ['sysctl', 'a']]);
    expect(fake.ns().sysctl.get('net.ipv4.ip_forward')).toBe('0');
  });

  it('fails like nsenter for a namespace that does not exist, and like a missing program for an unknown tool', async () => {
    const fake = new FakeHost();
    await withHost(fake, async () => {
      const r = await run(['nft', '-j', 'list', 'tables'], { netns: 'nope' });
      expect(r.err && r.val.failure.stderr).toMatch(/cannot open \/run\/netns\/nope/);
      const u = await run(['frobnicate', '--now']);
      expect(u.err && u.val.failure.exitCode).toBe(127);
      expect((await run(['ip', 'netns', 'add', 'nope'])).ok).toBe(true);
      expect((await run(['nft', '-j', 'list', 'tables'], { netns: 'nope' })).ok).toBe(true);
      expect((await run(['ip', 'netns', 'add', 'nope'])).err).toBe(true);
      expect(fake.files.exists('/run/netns/nope')).toBe(true);
    });
  });

  it('responders answer first (latest first); failRun and failNftBatch inject faults', async () => {
    const fake = new FakeHost();
    fake.respond(['iperf3'], { stdout: '{"end":{}}' });
    fake.respond(['iperf3', '-c'], (req) => ({ stdout: `client ${req.argv.length}` }));
    fake.failRun(['tc', 'qdisc'], { stderr: 'RTNETLINK answers: Operation not permitted', exitCode: 2 });
    await withHost(fake, async () => {
      expect((await run(['iperf3', '-s'])).unwrap().stdout).toBe('{"end":{}}');
      expect((await run(['iperf3', '-c', 'x'])).unwrap().stdout).toBe('client 3');
      expect((await run(['tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb'])).err).toBe(true);
      expect((await run(['tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb'])).ok).toBe(true); // once only
      fake.failNftBatch(2);
      const t = (n: string) => [{ add: { table: { family: 'inet', name: n } } }];
      expect((await nftApply(t('one'))).ok).toBe(true);
      const second = await nftApply(t('two'));
      expect(second.err && second.val.message).toContain('fault injected');
      expect((await nftApply(t('three'))).ok).toBe(true);
      expect((await nftList(['tables'])).unwrap().nftables.slice(1)).toEqual([{ table: { family: 'inet', name: 'one', handle: 1 } }, { table: { family: 'inet', name: 'three', handle: 2 } }]);
    });
  });

  it('files answer with node:fs error codes; pins and cgroup directories behave like bpffs and cgroup2', () => {
    const fake = new FakeHost();
    const f = fake.files;
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
        return undefined;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code;
      }
    };
    expect(code(() => f.read('/nope'))).toBe('ENOENT');
    expect(code(() => f.write('/no/dir/file', 'x'))).toBe('ENOENT');
    f.mkdir('/sys/fs/cgroup/app.slice');
    expect(f.readdir('/sys/fs/cgroup/app.slice')).toEqual(['cgroup.procs']);
    f.write('/sys/fs/cgroup/app.slice/cgroup.procs', '123');
    expect(f.rmdir('/sys/fs/cgroup/app.slice')).toBeUndefined();
    expect(code(() => f.mkdir('/sys/fs/bpf'))).toBe('EEXIST');
    f.mkdir('/sys/fs/bpf/x');
    f.write('/sys/fs/bpf/x/a', '1');
    expect(code(() => f.rmdir('/sys/fs/bpf/x'))).toBe('ENOTEMPTY');
    f.rename('/sys/fs/bpf/x/a', '/sys/fs/bpf/x/b');
    expect(f.readdir('/sys/fs/bpf/x')).toEqual(['b']);
    expect(f.read('/sys/devices/system/cpu/possible').trim()).toBe('0-1');
  });

  it('bpf(2): maps with errno answers, pins through the files, per-CPU values, fds closed', () => {
    const fake = new FakeHost({ cpus: 4 });
    const b = fake.bpf;
    const fd = b.mapCreate({ type: BpfMapType.HASH, keySize: 4, valueSize: 8, maxEntries: 2, name: 'h' });
    const k = b.alloc(4);
    const v = b.alloc(8);
    k.buf.writeUInt32LE(7, 0);
    v.buf.writeBigUInt64LE(42n, 0);
    expect(b.updateElem(fd, k.addr, v.addr)).toBe(0);
    expect(b.updateElem(fd, k.addr, v.addr, 1 /* BPF_NOEXIST */)).toBe(-Errno.EEXIST);
    v.buf.fill(0);
    expect(b.lookupElem(fd, k.addr, v.addr)).toBe(0);
    expect(v.buf.readBigUInt64LE(0)).toBe(42n);
    k.buf.writeUInt32LE(8, 0);
    expect(b.lookupElem(fd, k.addr, v.addr)).toBe(-Errno.ENOENT);
    expect(b.updateElem(fd, k.addr, v.addr)).toBe(0);
    k.buf.writeUInt32LE(9, 0);
    expect(b.updateElem(fd, k.addr, v.addr)).toBe(-Errno.E2BIG);
    b.objPin(fd, '/sys/fs/bpf/h');
    expect(() => b.objPin(fd, '/sys/fs/bpf/h')).toThrow(BpfSyscallError);
    const fd2 = b.objGet('/sys/fs/bpf/h');
    expect(b.mapInfo(fd2)).toMatchObject({ type: BpfMapType.HASH, keySize: 4, valueSize: 8, maxEntries: 2, name: 'h' });
    expect(() => b.objGet('/sys/fs/bpf/none')).toThrow(/ENOENT/);
    const pc = b.mapCreate({ type: BpfMapType.PERCPU_ARRAY, keySize: 4, valueSize: 16, maxEntries: 1, name: 'pc' });
    const big = b.alloc(16 * 4);
    k.buf.writeUInt32LE(0, 0);
    expect(b.lookupElem(pc, k.addr, big.addr)).toBe(0);
    for (const x of [fd, fd2, pc]) b.close(x);
    expect(b.openFds()).toBe(0);
  });

  it('spawned processes are driven by the test: scripts, IPC, kill', async () => {
    const fake = new FakeHost({ netns: ['w'] });
    fake.onSpawn(['node'], (p) => p.on('sent', (m) => p.emitMessage({ echo: m })));
    await withHost(fake, async () => {
      const p = startProcess(['node', 'worker.js'], { netns: 'w', ipc: true });
      const got = new Promise((res) => p.once('message', res));
      expect(p.send({ hi: 1 })).toBe(true);
      expect(await got).toEqual({ echo: { hi: 1 } });
      expect(p.argv).toEqual(['nsenter', '--net=/run/netns/w', '--', 'node', 'worker.js']);
      expect((await run(['ip', 'netns', 'pids', 'w'])).unwrap().stdout).toBe(String(p.pid));
      p.kill('SIGTERM');
      expect(await p.exited).toEqual({ code: null, signal: 'SIGTERM' });
      const q = startProcess(['node', 'x.js'], { netns: 'missing' });
      expect((await q.exited).code).toBe(1);
    });
  });
});
