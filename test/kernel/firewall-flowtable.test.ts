/**
 * The Firewall's forwarding fast path (nft flowtable) with real packets:
 * client (198.18.1.2) -- router (eth0 | eth1) -- server (198.18.2.2).
 * Every expectation derives from the capability report of the router's
 * namespace: where the kernel has flowtables, established flows leave the
 * forward chain after their first packets; where it has none, `required`
 * is refused before anything is applied and `auto` forwards everything
 * through the normal path with the decision in the plan.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectCapabilities, type CapabilityReport } from '../../src/capabilities/index.js';
import { UnsupportedError } from '../../src/errors.js';
import { Firewall } from '../../src/firewall/firewall.js';
import { nftApply, nftList } from '../../src/host/nft.js';
import { wrapNetns } from '../../src/host/run.js';
import { Lab, type LabHost } from '../../src/lab/index.js';

const CLIENT = '198.18.1.2';
const SERVER = '198.18.2.2';
const BULK = 5001;
const CLOSED = 5002;
const ECHO = 5003;
const BYTES = 4_000_000;

async function topo(lab: Lab): Promise<{ client: LabHost; router: LabHost; server: LabHost; devices: string[] }> {
  const client = await lab.host('client');
  const router = await lab.host('router');
  const server = await lab.host('server');
  const a = await lab.link({ host: client, addrs: [`${CLIENT}/24`] }, { host: router, addrs: ['198.18.1.1/24'] });
  const b = await lab.link({ host: router, addrs: ['198.18.2.1/24'] }, { host: server, addrs: [`${SERVER}/24`] });
  await lab.forwarding(router);
  await lab.route(client, 'default', '198.18.1.1');
  await lab.route(server, 'default', '198.18.2.1');
  // Packet counts should mean packets: TCP sends at most two segments per skb
  // instead of 64 KB GSO bursts (both sides of the comparison count skbs).
  await lab.sh(server, ['ip', 'link', 'set', 'dev', b.b, 'gso_max_size', '1500']);
  await lab.sh(client, ['ip', 'link', 'set', 'dev', a.a, 'gso_max_size', '1500']);
  return { client, router, server, devices: [a.b, b.a] };
}

/** The router's firewall: drop by default, a blocklist before the established rule, two services. */
function routerFirewall(netns: string, devices: string[], mode: 'auto' | 'required', blocked: string[] = []): Firewall {
  return new Firewall({ table: 'nf_fast', family: 'inet', netns })
    .set('blocked', { type: 'ipv4_addr', elements: blocked })
    .chain('forward', { hook: 'forward', priority: 0, policy: 'drop' })
    .rule('forward', { id: 'blocked', saddr: '@blocked', action: 'drop' })
    .rule('forward', { id: 'est', ctState: ['established', 'related'], action: 'accept' })
    .rule('forward', { id: 'bulk', protocol: 'tcp', dport: BULK, ctState: ['new'], action: 'accept' })
    .rule('forward', { id: 'echo', protocol: 'tcp', dport: ECHO, ctState: ['new'], action: 'accept' })
    .fastPath({ devices, mode });
}

async function counter(fw: Firewall, id: string): Promise<number> {
  const st = await fw.status();
  if (st.err) throw st.val;
  const r = st.val.rules[id];
  if (!r) throw new Error(`no counter for rule ${id}`);
  return r.packets;
}

/** Fetch the server's `%bytes` reply and check every byte. */
async function fetchBulk(lab: Lab, client: LabHost): Promise<{ bytes: number; intact: boolean }> {
  const code = `const s=require('net').connect({host:${JSON.stringify(SERVER)},port:${BULK}});let n=0,bad=0;s.on('data',d=>{n+=d.length;for(const c of d)if(c!==120)bad++});s.on('end',()=>{console.log(JSON.stringify({bytes:n,intact:bad===0}));process.exit(0)});s.on('error',e=>{console.log(JSON.stringify({bytes:n,intact:false,error:String(e.code)}));process.exit(0)});setTimeout(()=>{console.log(JSON.stringify({bytes:n,intact:false,error:'timeout'}));process.exit(0)},170000);`;
  const out = await lab.sh(client, [process.execPath, '-e', code], { timeoutMs: 180_000 });
  return JSON.parse(out.stdout.trim()) as { bytes: number; intact: boolean };
}

/**
 * One long-lived TCP connection from `h` to the lab echo server. `round(tag)`
 * sends a line and waits (bounded) for it to come back: `echo` or `timeout`.
 */
async function echoSession(h: LabHost, addr: string, port: number): Promise<{ round: (tag: string, timeoutMs?: number) => Promise<'echo' | 'timeout'>; close: () => void }> {
  const code = `const s=require('net').connect({host:${JSON.stringify(addr)},port:${port}},()=>console.log('connected'));s.setNoDelay(true);s.on('data',d=>process.stdout.write(d));s.on('error',e=>{console.log('error '+e.code);process.exit(1)});require('readline').createInterface({input:process.stdin}).on('line',l=>s.write(l+'\\n'));`;
  const [file, ...args] = wrapNetns([process.execPath, '-e', code], h.netns) as [string, ...string[]];
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let seen = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (b: Buffer) => {
    seen += b.toString();
    for (const w of [...waiters]) w();
  });
  const waitFor = (text: string, ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (seen.includes(text)) done(true);
      };
      const done = (v: boolean): void => {
        clearTimeout(timer);
        waiters.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => done(false), ms);
      waiters.add(check);
      check();
    });
  if (!(await waitFor('connected', 10_000))) {
    child.kill('SIGKILL');
    throw new Error(`echo client could not connect to ${addr}:${port}: ${seen}`);
  }
  return {
    round: async (tag, timeoutMs = 10_000) => {
      child.stdin.write(`${tag}\n`);
      return (await waitFor(`${tag}\n`, timeoutMs)) ? 'echo' : 'timeout';
    },
    close: () => child.kill('SIGKILL'),
  };
}

describe('Firewall fast path (flowtable) through a router', () => {
  // One lab for the file (torn down in afterAll, and by the lab's exit hooks):
  // one capability report of the router's namespace, which apply() reuses.
  let lab: Lab;
  let client: LabHost;
  let router: LabHost;
  let server: LabHost;
  let devices: string[];
  let caps: CapabilityReport;
  let has: boolean;
  beforeAll(async () => {
    lab = await Lab.create('fastpath');
    ({ client, router, server, devices } = await topo(lab));
    caps = await detectCapabilities({ netns: router.netns });
    has = caps.nft.features.flowtable.available;
    await lab.serve(server, 'tcp', BULK, `%bytes:${BYTES}`);
    await lab.serve(server, 'tcp', CLOSED);
    await lab.serve(server, 'tcp', ECHO, '%echo');
  }, 600_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it("mode 'required': applied with a flowtable where the kernel has one; otherwise an UnsupportedError and nothing applied", async () => {
    const fw = routerFirewall(router.netns, devices, 'required');
    const r = await fw.apply();
    const tables = async (): Promise<string> => JSON.stringify((await nftList(['tables'], { netns: router.netns })).val);
    if (has) {
      expect(r.err ? r.val.message : 'ok').toBe('ok');
      expect(r.ok && r.val.plan.decisions).toEqual([{ subject: 'fastPath', chosen: 'flowtable', reason: expect.stringContaining('is available') }]);
      const ft = await nftList(['flowtables'], { netns: router.netns });
      expect(JSON.stringify(ft.val)).toContain('"name":"fastpath"');
      // the firewall filters: a port without an accept rule stays closed
      expect((await lab.probe(client, 'tcp', SERVER, CLOSED, { timeoutMs: 1200 })).result).toBe('timeout');
      expect((await fw.destroy()).ok).toBe(true);
    } else {
      expect(r.err).toBe(true);
      expect(r.err && r.val).toBeInstanceOf(UnsupportedError);
      expect(r.err && (r.val as UnsupportedError).capability).toBe('nft.features.flowtable');
      expect(r.err && r.val.message).toContain(caps.nft.features.flowtable.reason as string);
      // nothing was applied: no table, and the port the firewall would close is open
      expect(await tables()).not.toContain('nf_fast');
      expect((await lab.probe(client, 'tcp', SERVER, CLOSED)).result).toBe('open');
    }
    expect(await tables()).not.toContain('nf_fast');
  });

  it("mode 'auto': a 4 MB transfer arrives intact; the forward chain sees only its first packets where flows are offloaded, all of them otherwise; blocked stays blocked", async () => {
    // The server counts what it sends: the transfer's packet count, independent of the router.
    const tx = new Firewall({ table: 'nf_tx', netns: server.netns }).chain('out', { hook: 'output', priority: 0 }).rule('out', { id: 'tx', protocol: 'tcp', sport: BULK });
    expect((await tx.apply()).ok).toBe(true);
    const fw = routerFirewall(router.netns, devices, 'auto');
    const r = await fw.apply();
    expect(r.err ? r.val.message : 'ok').toBe('ok');
    const decision = r.ok ? r.val.plan.decisions.find((d) => d.subject === 'fastPath') : undefined;
    expect(decision?.chosen).toBe(has ? 'flowtable' : 'none');
    if (!has) expect(decision?.reason).toContain(caps.nft.features.flowtable.reason as string);

    const got = await fetchBulk(lab, client);
    expect(got).toEqual({ bytes: BYTES, intact: true });
    const sent = await counter(tx, 'tx');
    const est = await counter(fw, 'est');
    const status = await fw.status();
    const offloadRule = status.ok ? status.val.rules['fastpath:offload'] : undefined;
    console.log(`[fastpath] kernel ${caps.kernel.release}: flowtable ${has ? 'yes' : 'no'}; server sent ${sent} packets, forward chain 'est' counted ${est}, offload rule ${offloadRule?.packets ?? '-'}`);
    expect(sent).toBeGreaterThan(1000);
    if (has) {
      // handshake, the packet that offloads, FIN/RST teardown: a handful, not the transfer
      expect(est).toBeLessThan(sent / 20);
      expect(offloadRule?.packets ?? 0).toBeGreaterThan(0);
      expect(offloadRule?.packets ?? Infinity).toBeLessThan(sent / 20);
    } else {
      // every packet of the server's side crosses the forward chain
      expect(est).toBeGreaterThanOrEqual(sent - 2);
      expect(offloadRule).toBeUndefined();
    }
    // blocked traffic stays blocked, with or without a fast path
    expect((await lab.probe(client, 'tcp', SERVER, CLOSED, { timeoutMs: 1200 })).result).toBe('timeout');
    expect((await fw.destroy()).ok).toBe(true);
    expect((await tx.destroy()).ok).toBe(true);
  });

  it('a rule change stops an established flow the new rules forbid, offloaded or not (live element add, re-apply)', async () => {
    const fw = routerFirewall(router.netns, devices, 'auto');
    expect((await fw.apply()).ok).toBe(true);
    const s = await echoSession(client, SERVER, ECHO);
    try {
      expect(await s.round('r0')).toBe('echo');
      // 20 round trips on the established flow: at least 40 forwarded packets
      const before = await counter(fw, 'est');
      for (let i = 1; i <= 20; i++) expect(await s.round(`r${i}`)).toBe('echo');
      const delta = (await counter(fw, 'est')) - before;
      console.log(`[fastpath] 20 echo rounds: forward chain 'est' counted ${delta} packets (flowtable ${has ? 'yes' : 'no'})`);
      if (has) expect(delta).toBeLessThan(10);
      else expect(delta).toBeGreaterThanOrEqual(40);

      // Control: a blocklist entry added behind netfence's back (no flush).
      // An offloaded flow never meets the forward chain again and keeps
      // going; on the normal path it stops at once.
      const raw = await nftApply([{ add: { element: { family: 'inet', table: 'nf_fast', name: 'blocked', elem: [CLIENT] } } }], { netns: router.netns });
      expect(raw.ok).toBe(true);
      expect(await s.round('raw', has ? 10_000 : 2000)).toBe(has ? 'echo' : 'timeout');

      // The same entry through the Firewall: the transaction flushes offloaded flows.
      expect((await fw.addElements('blocked', [CLIENT])).ok).toBe(true);
      expect(await s.round('blocked-live', 2000)).toBe('timeout');
      expect((await fw.deleteElements('blocked', [CLIENT])).ok).toBe(true);
      expect(await s.round('unblocked-live', 20_000)).toBe('echo');

      // A whole re-apply with the client blocked: the table (and its flowtable) is replaced.
      const blockedVersion = routerFirewall(router.netns, devices, 'auto', [CLIENT]);
      expect((await blockedVersion.apply()).ok).toBe(true);
      expect(await s.round('blocked-apply', 2000)).toBe('timeout');
      const open = routerFirewall(router.netns, devices, 'auto');
      expect((await open.apply()).ok).toBe(true);
      expect(await s.round('unblocked-apply', 20_000)).toBe('echo');
      expect((await open.destroy()).ok).toBe(true);
    } finally {
      s.close();
    }
  });
});
