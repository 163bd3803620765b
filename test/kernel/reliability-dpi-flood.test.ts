/**
 * Issue 7, "DPI under load": a flood of new UDP flows from the client through
 * a router running DpiBlocker with a small queue (`queueMaxLen`) fills the
 * queue. failOpen true: the overflow is accepted by the kernel without
 * inspection (traffic keeps flowing, nothing counted as dropped); failOpen
 * false: the overflow is dropped and counted (`queueDropped`). Afterwards the
 * reader recovers: ordinary flows are inspected and pass, and a BitTorrent
 * handshake is still detected and blocked.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DpiBlocker, type Detection } from '../../src/dpi/dpi-blocker.js';
import { readProcQueues } from '../../src/dpi/nfqueue/proc.js';
import { run } from '../../src/host/run.js';
import { withLab } from '../../src/lab/index.js';
import { nsProc } from './load-proc.js';
import { topo } from './nfqueue-lab.js';

const FLOOD = fileURLToPath(new URL('./load-flood.mjs', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function tcpSend(netns: string, kind: 'text' | 'bt'): Promise<{ echoed: boolean; error: string | null }> {
  const r = await run([process.execPath, FLOOD, 'tcp-send', '198.18.2.2', '7700', kind], { netns, timeoutMs: 10_000 });
  return JSON.parse((r.ok ? r.val.stdout : r.val.failure.stdout).trim().split('\n').pop() ?? '{}') as { echoed: boolean; error: string | null };
}

describe('DpiBlocker under a flood of new flows', () => {
  for (const failOpen of [true, false]) {
    it(`a full queue ${failOpen ? 'lets the overflow through (failOpen: true)' : 'drops the overflow (failOpen: false)'}, the counters say so, and the reader recovers`, async () => {
      await withLab(failOpen ? 'ldfloodo' : 'ldfloodc', async (lab) => {
        const t = await topo(lab);
        const PORTS = 100;
        const SOCKS = 20;
        const QUEUE = failOpen ? 90 : 91;
        const sink = nsProc(t.s, [process.execPath, FLOOD, 'udp-sink', '7000', String(PORTS), '120000']);
        const echo = nsProc(t.s, [process.execPath, FLOOD, 'tcp-echo', '7700', '120000']);
        const blocker = new DpiBlocker({ netns: t.r.netns, queues: [QUEUE, 1], failOpen, queueMaxLen: 16 });
        const detections: Detection[] = [];
        blocker.on('detection', (d) => detections.push(d));
        try {
          await sink.line((l) => 'listening' in l, 10_000);
          await echo.line((l) => 'listening' in l, 10_000);
          const s = await blocker.start();
          if (s.err) throw s.val;
          // before: an ordinary flow passes through the queue
          expect(await tcpSend(t.c.netns, 'text')).toMatchObject({ echoed: true });
          const before = (await blocker.stats()).unwrap();
          const k0 = before.queues[0]?.kernel;
          expect(k0?.queue).toBe(QUEUE);

          // the flood: 20 fresh sockets x 100 ports = 2,000 new flows per round, a round every 50 ms, for 4 s
          const f = await run([process.execPath, FLOOD, 'udp-flood', '198.18.2.2', '7000', String(PORTS), String(SOCKS), '4000', '50'], { netns: t.c.netns, timeoutMs: 30_000 });
          const flood = JSON.parse((f.ok ? f.val.stdout : f.val.failure.stdout).trim().split('\n').pop() ?? '{}') as { sent: number; errors: number; rounds: number; ms: number };
          await sleep(500);
          sink.write('count\n');
          const got = (await sink.line((l) => 'received' in l, 5000)).received as number;
          const after = (await blocker.stats()).unwrap();
          const k1 = after.queues[0]?.kernel;
          const rd = after.queues[0]?.reader;
          const proc = await readProcQueues({ netns: t.r.netns });
          const procLine = proc.ok ? proc.val.find((q) => q.queue === QUEUE) : undefined;
          expect(k1).toBeDefined();
          expect(procLine).toBeDefined();
          if (!k1 || !k0 || !procLine || !rd) throw new Error('no queue statistics');
          const queued = k1.idSequence - k0.idSequence;
          const qDropped = k1.queueDropped - k0.queueDropped;
          const uDropped = k1.userDropped - k0.userDropped;
          const notQueued = flood.sent - queued - qDropped; // packets the kernel let past the full queue (fail-open: counted nowhere)
          console.log(
            `[dpi flood failOpen=${failOpen}] ${flood.sent} datagrams (${flood.rounds} rounds of ${PORTS * SOCKS} new flows, ${flood.ms} ms, ${flood.errors} send errors): ` +
              `server received ${got}; queue ${QUEUE} (maxlen 16): queued ${queued}, queueDropped ${qDropped}, userDropped ${uDropped}, let past the full queue ${notQueued}; ` +
              `reader: packets ${rd.packets}, accepted ${rd.accepted}, dropped ${rd.dropped}, enobufs ${rd.enobufs}; engine: flows ${after.flowsSeen}, inspected ${after.packetsInspected}; ` +
              `/proc line: ${JSON.stringify(procLine)}`,
          );
          expect(flood.sent).toBeGreaterThan(10_000);
          // the queue was full: not every new flow's packet got into it
          expect(queued).toBeLessThan(flood.sent);
          if (failOpen) {
            // nothing dropped by the queue; the overflow went on uninspected
            expect(qDropped).toBe(0);
            expect(notQueued).toBeGreaterThan(0);
            expect(got).toBeGreaterThanOrEqual(Math.floor(flood.sent * 0.99));
          } else {
            // the overflow was dropped, and said so
            expect(qDropped).toBeGreaterThan(0);
            expect(got).toBeLessThan(flood.sent);
            // what arrived went through the reader (queued and accepted); nothing else passed
            expect(got).toBeLessThanOrEqual(queued - uDropped);
            expect(qDropped + queued).toBeGreaterThanOrEqual(flood.sent - Math.ceil(flood.sent * 0.01));
          }
          expect(after.running).toBe(true);
          expect(after.workerExits).toBe(0);

          // recovery: the flood has stopped; ordinary flows are inspected and pass ...
          const inspected0 = (await blocker.stats()).unwrap().queues[0]?.reader?.packets ?? 0;
          for (let i = 0; i < 3; i++) expect(await tcpSend(t.c.netns, 'text')).toMatchObject({ echoed: true });
          await sleep(300);
          const rec = (await blocker.stats()).unwrap();
          expect(rec.queues[0]?.reader?.packets ?? 0).toBeGreaterThan(inspected0);
          // ... and a BitTorrent handshake is still detected and blocked
          const bt = await tcpSend(t.c.netns, 'bt');
          await sleep(500);
          console.log(`[dpi flood failOpen=${failOpen}] recovery: ordinary flows echoed; reader packets ${inspected0} -> ${rec.queues[0]?.reader?.packets}; BitTorrent handshake: ${JSON.stringify(bt)}, detections ${JSON.stringify(detections.map((d) => [d.detection, d.action]))}`);
          expect(bt.echoed).toBe(false);
          expect(detections.some((d) => d.detection === 'handshake' && d.action === 'dropped')).toBe(true);
        } finally {
          const st = await blocker.stop();
          expect(st.ok).toBe(true);
          sink.kill();
          echo.kill();
        }
      });
    }, 120_000);
  }
});
