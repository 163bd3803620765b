/**
 * The Host seam (src/host/host.ts): which host a call reaches (withHost per
 * async call tree, setHost per process, else the real one), that the module
 * functions netfence calls dispatch through it, and the real host's process
 * starts (startProcess, held starts, IPC, runSync) with harmless `node -e`
 * children. No privileges, nothing of the machine's network is touched.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { BpfMapType, CMem, mapCreate, pinnedId } from '../../src/host/bpf.js';
import { hostFiles } from '../../src/host/files.js';
import { currentHost, realHost, setHost, withHost, type Host } from '../../src/host/host.js';
import { nftApply, nftList, nftListMany, type NftListing } from '../../src/host/nft.js';
import { run, runSync } from '../../src/host/run.js';
import { startProcess } from '../../src/host/spawn.js';
import { Ok } from '../../src/result.js';

/** A host that answers every run() with its own name and records what it saw. */
function stubHost(name: string): Host & { seen: string[][] } {
  const seen: string[][] = [];
  return {
    ...realHost,
    name,
    seen,
    run: async (argv) => {
      seen.push([...argv]);
      return Ok({ stdout: name, stderr: '', exitCode: 0 });
    },
    runSync: (argv) => {
      seen.push(['sync', ...argv]);
      return { stdout: name, stderr: '', exitCode: 0 };
    },
  };
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('which host a call reaches', () => {
  it('is the real host by default', () => {
    expect(currentHost()).toBe(realHost);
    expect(realHost.name).toBe('real');
  });

  it('withHost holds across awaits, and concurrent call trees keep their own host', async () => {
    const a = stubHost('a');
    const b = stubHost('b');
    const tree = (h: Host, delays: number[]) =>
      withHost(h, async () => {
        const outs: string[] = [];
        for (const d of delays) {
          await tick(d);
          const r = await run(['true']);
          outs.push(r.unwrap().stdout);
        }
        return outs;
      });
    const [ra, rb] = await Promise.all([tree(a, [5, 1, 7, 0]), tree(b, [0, 6, 2, 3])]);
    expect(ra).toEqual(['a', 'a', 'a', 'a']);
    expect(rb).toEqual(['b', 'b', 'b', 'b']);
    expect(a.seen).toHaveLength(4);
    expect(b.seen).toHaveLength(4);
    expect(currentHost()).toBe(realHost);
  });

  it('setHost sets the process-wide host; withHost wins inside its call tree; setHost(undefined) restores the real one', async () => {
    const p = stubHost('process');
    const s = stubHost('scoped');
    const prev = setHost(p);
    try {
      expect(prev).toBeUndefined();
      expect((await run(['x'])).unwrap().stdout).toBe('process');
      expect(await withHost(s, async () => (await run(['x'])).unwrap().stdout)).toBe('scoped');
      expect(runSync(['y']).stdout).toBe('process');
    } finally {
      expect(setHost(prev)).toBe(p);
    }
    expect(currentHost()).toBe(realHost);
  });

  it('argv and namespace names are checked before any host sees them', async () => {
    const h = stubHost('h');
    await withHost(h, async () => {
      await expect(run(['nft', 'a\0b'])).rejects.toBeInstanceOf(ValidationError);
      await expect(run(['ip', 'link'], { netns: '../x' })).rejects.toBeInstanceOf(ValidationError);
      expect(() => runSync([])).toThrow(ValidationError);
      expect(() => startProcess(['node', 'x\0'])).toThrow(ValidationError);
    });
    expect(h.seen).toEqual([]);
  });
});

describe('module functions dispatch through the current host', () => {
  it('nftApply / nftList / nftListMany reach host.nft with their arguments', async () => {
    const calls: unknown[][] = [];
    const h: Host = {
      ...realHost,
      name: 'nft-stub',
      nft: {
        apply: async (c, o) => (calls.push(['apply', c, o]), Ok(undefined)),
        list: async (t, o) => (calls.push(['list', t, o]), Ok<NftListing>({ nftables: [{ table: { family: 'inet', name: 't' } }] })),
        listMany: async (c, o) => (calls.push(['listMany', c, o]), Ok([])),
      },
    };
    await withHost(h, async () => {
      expect((await nftApply([{ add: { table: { family: 'inet', name: 't' } } }], { netns: 'n1', check: true })).ok).toBe(true);
      expect((await nftList(['table', 'inet', 't'])).unwrap().nftables).toHaveLength(1);
      expect((await nftListMany([{ list: { tables: null } }])).unwrap()).toEqual([]);
    });
    expect(calls.map((c) => c[0])).toEqual(['apply', 'list', 'listMany']);
    expect(calls[0]?.[2]).toMatchObject({ netns: 'n1', check: true });
  });

  it('the real host runs nft through run(), so a host that only answers run() sees the nft argv and the JSON on stdin', async () => {
    const seen: { argv: string[]; input: string | undefined }[] = [];
    const h: Host = { ...realHost, name: 'run-only', run: async (argv, o) => (seen.push({ argv: [...argv], input: o?.input }), Ok({ stdout: '', stderr: '', exitCode: 0 })) };
    const cmds = [{ add: { table: { family: 'inet', name: 'seam' } } }];
    await withHost(h, () => realHost.nft.apply(cmds, { check: true }));
    expect(seen).toEqual([{ argv: ['nft', '-c', '-j', '-f', '-'], input: JSON.stringify({ nftables: cmds }) }]);
  });

  it('bpf(2) wrappers and C memory come from host.bpf; files from host.files', () => {
    const created: unknown[] = [];
    const allocs: number[] = [];
    const h: Host = {
      ...realHost,
      name: 'bpf-stub',
      bpf: {
        ...realHost.bpf,
        alloc: (size) => {
          allocs.push(size);
          const buf = Buffer.alloc(size);
          return { size, buf, addr: 0x1000n, free: () => undefined };
        },
        mapCreate: (o) => (created.push(o), 42),
        objGet: () => 7,
        objId: (fd) => fd * 10,
        close: () => undefined,
      },
      files: { ...realHost.files, read: (p) => `read ${p}` },
    };
    withHost(h, () => {
      expect(mapCreate({ type: BpfMapType.HASH, keySize: 4, valueSize: 4, maxEntries: 1, name: 'm' })).toBe(42);
      const m = new CMem(24);
      expect(m.addr).toBe(0x1000n);
      expect(m.buf.length).toBe(24);
      expect(pinnedId('/sys/fs/bpf/whatever')).toBe(70);
      expect(hostFiles().read('/proc/x')).toBe('read /proc/x');
    });
    expect(created).toEqual([{ type: BpfMapType.HASH, keySize: 4, valueSize: 4, maxEntries: 1, name: 'm' }]);
    expect(allocs).toEqual([24]);
  });
});

describe('the real host starts processes (harmless node children)', () => {
  const node = process.execPath;

  it('startProcess: output, exit code, environment', async () => {
    const p = startProcess([node, '-e', 'process.stdout.write(process.env.NF_SEAM_T ?? "none"); process.exit(3)'], { env: { NF_SEAM_T: 'hello' } });
    expect(p.pid).toBeGreaterThan(0);
    let out = '';
    p.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    const e = await p.exited;
    expect(e).toEqual({ code: 3, signal: null });
    expect(out).toBe('hello');
    expect(p.alive).toBe(false);
    expect(p.kill()).toBe(false);
  });

  it('a program that cannot start settles `exited` with the error instead of throwing', async () => {
    const p = startProcess(['/nonexistent/netfence-seam-test']);
    const e = await p.exited;
    expect(e.error).toBeInstanceOf(Error);
    expect(e.code).toBeNull();
  });

  it('IPC: messages both ways with the advanced serialization', async () => {
    const p = startProcess([node, '-e', 'process.on("message", (m) => { process.send({ back: m.n * 2, buf: Buffer.from("ab") }); process.disconnect(); })'], { ipc: true });
    const reply = new Promise<unknown>((resolve) => p.once('message', resolve));
    expect(p.connected).toBe(true);
    expect(p.send({ n: 21 })).toBe(true);
    const m = (await reply) as { back: number; buf: Uint8Array };
    expect(m.back).toBe(42);
    expect(Buffer.from(m.buf).toString()).toBe('ab');
    expect((await p.exited).code).toBe(0);
  });

  it('a held process has its pid before its program runs, and runs it only on release()', async () => {
    const p = startProcess([node, '-e', 'process.stdout.write(String(process.ppid))'], { hold: true, timeoutMs: 30_000 });
    let out = '';
    p.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    expect(p.pid).toBeGreaterThan(0);
    expect(p.stdin).toBeNull();
    await tick(200);
    expect(out).toBe('');
    expect(p.alive).toBe(true);
    p.release();
    expect((await p.exited).code).toBe(0);
    // The program ran as the held launcher's child.
    expect(out).toBe(String(p.pid));
  });

  it('kill() ends a running child; runSync() returns output and exit status', async () => {
    const p = startProcess([node, '-e', 'setInterval(() => {}, 1000)']);
    expect(p.kill('SIGKILL')).toBe(true);
    expect(await p.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(runSync([node, '-e', 'process.stdout.write("s"); process.exit(4)'])).toEqual({ stdout: 's', stderr: '', exitCode: 4 });
    expect(runSync(['/nonexistent/netfence-seam-test']).exitCode).toBe(127);
  });
});
