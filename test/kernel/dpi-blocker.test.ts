/**
 * DpiBlocker end to end with real BitTorrent clients from Debian:
 * leecher (c, 198.18.1.2) — router (r, running DpiBlocker) — seeder (s, 198.18.2.2).
 * qBittorrent-nox (libtorrent) forced to TCP or to uTP by its BTProtocol
 * setting, encryption off; a tracker on each peer's loopback names the other
 * peer, so no tracker traffic crosses the router and what is stopped is the
 * peer protocol itself. The downloaded file is compared with the original
 * piece by piece. Ordinary HTTP, TLS, SSH and DNS cross the same queue.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DpiBlocker, type Detection } from '../../src/dpi/dpi-blocker.js';
import { openQueues } from '../../src/dpi/nfqueue/index.js';
import { run } from '../../src/host/run.js';
import { withLab, type Lab, type LabHost } from '../../src/lab/index.js';
import { XdpBlocklist } from '../../src/xdp/xdp-blocklist.js';
import { failNth, setFaultHook } from '../../src/plan/faults.js';
import { reconcile } from '../../src/plan/reconcile.js';
import { journalOf } from './crash-state.js';
import { ifaceWith, topo } from './nfqueue-lab.js';
import { makeTorrent, sleep, swarm } from './dpi-lab.js';
import { ordinaryTraffic, SERVERS, startServices } from './dpi-services.js';
import { timeScale } from '../lab/scale.js';

const CUSTOM = fileURLToPath(new URL('./dpi-custom-classifier.ts', import.meta.url));
const CRASH_CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const MiB = 1024 * 1024;

/** The info-hash of a single-file torrent made by mktorrent (the `info` dictionary is its last key). */
function infoHash(torrent: string): string {
  const b = readFileSync(torrent);
  const i = b.indexOf('4:info');
  return createHash('sha1')
    .update(b.subarray(i + 6, b.length - 1))
    .digest('hex');
}

/** The namespace's ruleset: the steering rules show up as the nft table or the iptables-nft chain, whichever the kernel allowed. */
async function chainRules(lab: Lab, r: LabHost): Promise<string> {
  const a = await lab.exec(r, ['nft', 'list', 'ruleset']);
  return a.ok ? a.val.stdout : '';
}
/** The steering rules of the default blocker, in either form. */
const STEERING = /chain NETFENCE-DPI|table inet netfence_dpi\b/;

async function started(b: DpiBlocker): Promise<void> {
  const s = await b.start();
  if (s.err) throw s.val;
}


describe('DpiBlocker with real BitTorrent clients', () => {
  it('TCP: the download does not complete, no piece reaches the leecher; the seeder goes to the XDP blocklist', async () => {
    await withLab('dpitcp', async (lab) => {
      const t = await topo(lab);
      const fx = await makeTorrent(4 * MiB);
      const seedSide = await ifaceWith(lab, t.r, '198.18.2.1');
      const bl = new XdpBlocklist({ iface: seedSide, netns: t.r.netns, name: 'dpitest' });
      const at = await bl.attach();
      if (at.err) throw at.val;
      const blocker = new DpiBlocker({ netns: t.r.netns, queues: [70, 2], blocklist: bl, blockTtl: 120 });
      const seen: Detection[] = [];
      blocker.on('detection', (d) => seen.push(d));
      try {
        await started(blocker);
        expect(await chainRules(lab, t.r)).toMatch(STEERING);
        const r = await swarm('qbt-tcp', t.c, t.s, fx, 12_000, 'tcp');
        expect(r.complete).toBe(false);
        expect(r.pieces).toBe(0);
        expect(r.bytes).toBe(0);
        await sleep(300);
        const st = (await blocker.stats()).unwrap();
        expect(st.detections).toBeGreaterThanOrEqual(1);
        expect(st.dropped).toBeGreaterThanOrEqual(1);
        const d = seen.find((x) => x.detection === 'handshake');
        expect(d, JSON.stringify(seen)).toBeDefined();
        expect(d!.flow.transport).toBe('tcp');
        expect([d!.flow.client.addr, d!.flow.server.addr].sort()).toEqual(['198.18.1.2', '198.18.2.2']);
        expect(d!.infoHash).toBe(infoHash(fx.torrent));
        expect(d!.action).toBe('dropped');
        // The responder went to the blocklist, with the TTL.
        expect(st.blocklisted).toBeGreaterThanOrEqual(1);
        const has = await bl.has(d!.flow.server.addr);
        expect(has.ok && has.val).toBe(true);
        console.log(`[dpi tcp] backend=${bl.backend} pieces ${r.pieces}/${r.total}, detections ${st.detections}, dropped ${st.dropped}: ${d!.reason} info-hash ${d!.infoHash}`);
      } finally {
        const s = await blocker.stop();
        await bl.detach();
        fx.cleanup();
        expect(s.ok).toBe(true);
      }
      expect(await chainRules(lab, t.r)).not.toMatch(STEERING);
    });
  });

  it('uTP: the download does not complete, no piece reaches the leecher', async () => {
    await withLab('dpiutp', async (lab) => {
      const t = await topo(lab);
      const fx = await makeTorrent(4 * MiB);
      const blocker = new DpiBlocker({ netns: t.r.netns, queues: [72, 1] });
      const it = blocker.detections();
      const all: Detection[] = [];
      blocker.on('detection', (d) => all.push(d));
      try {
        await started(blocker);
        const r = await swarm('qbt-utp', t.c, t.s, fx, 12_000, 'utp');
        expect(r.complete).toBe(false);
        expect(r.pieces).toBe(0);
        expect(r.bytes).toBe(0);
        const first = await Promise.race([it.next(), sleep(2000).then(() => undefined)]);
        expect(first?.done).toBe(false);
        const d = first!.value as Detection;
        expect(d.flow.transport).toBe('udp');
        expect(d.detection).toBe('utp');
        const st = (await blocker.stats()).unwrap();
        expect(st.detections).toBeGreaterThanOrEqual(1);
        // uTP only: every detected flow is UDP.
        expect(all.every((x) => x.flow.transport === 'udp')).toBe(true);
        console.log(`[dpi utp] pieces ${r.pieces}/${r.total}, detections ${st.detections}, dropped ${st.dropped}: ${d.reason}`);
      } finally {
        await blocker.stop();
        fx.cleanup();
      }
      // The iterator ends with stop().
      expect((await it.next()).done).toBe(true);
    });
  });

  it('monitor-only: the download completes and the detection is reported', async () => {
    await withLab('dpimon', async (lab) => {
      const t = await topo(lab);
      const fx = await makeTorrent(4 * MiB);
      const blocker = new DpiBlocker({ netns: t.r.netns, queues: [74, 1], monitorOnly: true });
      const seen: Detection[] = [];
      blocker.on('detection', (d) => seen.push(d));
      try {
        await started(blocker);
        const r = await swarm('qbt-tcp', t.c, t.s, fx, 20_000, 'mon');
        expect(r.complete).toBe(true);
        expect(r.pieces).toBe(r.total);
        await sleep(300);
        const st = (await blocker.stats()).unwrap();
        expect(st.detections).toBeGreaterThanOrEqual(1);
        expect(st.dropped).toBe(0);
        expect(seen.length).toBeGreaterThanOrEqual(1);
        expect(seen.every((d) => d.action === 'monitored' && d.blocked.length === 0)).toBe(true);
        expect(seen.some((d) => d.infoHash === infoHash(fx.torrent))).toBe(true);
        console.log(`[dpi monitor] complete in ${r.ms} ms, detections ${st.detections}: ${seen[0]!.reason}`);
      } finally {
        await blocker.stop();
        fx.cleanup();
      }
    });
  });
});

describe('DpiBlocker: ordinary traffic and fail-open/fail-closed', () => {
  it('HTTP, TLS, SSH and DNS through the same queue are unaffected', async () => {
    await withLab('dpiok', async (lab) => {
      const t = await topo(lab);
      const svc = await startServices(lab, t);
      const blocker = new DpiBlocker({ netns: t.r.netns, queues: [76, 2], failOpen: false });
      try {
        await started(blocker);
        const o = await ordinaryTraffic(t, svc);
        expect(o.http).toBe('hello over http');
        expect(o.http6).toBe('hello over http');
        expect(o.tls).toBe('hello over tls');
        expect(o.dns).toBe('198.18.9.9');
        expect(o.sshStandIn).toBe(true);
        if (svc.sshd) expect(o.ssh).toBe('hello-over-ssh');
        await sleep(400);
        const st = (await blocker.stats()).unwrap();
        expect(st.detections).toBe(0);
        expect(st.dropped).toBe(0);
        // Everything went through the queue (fail-closed: without a verdict nothing passes).
        const queued = st.queues.reduce((n, q) => n + (q.reader?.packets ?? 0), 0);
        expect(queued).toBeGreaterThan(20);
        expect(st.flowsSeen).toBeGreaterThanOrEqual(svc.sshd ? 6 : 5);
        console.log(`[dpi ordinary] ${JSON.stringify(o)} flows ${st.flowsSeen}, queued ${queued}, bypassed ${st.bypassed}, ssh: ${svc.sshd ? 'OpenSSH sshd' : 'stand-in only'}`);
      } finally {
        await blocker.stop();
        await Promise.all(svc.procs.map((p) => p.kill()));
        rmSync(svc.certDir, { recursive: true, force: true });
      }
    });
  });

  it('a short HTTP connection crosses userspace once where the readers get conntrack attributes (SYN left in the kernel), twice where not', async () => {
    await withLab('dpisyn', async (lab) => {
      const t = await topo(lab);
      const svc = await startServices(lab, t);
      // every connection inspected: what one connection costs (settled services would let most pass unqueued)
      const blocker = new DpiBlocker({ netns: t.r.netns, queues: [84, 1], failOpen: false, settleServices: false });
      try {
        await started(blocker);
        // 600 ms of connections (4x that under emulation, where 600 ms gave 20)
        const r = await run([process.execPath, SERVERS, 'conn-rate', '198.18.2.2', '8080', String(600 * timeScale), '2'], { netns: t.c.netns, timeoutMs: 20_000 * timeScale });
        const rate = JSON.parse(r.unwrap().stdout.trim()) as { done: number; failed: number };
        expect(rate.failed).toBe(0);
        expect(rate.done).toBeGreaterThan(20);
        await sleep(300);
        const st = (await blocker.stats()).unwrap();
        const reader = st.queues[0]!.reader!;
        // what the kernel gave the reader decides the steering: a SYN queued only where the reader cannot orient flows without it
        const perConn = reader.conntrack ? 1 : 2;
        // the plan apply() applied (not a fresh compile): its SYN decision follows the reader's report
        const syn = blocker.plan?.decisions.find((d) => d.subject === 'dpi tcp handshake');
        expect(syn?.chosen).toBe(reader.conntrack ? 'not queued' : "the client's SYN queued");
        expect(st.detections).toBe(0);
        expect(st.flowsSeen).toBe(rate.done);
        // each connection: its request (judged benign: the rest bypasses the queue), and its SYN without conntrack attributes
        expect(reader.packets).toBeGreaterThanOrEqual(rate.done * perConn);
        expect(reader.packets).toBeLessThan(rate.done * perConn + Math.max(3, rate.done * 0.05));
        console.log(`[dpi syn] ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}: conntrack attributes ${reader.conntrack}, ${rate.done} connections, ${reader.packets} packets queued`);
      } finally {
        await blocker.stop();
        await Promise.all(svc.procs.map((p) => p.kill()));
        rmSync(svc.certDir, { recursive: true, force: true });
      }
    });
  });

  it('settled service: once an HTTP flow to a server was identified, its new connections pass without the queue until the entry times out', async () => {
    await withLab('dpisettle', async (lab) => {
      const t = await topo(lab);
      const svc = await startServices(lab, t);
      const ttlMs = 4000;
      const blocker = new DpiBlocker({ netns: t.r.netns, queues: [85, 1], failOpen: false, settleServices: { ttlMs } });
      const seen: Detection[] = [];
      blocker.on('detection', (d) => seen.push(d));
      // packets of the "settled service" rules, read from the router's nft table
      const settleHits = async (): Promise<number> => {
        const r = (await run(['nft', '-j', 'list', 'table', 'inet', 'netfence_dpi'], { netns: t.r.netns })).unwrap();
        let n = 0;
        for (const item of JSON.parse(r.stdout).nftables as { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[])
          if (item.rule?.comment === 'netfence dpi: settled service, not queued') for (const e of item.rule.expr) n += e.counter?.packets ?? 0;
        return n;
      };
      try {
        await started(blocker);
        expect(blocker.plan?.decisions.find((d) => d.subject === 'dpi settled services')?.chosen).toBe('on');
        const rate = JSON.parse((await run([process.execPath, SERVERS, 'conn-rate', '198.18.2.2', '8080', String(1500 * timeScale), '2'], { netns: t.c.netns, timeoutMs: 20_000 * timeScale })).unwrap().stdout.trim()) as { done: number; failed: number };
        expect(rate.failed).toBe(0);
        expect(rate.done).toBeGreaterThan(50);
        await sleep(300);
        const st = (await blocker.stats()).unwrap();
        const reader = st.queues[0]!.reader!;
        expect(st.settledServices).toMatchObject({ size: 1, ttlSeconds: ttlMs / 1000, errors: 0 });
        expect(st.settledServices!.added).toBeGreaterThanOrEqual(1);
        // the connections before the set had the service: inspected; every later one: its SYN marked benign in the kernel
        const inspected = st.flowsSeen;
        expect(inspected).toBeGreaterThanOrEqual(1);
        expect(inspected).toBeLessThan(rate.done / 4);
        expect(await settleHits()).toBe(rate.done - inspected);
        expect(reader.packets).toBeLessThan(inspected * 2 + 5);
        expect(seen).toHaveLength(0);
        // after the TTL the service is inspected again: the next connection crosses userspace
        await sleep(ttlMs + 1500);
        const before = (await blocker.stats()).unwrap().flowsSeen;
        const again = JSON.parse((await run([process.execPath, SERVERS, 'send', '198.18.2.2', '8080', 'GET / HTTP/1.0\\r\\n\\r\\n'], { netns: t.c.netns, timeoutMs: 8000 })).unwrap().stdout.trim()) as { reply: string | null };
        expect(again.reply).toMatch(/^HTTP\/1.1 200/);
        await sleep(300);
        expect((await blocker.stats()).unwrap().flowsSeen).toBe(before + 1);
        console.log(`[dpi settle] ${rate.done} connections, ${inspected} inspected, ${reader.packets} packets queued, ${await settleHits()} SYNs marked benign by the settled-service rule`);
      } finally {
        await blocker.stop();
        await Promise.all(svc.procs.map((p) => p.kill()));
        rmSync(svc.certDir, { recursive: true, force: true });
      }
    });
  });

  for (const failOpen of [true, false]) {
    it(`after the DPI worker is SIGKILLed, new flows are ${failOpen ? 'accepted (failOpen: true)' : 'dropped (failOpen: false)'}`, async () => {
      await withLab(failOpen ? 'dpifo' : 'dpifc', async (lab) => {
        const t = await topo(lab);
        const svc = await startServices(lab, t);
        const blocker = new DpiBlocker({ netns: t.r.netns, queues: [78, 1], failOpen });
        const exits: number[] = [];
        blocker.on('worker-exit', (e) => exits.push(e.queue));
        try {
          await started(blocker);
          const before = await ordinaryTraffic(t, svc);
          expect(before.http).toBe('hello over http');
          for (const pid of blocker.pids().values()) if (pid) process.kill(pid, 'SIGKILL');
          await sleep(500);
          expect(exits).toEqual([78]);
          const after = await ordinaryTraffic(t, svc);
          if (failOpen) {
            expect(after.http).toBe('hello over http');
            expect(after.tls).toBe('hello over tls');
            expect(after.dns).toBe('198.18.9.9');
          } else {
            expect(after.http).toMatch(/^failed/);
            expect(after.tls).toMatch(/^failed/);
            expect(after.dns).not.toBe('198.18.9.9');
          }
          expect((await blocker.stats()).unwrap().workerExits).toBe(1);
          console.log(`[dpi failOpen=${failOpen}] after SIGKILL: ${JSON.stringify(after)}`);
        } finally {
          const s = await blocker.stop();
          expect(s.ok).toBe(true);
          await Promise.all(svc.procs.map((p) => p.kill()));
          rmSync(svc.certDir, { recursive: true, force: true });
        }
        expect(await chainRules(lab, t.r)).not.toMatch(STEERING);
      });
    });
  }

  it('a user classifier module runs in the workers: its flows are dropped, others pass', async () => {
    await withLab('dpicust', async (lab) => {
      const t = await topo(lab);
      const svc = await startServices(lab, t);
      const blocker = new DpiBlocker({ netns: t.r.netns, queues: [82, 1], classifiers: [{ module: CUSTOM, options: { word: 'FORBIDDEN' } }, 'bittorrent'] });
      const seen: Detection[] = [];
      blocker.on('detection', (d) => seen.push(d));
      const send = async (text: string): Promise<{ reply: string | null }> => {
        const r = await run([process.execPath, SERVERS, 'send', '198.18.2.2', '8080', text], { netns: t.c.netns, timeoutMs: 8000 });
        return JSON.parse(r.ok ? r.val.stdout.trim() : '{"reply":null}') as { reply: string | null };
      };
      try {
        await started(blocker);
        expect((await send('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')).reply).toMatch(/^HTTP\/1.1 200/);
        expect((await send('FORBIDDEN / HTTP/1.1\\r\\n\\r\\n')).reply).toBeNull();
        expect((await send('GET / HTTP/1.1\\r\\nHost: y\\r\\n\\r\\n')).reply).toMatch(/^HTTP\/1.1 200/);
        expect(seen).toHaveLength(1);
        expect(seen[0]).toMatchObject({ classifier: 'forbidden-word', detection: 'custom', action: 'dropped' });
      } finally {
        await blocker.stop();
        await Promise.all(svc.procs.map((p) => p.kill()));
        rmSync(svc.certDir, { recursive: true, force: true });
      }
    });
  });

  it('start() fails cleanly when the queue is held by another reader: typed error, no rule left; starts later, restarts after stop', async () => {
    await withLab('dpifail', async (lab) => {
      const t = await topo(lab);
      const other = await openQueues({ netns: t.r.netns, queues: [80, 1], failOpen: true });
      if (other.err) throw other.val;
      try {
        const blocker = new DpiBlocker({ netns: t.r.netns, queues: [80, 1] });
        const s = await blocker.start();
        expect(s.err).toBe(true);
        expect(s.err && s.val.code).toBe('QUEUE_START');
        expect(await chainRules(lab, t.r)).not.toMatch(STEERING);
        expect((await blocker.stats()).unwrap().running).toBe(false);
        // Once the queue is free, the same blocker starts; and again after stop().
        await other.val.close();
        for (let i = 0; i < 2; i++) {
          await started(blocker);
          expect(await chainRules(lab, t.r)).toMatch(STEERING);
          expect((await blocker.stats()).unwrap().running).toBe(true);
          expect((await blocker.stop()).ok).toBe(true);
          expect(await chainRules(lab, t.r)).not.toMatch(STEERING);
        }
      } finally {
        await other.val.close();
      }
    });
  });
});

describe('DpiBlocker leaves the namespace as it found it', () => {
  it('start() + stop() in a fresh namespace leaves an empty ruleset; a second blocker of the same name is refused', async () => {
    await withLab('dpiclean', async (lab) => {
      const r = await lab.host('r');
      const ruleset = async (): Promise<string> => (await lab.sh(r, ['nft', 'list', 'ruleset'])).stdout;
      const before = await ruleset();
      const a = new DpiBlocker({ netns: r.netns, queues: [61, 1] });
      const sa = await a.start();
      expect(sa.err ? sa.val.message : 'ok').toBe('ok');
      expect(await ruleset()).toMatch(STEERING);
      // Same name, other queue: the steering rules exist, so it must fail and leave the first one alone.
      const b = new DpiBlocker({ netns: r.netns, queues: [62, 1] });
      const sb = await b.start();
      expect(sb.err).toBe(true);
      // xtables: the chain exists; nft: the steering table belongs to the first blocker.
      if (sb.err) expect(sb.val.message).toMatch(/exists|belongs to/i);
      console.log(`[dpi] steering via ${(await a.stats()).unwrap().steering}; second blocker: ${sb.err ? sb.val.message.split('\n')[0] : 'started'}`);
      const rules = await ruleset();
      expect(rules).toMatch(/--queue-num 61\b|queue.* to 61\b|queue num 61\b/);
      expect(rules).not.toMatch(/--queue-num 62\b|queue.* to 62\b|queue num 62\b/);
      expect((await a.stop()).ok).toBe(true);
      expect(await ruleset()).toBe(before);
    });
  });

  it("xtables form in a fresh namespace: a fault at every apply point, and a SIGKILL once applied followed by reconcile(), leave the ruleset as found (iptables-nft's filter tables included)", async () => {
    await withLab('dpiscaf', async (lab) => {
      const r = await lab.host('r');
      const ruleset = async (): Promise<string> => (await lab.sh(r, ['nft', 'list', 'ruleset'])).stdout;
      const before = await ruleset();
      // the points the apply passes, then each one failing
      const rec = failNth(-1);
      setFaultHook(rec.hook);
      const b0 = new DpiBlocker({ netns: r.netns, queues: [63, 1], nftQueue: false });
      try {
        await started(b0);
      } finally {
        setFaultHook(undefined);
      }
      expect(b0.plan?.steps[0]?.id).toBe('dpi:xtables-scaffolding');
      expect(await ruleset()).toMatch(/table ip filter[\s\S]*chain NETFENCE-DPI/);
      expect((await b0.destroy()).ok).toBe(true);
      expect(await ruleset()).toBe(before);
      expect(rec.points.filter((p) => p.startsWith('step:')).length).toBeGreaterThan(0);
      for (let k = 0; k < rec.points.length; k++) {
        const f = failNth(k);
        setFaultHook(f.hook);
        let res;
        try {
          res = await new DpiBlocker({ netns: r.netns, queues: [63, 1], nftQueue: false }).apply();
        } finally {
          setFaultHook(undefined);
        }
        expect({ point: f.injected, failed: res.err, ruleset: await ruleset() }).toEqual({ point: f.injected, failed: true, ruleset: before });
        expect(journalOf(process.pid)).toEqual([]);
      }
      // a process killed while its blocker runs: reconcile() takes the rules and the scaffolding back through its apply entry
      const child = spawn(process.execPath, ['--import', 'tsx', CRASH_CHILD, 'dpi', r.netns, 'lo'], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const line = (re: RegExp): Promise<void> =>
        new Promise((resolve, reject) => {
          const check = (): void => {
            if (re.test(out)) resolve();
          };
          child.stdout!.on('data', (d: Buffer) => ((out += d.toString()), check()));
          void exited.then(() => reject(new Error(`child exited: ${err}`)));
          check();
        });
      await line(/^ready$/m);
      child.stdin!.write('go\n');
      await line(/^done \d+$/m);
      expect(journalOf(child.pid)).toHaveLength(1);
      expect(await ruleset()).toMatch(/chain NETFENCE-DPI/);
      process.kill(child.pid!, 'SIGKILL');
      await exited;
      const rc = (await reconcile({ netns: r.netns })).unwrap();
      expect(rc.found.map((f) => f.kind)).toEqual(['apply']);
      expect(rc.errors).toEqual([]);
      expect(await ruleset()).toBe(before);
      expect(journalOf(child.pid)).toEqual([]);
    });
  });
});
