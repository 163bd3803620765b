/**
 * Peer learning through a real router: client (c, 198.18.1.2) — router (r,
 * DpiBlocker on 4 queues) — peers (s, 198.18.2.2). A DHT node on s answers a
 * get_peers query with 8 peers and an HTTP tracker lists 4 (TCP sinks on s); the client connects to each
 * with random bytes, as an encrypted handshake looks. The reply's queue and
 * the peers' flows' queues are whatever the kernel's fanout hash picks, so
 * the shared cache is what lets every worker judge them.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DpiBlocker, type Detection } from '../../src/dpi/dpi-blocker.js';
import { run } from '../../src/host/run.js';
import { withLab, type LabHost } from '../../src/lab/index.js';
import { sleep, topo } from './nfqueue-lab.js';

const TRAFFIC = fileURLToPath(new URL('./peers-learnt-traffic.mjs', import.meta.url));
const PEER = '198.18.2.2';

async function traffic<T>(h: LabHost, args: string[], timeoutMs = 60_000): Promise<T> {
  const r = await run([process.execPath, TRAFFIC, ...args], { netns: h.netns, timeoutMs });
  const text = r.ok ? r.val.stdout : r.val.failure.stdout;
  try {
    return JSON.parse(text.trim().split('\n').pop() ?? '') as T;
  } catch {
    throw new Error(`traffic ${args[0]}: ${r.err ? r.val.message : text}`);
  }
}

/** Run servers on `h` (each with its ready file), then `client`; servers end after it. */
async function around<S extends unknown[], C>(servers: ((files: string[]) => Promise<S[number]>)[], client: () => Promise<C>): Promise<{ servers: S; client: C }> {
  const dir = mkdtempSync(join(tmpdir(), 'peers-'));
  const done = join(dir, 'done');
  try {
    const running = servers.map((start, i) => start([`--ready=${join(dir, `ready${i}`)}`, `--done=${done}`]));
    const until = Date.now() + 60_000; // hang guard
    while (servers.some((_, i) => !existsSync(join(dir, `ready${i}`))) && Date.now() < until) await sleep(20);
    const c = await client();
    writeFileSync(done, '');
    return { servers: (await Promise.all(running)) as S, client: c };
  } finally {
    writeFileSync(done, '');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function started(b: DpiBlocker): Promise<Detection[]> {
  const seen: Detection[] = [];
  b.on('detection', (d) => seen.push(d));
  (await b.apply()).unwrap();
  return seen;
}

const ports = (from: number) => Array.from({ length: 8 }, (_, i) => from + i);

describe('DpiBlocker: peers learnt from DHT and tracker replies, one cache for all workers', () => {
  it('monitor-only: the 8 peers a DHT reply lists, and the 4 an HTTP tracker lists, are each reported peer-learnt at their first packet, whichever worker sees them', async () => {
    await withLab('peers-mon', async (lab) => {
      const t = await topo(lab);
      const b = new DpiBlocker({ netns: t.r.netns, queues: [120, 4], monitorOnly: true });
      const seen = await started(b);
      try {
        const list = ports(7001);
        const r = await around<[{ bytes: Record<string, number> }, { queries: number }], { reply: boolean; peers: string[]; connected: number }>(
          [
            (f) => traffic(t.s, ['sinks', PEER, list.join(','), ...f]),
            (f) => traffic(t.s, ['dht-node', PEER, '6881', list.map((p) => `${PEER}:${p}`).join(','), ...f]),
          ],
          () => traffic(t.c, ['query-connect', PEER, '6881']),
        );
        // monitor-only lets everything through
        expect(r.client).toMatchObject({ reply: true, connected: 8 });
        expect(Object.values(r.servers[0].bytes)).toEqual(new Array(8).fill(300));
        await sleep(300);
        const dht = seen.find((d) => d.detection === 'dht');
        expect(dht, JSON.stringify(seen)).toBeDefined();
        for (const p of list) {
          const d = seen.find((x) => x.flow.server.addr === PEER && x.flow.server.port === p);
          expect(d, `peer ${p}: ${JSON.stringify(seen)}`).toMatchObject({ detection: 'peer-learnt', atPacket: 1, action: 'monitored' });
          expect(d!.reason).toContain(`${PEER}:${p} was listed`);
        }
        const queues = new Set(seen.map((d) => d.queue));
        expect(queues.size, 'flows spread over more than one worker').toBeGreaterThan(1);
        // an HTTP tracker (announce judged at once; monitor-only keeps its flow queued until the response is read)
        const tl = ports(7021).slice(0, 4);
        const h = await around<[{ bytes: Record<string, number> }, { announces: number }], { reply: boolean; peers: string[]; connected: number }>(
          [(f) => traffic(t.s, ['sinks', PEER, tl.join(','), ...f]), (f) => traffic(t.s, ['tracker', PEER, '6969', tl.map((p) => `${PEER}:${p}`).join(','), ...f])],
          () => traffic(t.c, ['announce-connect', PEER, '6969']),
        );
        expect(h.client).toMatchObject({ reply: true, connected: 4 });
        expect(Object.values(h.servers[0].bytes)).toEqual(new Array(4).fill(300));
        await sleep(300);
        expect(seen.find((d) => d.detection === 'http-tracker')).toBeDefined();
        for (const p of tl) {
          const d = seen.find((x) => x.flow.server.addr === PEER && x.flow.server.port === p);
          expect(d, `peer ${p}: ${JSON.stringify(seen)}`).toMatchObject({ detection: 'peer-learnt', atPacket: 1 });
          expect(d!.reason).toContain('HTTP tracker response (peers)');
        }
        const st = (await b.stats()).unwrap();
        expect(st.peerCache).toMatchObject({ learnt: 12, learntHits: 12 });
      } finally {
        (await b.destroy()).unwrap();
      }
    });
  });

  it('blocking: peers listed by a dropped DHT reply are blocked at their first packet on every worker: 0 bytes reach them', async () => {
    await withLab('peers-blk', async (lab) => {
      const t = await topo(lab);
      const b = new DpiBlocker({ netns: t.r.netns, queues: [120, 4] });
      const seen = await started(b);
      try {
        const list = ports(7101);
        const peers = list.map((p) => `${PEER}:${p}`).join(',');
        // an unsolicited reply (its query went out before the blocker, say): dropped, but read
        await traffic(t.s, ['push', '198.18.1.2', '6881', '6881', peers]);
        const until = Date.now() + 10_000; // hang guard: the main process has merged the workers' report
        while (((await b.stats()).unwrap().peerCache?.learnt ?? 0) < 8 && Date.now() < until) await sleep(50);
        const r = await around<[{ bytes: Record<string, number> }], { connected: number }>([(f) => traffic(t.s, ['sinks', PEER, list.join(','), ...f])], () => traffic(t.c, ['connect', peers]));
        expect(Object.values(r.servers[0].bytes)).toEqual(new Array(8).fill(0));
        await sleep(300);
        expect(seen.find((d) => d.detection === 'dht')).toMatchObject({ action: 'dropped' });
        for (const p of list) {
          const d = seen.find((x) => x.flow.server.port === p && x.flow.server.addr === PEER);
          expect(d, `peer ${p}: ${JSON.stringify(seen)}`).toMatchObject({ detection: 'peer-learnt', atPacket: 1, action: 'dropped' });
        }
        expect(new Set(seen.map((d) => d.queue)).size, 'flows spread over more than one worker').toBeGreaterThan(1);
      } finally {
        (await b.destroy()).unwrap();
      }
    });
  });
});
