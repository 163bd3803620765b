/**
 * The `netfence` command against real state in lab namespaces, run as a
 * separate process (`npx tsx src/cli/main.ts …`, argv arrays): bulk loads of
 * an attached XdpBlocklist from a file (proved with pings from the listed
 * peer), all-or-nothing validation of the file, every command's --json, and
 * the exit codes. The backend expected for the blocklist derives from the
 * capability report of the namespace (XDP, else the nftables fallback); the
 * nft backend is driven too, forced, so both paths are proved on every kernel.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectCapabilities, type CapabilityReport } from '../../src/capabilities/index.js';
import { run } from '../../src/host/run.js';
import { XdpBlocklist } from '../../src/index.js';
import { Lab, type LabHost } from '../../src/lab/index.js';

const PEER = '198.18.2.2'; // a's address: listed
const OTHER = '198.18.2.40'; // a's second address: never listed
const B4 = '198.18.2.1';

let lab: Lab;
let a: LabHost;
let b: LabHost;
let ifB = '';
let caps: CapabilityReport;
let dir = '';
const names: string[] = [];

interface Cli {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI as its own process; resolves with its exit code and output (never throws on a non-zero exit). */
async function cli(args: string[], timeoutMs = 300_000): Promise<Cli> {
  const r = await run(['npx', 'tsx', 'src/cli/main.ts', ...args], { timeoutMs, what: `netfence ${args.slice(0, 2).join(' ')}` });
  if (r.ok) return { code: 0, stdout: r.val.stdout, stderr: r.val.stderr };
  const f = r.val.failure;
  return { code: f.exitCode ?? -1, stdout: f.stdout, stderr: f.stderr };
}

/** Ping B from `src` (an address of host a); returns replies received. */
async function pingFrom(src: string, count: number): Promise<number> {
  const r = await run(['ping', '-n', '-q', '-c', String(count), '-i', '0.05', '-W', '1', '-I', src, B4], { netns: a.netns, timeoutMs: 30_000 });
  const text = r.ok ? r.val.stdout : r.val.failure.stdout;
  const m = /(\d+) (?:packets )?received/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** `count` distinct addresses of 198.19.0.0/16 (none of them the lab's), one per line. */
function filler(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`198.19.${(i >> 8) & 255}.${i & 255}`);
  return out;
}

function name(): string {
  const n = `cli${process.pid}_${names.length}`;
  names.push(n);
  return n;
}

/** What XdpBlocklist.apply() with backend auto must choose in this namespace, from the capability report. */
function expectedBackend(): 'xdp' | 'nft' {
  const x = caps.xdp;
  return x.bpffs.available && x.bpfSyscall.available && x.bpftool.available && x.mapHash.available && x.mapLpmTrie.available && (x.native.available || x.generic.available) ? 'xdp' : 'nft';
}

beforeAll(async () => {
  lab = await Lab.create('cli');
  a = await lab.host('a');
  b = await lab.host('b');
  const l = await lab.link({ host: a, addrs: [`${PEER}/24`, 'fd00:2::2/64'] }, { host: b, addrs: [`${B4}/24`, 'fd00:2::1/64'] });
  ifB = l.b;
  await lab.addr(a, l.a, `${OTHER}/24`);
  // static neighbours: no ARP from a listed source muddies the verdicts
  const mac = async (h: LabHost, i: string) => (JSON.parse((await lab.sh(h, ['ip', '-j', 'link', 'show', 'dev', i])).stdout) as { address: string }[])[0]!.address;
  const macA = await mac(a, l.a);
  const macB = await mac(b, l.b);
  await lab.sh(a, ['ip', 'neigh', 'replace', B4, 'lladdr', macB, 'dev', l.a, 'nud', 'permanent']);
  for (const s of [PEER, OTHER]) await lab.sh(b, ['ip', 'neigh', 'replace', s, 'lladdr', macA, 'dev', l.b, 'nud', 'permanent']);
  caps = await detectCapabilities({ netns: b.netns });
  dir = mkdtempSync(join(tmpdir(), 'netfence-cli-'));
});

afterAll(async () => {
  for (const n of names) {
    await new XdpBlocklist({ iface: ifB || 'lo', netns: b?.netns, name: n }).destroy();
    const pins = join('/sys/fs/bpf/netfence', n);
    if (existsSync(pins)) rmSync(pins, { recursive: true, force: true });
  }
  if (existsSync('/sys/fs/bpf/netfence') && readdirSync('/sys/fs/bpf/netfence').length === 0) rmSync('/sys/fs/bpf/netfence', { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
  await lab?.destroy();
});

/** The file load, list, remove, bad-file and detach cycle on one attached blocklist. */
async function bulkCycle(bl: XdpBlocklist, backend: 'xdp' | 'nft', count: number, extra: string[] = []): Promise<void> {
  const ns = ['--name', bl.name, '--netns', b.netns, ...extra];
  expect(await pingFrom(PEER, 3)).toBe(3);
  const list = filler(count);
  const file = join(dir, `${bl.name}.txt`);
  writeFileSync(file, `# blocklist for the CLI test\n${list.slice(0, 10).join('\n')}\n\n${PEER}   # the lab peer\n${list.slice(10).join('\n')}\n`);

  const add = await cli(['xdp', 'add', '--file', file, ...ns]);
  expect(add.code, add.stderr).toBe(0);
  expect(add.stdout).toContain(`added ${count + 1} of ${count + 1} entries to blocklist ${bl.name} (${backend} on ${ifB} in netns ${b.netns})`);
  // not a terminal: plain progress lines on stderr, the last one at 100% (a bar only on a TTY)
  expect(add.stderr).not.toContain('\r');
  expect(add.stderr).toMatch(new RegExp(`adding ${count + 1} entries \\(${bl.name}, ${backend}\\): ${count + 1} added in`));
  if (backend === 'xdp') expect(add.stderr).toContain(`: ${count + 1}/${count + 1} (100%)`);

  // real packets: the peer is dropped, another source of the same host passes
  expect(await pingFrom(PEER, 5)).toBe(0);
  expect(await pingFrom(OTHER, 3)).toBe(3);

  const ls = await cli(['xdp', 'list', '--json', ...ns]);
  expect(ls.code, ls.stderr).toBe(0);
  const j = JSON.parse(ls.stdout) as { name: string; netns: string; iface: string; backend: string; stats: { entries: number; dropped: { packets: number } }; entries: { entry: string; hits: number }[] };
  expect(j).toMatchObject({ name: bl.name, netns: b.netns, iface: ifB, backend, stats: { backend, ...(bl.mode ? { mode: bl.mode } : {}) } });
  expect(j.entries).toHaveLength(count + 1);
  expect(j.stats.entries).toBe(count + 1);
  expect(j.entries.find((e) => e.entry === PEER)?.hits).toBe(5);
  expect(j.stats.dropped.packets).toBeGreaterThanOrEqual(5);
  expect(new Set(j.entries.map((e) => e.entry))).toEqual(new Set([...list, PEER]));

  // the table for people names the peer first (most hits)
  const lt = await cli(['xdp', 'list', '--limit', '3', ...ns]);
  expect(lt.code, lt.stderr).toBe(0);
  expect(lt.stdout).toMatch(new RegExp(`^${PEER.replace(/\./g, '\\.')}\\s+5\\s+never$`, 'm'));
  expect(lt.stdout).toContain(`… ${count + 1 - 3} more`);

  // a file with a bad line: exit 2, the line named, nothing added
  const bad = join(dir, `${bl.name}-bad.txt`);
  writeFileSync(bad, `${OTHER}\n198.19.250.1\n# fine so far\n198.19.251.0/23\n`);
  const br = await cli(['xdp', 'add', '--file', bad, ...ns]);
  expect(br.code).toBe(2);
  expect(br.stderr).toContain(`${bad}:4: '198.19.251.0/23'`);
  expect(br.stderr).toContain('did you mean 198.19.250.0/23?');
  expect(br.stderr).toContain('Nothing was changed');
  expect(await pingFrom(OTHER, 3)).toBe(3); // OTHER (line 1) was not added
  const after = JSON.parse((await cli(['xdp', 'list', '--json', ...ns])).stdout) as { entries: unknown[] };
  expect(after.entries).toHaveLength(count + 1);

  // remove re-admits the peer
  const rm = await cli(['xdp', 'remove', PEER, '--json', ...ns]);
  expect(rm.code, rm.stderr).toBe(0);
  expect(JSON.parse(rm.stdout)).toMatchObject({ name: bl.name, backend, removed: 1, entries: 1 });
  expect(await pingFrom(PEER, 3)).toBe(3);

  // remove the whole file again: the list is empty
  const rf = await cli(['xdp', 'remove', '--file', file, '--quiet', ...ns]);
  expect(rf.code, rf.stderr).toBe(0);
  expect(rf.stderr).not.toContain('removing');
  const empty = JSON.parse((await cli(['xdp', 'list', '--json', ...ns])).stdout) as { entries: unknown[] };
  expect(empty.entries).toHaveLength(0);
}

describe('netfence xdp', () => {
  it('add --file loads an attached blocklist (backend from the capability report): the peer is dropped, list shows it, remove re-admits it, a bad line adds nothing', async () => {
    const bl = new XdpBlocklist({ iface: ifB, netns: b.netns, name: name(), maxEntries: 16_384 });
    try {
      const at = (await bl.apply()).unwrap();
      expect(at.backend).toBe(expectedBackend());
      // the CLI process opens the blocklist by name; the interface is read from the kernel
      await bulkCycle(bl, at.backend, 10_000);
      // detach through the CLI: the interface filters nothing again
      const re = (await bl.add([PEER])).unwrap();
      expect(re.added).toBe(1);
      expect(await pingFrom(PEER, 3)).toBe(0);
      const d = await cli(['xdp', 'detach', '--name', bl.name, '--netns', b.netns, '--json']);
      expect(d.code, d.stderr).toBe(0);
      expect(JSON.parse(d.stdout)).toMatchObject({ name: bl.name, detached: true });
      expect(await pingFrom(PEER, 3)).toBe(3);
      const gone = await cli(['xdp', 'list', '--name', bl.name, '--netns', b.netns]);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toContain(`blocklist ${bl.name} is not attached in network namespace ${b.netns}`);
    } finally {
      await bl.destroy();
      bl.close();
    }
  });

  it('the nftables fallback backend is loaded the same way', async () => {
    const bl = new XdpBlocklist({ iface: ifB, netns: b.netns, name: name(), backend: 'nft' });
    try {
      const at = (await bl.apply()).unwrap();
      expect(at.backend).toBe('nft');
      // nft before 1.0.7 does not list a netdev chain's device in JSON: the interface is given here
      await bulkCycle(bl, 'nft', 2_000, ['--iface', ifB]);
    } finally {
      await bl.destroy();
    }
  });

  it('xdp attach / detach through the CLI, found again by interface', async () => {
    const n = name();
    const at = await cli(['xdp', 'attach', '--iface', ifB, '--netns', b.netns, '--name', n, '--json']);
    expect(at.code, at.stderr).toBe(0);
    expect(JSON.parse(at.stdout)).toMatchObject({ name: n, iface: ifB, backend: expectedBackend() });
    const add = await cli(['xdp', 'add', PEER, '--iface', ifB, '--name', n, '--netns', b.netns]);
    expect(add.code, add.stderr).toBe(0);
    expect(await pingFrom(PEER, 3)).toBe(0);
    const d = await cli(['xdp', 'detach', '--iface', ifB, '--name', n, '--netns', b.netns]);
    expect(d.code, d.stderr).toBe(0);
    expect(await pingFrom(PEER, 3)).toBe(3);
  });
});

describe('every command', () => {
  it('--json prints one parseable document on stdout', async () => {
    const pcap = join(dir, 'empty.pcap');
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(65535, 16);
    h.writeUInt32LE(1, 20);
    writeFileSync(pcap, h);
    const cases: [string[], (j: Record<string, unknown>) => void][] = [
      [['capabilities', '--json', '--netns', b.netns], (j) => expect(j.schemaVersion).toBe(1)],
      [['throttle', 'backends', '--json', '--netns', b.netns], (j) => expect(Array.isArray(j.backends)).toBe(true)],
      [['reconcile', '--dry-run', '--json', '--netns', b.netns], (j) => expect(j.dryRun).toBe(true)],
      [['dpi', 'classify', pcap, '--json'], (j) => expect(j.flows).toEqual([])],
      [['--version', '--json'], (j) => expect(j.name).toBe('netfence')],
      [['--help', '--json'], (j) => expect((j.commands as { command: string }[]).map((c) => c.command)).toContain('xdp add')],
    ];
    for (const [args, check] of cases) {
      const r = await cli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      check(JSON.parse(r.stdout) as Record<string, unknown>);
    }
  });

  it('exit 2 for an unknown option, an unknown command or an unknown --netns, with what to do', async () => {
    for (const args of [
      ['capabilities', '--bogus'],
      ['throttle', 'backends', '--bogus'],
      ['reconcile', '--bogus'],
      ['dpi', 'classify', '--bogus'],
      ['xdp', 'add', '--bogus'],
      ['xdp', 'list', '--bogus'],
      ['xdp', 'remove', '--bogus'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/unknown option '?--bogus/i);
      expect(r.stderr).toContain('Exit code');
    }
    const u = await cli(['frobnicate']);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain("unknown command 'frobnicate'");
    const missing = `nope${process.pid}`;
    for (const args of [['capabilities', '--netns', missing], ['throttle', 'backends', '--netns', missing], ['xdp', 'list', '--name', 'x', '--netns', missing]]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(`network namespace ${missing} does not exist`);
      expect(r.stderr).toContain('ip netns add');
    }
  });
});
