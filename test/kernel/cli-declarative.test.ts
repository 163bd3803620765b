/**
 * `netfence plan | apply | destroy FILE` against a lab namespace, run as the
 * CLI (tsx, argv): plan shows additions; apply makes them real and packets
 * prove it (a firewall rule drops a TCP connection, a limit shapes a TCP
 * stream, an XDP blocklist entry drops pings); plan then shows no change; an
 * edited file shows the change; destroy brings the traffic back. A
 * transaction that fails late (a limit whose tc qdisc the kernel refuses,
 * after the nft batch was committed) leaves the firewall tables as they
 * were. With --confirm the revert is armed outside the CLI: unconfirmed it
 * is reverted after the CLI exited, confirmed it stays.
 *
 * Depends on the kernel's capabilities: XDP (else the blocklist runs on the
 * nft fallback, also checked with packets) and the tc-htb backend (asserted
 * from the Throttler's backend report).
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/host/run.js';
import { Lab, type LabHost } from '../../src/lab/index.js';
import { iperf3 } from '../../src/throttle/measure.js';
import { Throttler } from '../../src/throttle/throttler.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
const RATE_MBIT = 5;

let lab: Lab;
let client: LabHost;
let server: LabHost;
let srvIf = '';
let dir = '';
const stops: (() => void)[] = [];

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await run([TSX, CLI, ...args], { timeoutMs: 180_000, what: 'netfence CLI' });
  if (r.ok) return { code: 0, stdout: r.val.stdout, stderr: r.val.stderr };
  return { code: r.val.failure.exitCode ?? -1, stdout: r.val.failure.stdout, stderr: r.val.failure.stderr };
}

function file(name: string, o: { port?: number; rate?: number; limit?: boolean; blocklist?: boolean; limitIface?: string; backend?: string } = {}): string {
  const path = join(dir, `${name}.yaml`);
  const lines = [
    'version: 1',
    'owner: cli-decl-test',
    'firewalls:',
    '  - table: dcl',
    '    chains:',
    '      input: { hook: input, priority: 0, policy: accept }',
    '    rules:',
    '      input:',
    `        - { id: block, protocol: tcp, dport: ${o.port ?? 8081}, action: drop }`,
  ];
  if (o.limit !== false) {
    lines.push('throttle:', '  name: dcl', '  limits:', `    - { iface: ${o.limitIface ?? srvIf}, direction: egress, rate: ${o.rate ?? RATE_MBIT}mbit${o.backend ? `, backend: ${o.backend}` : ''} }`);
  }
  if (o.blocklist !== false) lines.push('blocklists:', `  - { iface: ${srvIf}, name: dcl${process.pid}, entries: [198.18.1.10] }`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function pingFrom(src: string, count = 3): Promise<number> {
  const r = await run(['ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '1', '-I', src, '198.18.1.1'], { netns: client.netns, timeoutMs: 30_000 });
  const text = r.ok ? r.val.stdout : r.val.failure.stdout;
  const m = /(\d+) (?:packets )?received/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** The server's egress throughput to the client (bits/s): iperf3 in reverse. */
async function egressBps(): Promise<number> {
  const r = await iperf3({ serverNetns: server.netns, clientNetns: client.netns, addr: '198.18.1.1', reverse: true, seconds: 2, omit: 1 });
  if (r.err) throw r.val;
  return r.val.bps;
}

/** The firewall table as nft text without handles and counter values (what a restore must bring back). */
async function tableText(): Promise<string> {
  const r = await run(['nft', 'list', 'table', 'inet', 'dcl'], { netns: server.netns });
  const t = r.ok ? r.val.stdout : `absent: ${r.val.failure.stderr}`;
  return t.replace(/packets \d+ bytes \d+/g, '');
}

beforeAll(async () => {
  lab = await Lab.create('clidecl');
  client = await lab.host('client');
  server = await lab.host('server');
  const l = await lab.link({ host: client, addrs: ['198.18.1.2/24', '198.18.1.10/24'] }, { host: server, addrs: ['198.18.1.1/24'] });
  srvIf = l.b;
  for (const p of [8080, 8081, 8082]) stops.push((await lab.serve(server, 'tcp', p)).stop);
  dir = mkdtempSync(join(tmpdir(), 'netfence-decl-'));
}, 120_000);

afterAll(async () => {
  for (const s of stops) s();
  for (const f of ['v1', 'v2', 'late-ok', 'late-bad', 'confirm']) await cli('destroy', join(dir, `${f}.yaml`), '--netns', server.netns).catch(() => undefined);
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 300_000);

describe('netfence plan / apply / destroy FILE', () => {
  it('plan shows additions; apply makes them real (packets); plan then shows none; an edit shows the change; destroy restores the traffic', async () => {
    const baseline = await egressBps();
    expect(baseline).toBeGreaterThan(RATE_MBIT * 1e6 * 4);
    expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081)).result).toBe('open');
    expect(await pingFrom('198.18.1.10')).toBe(3);

    const v1 = file('v1');
    const p = await cli('plan', v1, '--netns', server.netns);
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    expect(p.stdout).toContain('+ firewall inet dcl (new)');
    expect(p.stdout).toContain('+ rule input/block: meta l4proto tcp tcp dport 8081 counter drop');
    expect(p.stdout).toContain('+ limits dcl (new)');
    expect(p.stdout).toMatch(/\+ blocklist dcl\d+ \(new\)/);
    expect(p.stdout).toContain('+ entries: 198.18.1.10');
    expect(p.stdout).toContain('Plan: 3 to add, 0 to change, 0 to remove.');
    expect((await cli('plan', v1, '--netns', server.netns, '--exit-code')).code).toBe(4);
    const pj = await cli('plan', v1, '--netns', server.netns, '--json');
    expect((JSON.parse(pj.stdout) as { changes: number }).changes).toBe(3);
    // plan changed nothing
    expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081)).result).toBe('open');

    const a = await cli('apply', v1, '--netns', server.netns);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(a.stdout).toContain('Applied in one transaction');
    expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081, { timeoutMs: 1200 })).result).toBe('timeout');
    expect((await lab.probe(client, 'tcp', '198.18.1.1', 8080)).result).toBe('open');
    expect(await pingFrom('198.18.1.10')).toBe(0);
    expect(await pingFrom('198.18.1.2')).toBe(3);
    const shaped = await egressBps();
    expect(shaped).toBeLessThan(RATE_MBIT * 1e6 * 1.5);
    expect(shaped).toBeGreaterThan(RATE_MBIT * 1e6 * 0.5);

    const same = await cli('plan', v1, '--netns', server.netns, '--exit-code');
    expect(same.code).toBe(0);
    expect(same.stdout).toContain('No changes: the kernel matches the file.');

    const v2 = file('v2', { port: 8082, rate: RATE_MBIT * 2 });
    const p2 = await cli('plan', v2, '--netns', server.netns);
    expect(p2.code).toBe(0);
    expect(p2.stdout).toContain('~ rule input/block:');
    expect(p2.stdout).toContain('- meta l4proto tcp tcp dport 8081 counter drop');
    expect(p2.stdout).toContain('+ meta l4proto tcp tcp dport 8082 counter drop');
    expect(p2.stdout).toContain(`rate ${RATE_MBIT}mbit -> ${RATE_MBIT * 2}mbit`);
    expect(p2.stdout).toMatch(/= blocklist dcl\d+ \(no changes\)/);
    expect(p2.stdout).toContain('Plan: 0 to add, 2 to change, 0 to remove.');
    expect((await cli('apply', v2, '--netns', server.netns)).code).toBe(0);
    expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081)).result).toBe('open');
    expect((await lab.probe(client, 'tcp', '198.18.1.1', 8082, { timeoutMs: 1200 })).result).toBe('timeout');
    expect((await cli('plan', v2, '--netns', server.netns)).stdout).toContain('No changes');

    const d = await cli('destroy', v2, '--netns', server.netns);
    expect(d.code).toBe(0);
    expect(d.stdout).toContain('- firewall inet dcl removed');
    expect((await lab.probe(client, 'tcp', '198.18.1.1', 8082)).result).toBe('open');
    expect(await pingFrom('198.18.1.10')).toBe(3);
    expect(await egressBps()).toBeGreaterThan(RATE_MBIT * 1e6 * 4);
    expect(await tableText()).toMatch(/^absent/);
    const after = await cli('plan', v2, '--netns', server.netns);
    expect(after.stdout).toContain('Plan: 3 to add');
  }, 600_000);

  it('a transaction that fails late (the kernel refuses a limit\'s qdisc after the nft batch) leaves the firewall as it was', async () => {
    const backends = await new Throttler({ netns: server.netns }).listBackends();
    const htb = backends.find((b) => b.name === 'tc-htb');
    expect(htb?.available, `tc-htb: ${htb?.reason}`).toBe(true);
    const ok = file('late-ok', { limit: false, blocklist: false });
    expect((await cli('apply', ok, '--netns', server.netns)).code).toBe(0);
    const before = await tableText();
    expect(before).toContain('tcp dport 8081');
    // A foreign root qdisc on the server's interface (an htb of somebody else's): the limit's
    // `tc qdisc add ... root` fails, a step that runs after the nft batch was committed.
    await lab.sh(server, ['tc', 'qdisc', 'add', 'dev', srvIf, 'root', 'handle', '1:', 'htb', 'default', '0']);
    try {
      const bad = file('late-bad', { port: 8082, backend: 'tc-htb', blocklist: false });
      const r = await cli('apply', bad, '--netns', server.netns);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('previous state was restored');
      expect(await tableText()).toBe(before);
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081, { timeoutMs: 1200 })).result).toBe('timeout');
      expect((await lab.probe(client, 'tcp', '198.18.1.1', 8082)).result).toBe('open');
      const q = await lab.sh(server, ['tc', 'qdisc', 'show', 'dev', srvIf]);
      expect(q.stdout).toMatch(/qdisc htb 1: root/);
      const classes = await lab.sh(server, ['tc', 'class', 'show', 'dev', srvIf]);
      expect(classes.stdout.trim()).toBe(''); // nothing of the failed limit left
      expect((await cli('plan', ok, '--netns', server.netns)).stdout).toContain('No changes');
    } finally {
      await lab.sh(server, ['tc', 'qdisc', 'del', 'dev', srvIf, 'root']);
      expect((await cli('destroy', ok, '--netns', server.netns)).code).toBe(0);
    }
  }, 300_000);

  it('--confirm: not confirmed, the watchdog reverts it after the CLI exited; confirmed, it stays', async () => {
    const f = file('confirm', { limit: false, blocklist: false });
    const a = await cli('apply', f, '--netns', server.netns, '--confirm', '8', '--json');
    expect(a.code).toBe(0);
    const info = (JSON.parse(a.stdout) as { confirm: { id: string; deadline: string; watchdogPid: number } }).confirm;
    expect(info.watchdogPid).toBeGreaterThan(0);
    // the CLI has exited (run() returned); the rule is in force until the deadline
    expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081, { timeoutMs: 1200 })).result).toBe('timeout');
    const deadline = Date.parse(info.deadline);
    // wait until deadline + 1 s, then the plan must be gone
    await new Promise((r) => setTimeout(r, Math.max(0, deadline + 1000 - Date.now())));
    expect(await tableText()).toMatch(/^absent/);
    expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081)).result).toBe('open');
    expect((await cli('plan', f, '--netns', server.netns)).stdout).toContain('+ firewall inet dcl (new)');

    const b = await cli('apply', f, '--netns', server.netns, '--confirm', '20', '--json');
    expect(b.code).toBe(0);
    const id = (JSON.parse(b.stdout) as { confirm: { id: string; deadline: string } }).confirm;
    const c = await cli('confirm', id.id);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(id.deadline) + 1000 - Date.now())));
    expect((await lab.probe(client, 'tcp', '198.18.1.1', 8081, { timeoutMs: 1200 })).result).toBe('timeout');
    expect((await cli('plan', f, '--netns', server.netns)).stdout).toContain('No changes');
    expect((await cli('destroy', f, '--netns', server.netns)).code).toBe(0);
  }, 300_000);
});
