/**
 * The queue layer against the kernel: packets reach the worker with the right
 * payload, verdicts decide their fate, batch verdicts, kernel statistics,
 * queue-full fail-open/fail-closed, ENOBUFS, fanout over two workers, GSO.
 * Rules here are plain iptables-nft rules in the router namespace (the
 * steering plan is tested in nfqueue-steering.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { openQueues, type QueueHandle, type QueueStats } from '../../src/dpi/nfqueue/index.js';
import type { QueuedPacket } from '../../src/dpi/nfqueue/protocol.js';
import { withLab } from '../../src/lab/index.js';
import { HANDLER, pair, sleep, topo, traffic, udp } from './nfqueue-lab.js';

async function open(o: Parameters<typeof openQueues>[0]): Promise<QueueHandle> {
  const h = await openQueues(o);
  if (h.err) throw h.val;
  return h.val;
}

function udpDport(p: QueuedPacket): number {
  const off = p.hwProtocol === 0x86dd ? 40 : ((p.payload[0] ?? 0) & 0x0f) * 4;
  return p.payload.readUInt16BE(off + 2);
}

const one = (s: QueueStats[], q: number): QueueStats => {
  const x = s.find((y) => y.queue === q);
  if (!x) throw new Error(`no stats for queue ${q}`);
  return x;
};

describe('nfqueue: queue readers in worker processes', () => {
  it('delivers packets with their payload; accept lets them through, drop stops them (IPv4, IPv6)', async () => {
    await withLab('nfqpay', async (lab) => {
      const t = await topo(lab);
      for (const tool of ['iptables-nft', 'ip6tables-nft']) await lab.sh(t.r, [tool, '-A', 'FORWARD', '-p', 'udp', '-j', 'NFQUEUE', '--queue-num', '7']);
      const seen: QueuedPacket[] = [];
      const h = await open({
        netns: t.r.netns,
        queues: [7, 1],
        failOpen: false,
        onPacket: (p) => {
          seen.push(p);
          return udpDport(p) === 9001 ? 'drop' : 'accept';
        },
      });
      try {
        const a = await udp(t, 9000, 5, 'hello');
        expect(a.count).toBe(5);
        expect(a.got.map((g) => g.data).sort()).toEqual(['hello-0', 'hello-1', 'hello-2', 'hello-3', 'hello-4']);
        const p0 = seen.find((p) => p.payload.subarray(28).toString() === 'hello-0');
        expect(p0).toBeDefined();
        expect(p0?.hwProtocol).toBe(0x0800);
        expect(p0?.hookName).toBe('forward');
        expect(p0?.queue).toBe(7);
        expect(p0?.payload.length).toBe(20 + 8 + 7);
        expect(p0?.length).toBe(35);
        expect(p0?.indev).toBeGreaterThan(0);
        expect(p0?.outdev).toBeGreaterThan(0);
        expect(p0?.indev).not.toBe(p0?.outdev);

        const b = await udp(t, 9001, 5, 'nope');
        expect(b.count).toBe(0);

        const c = await udp(t, 9000, 3, 'six', { v6: true });
        expect(c.count).toBe(3);
        const p6 = seen.find((p) => p.hwProtocol === 0x86dd && p.payload.subarray(48).toString() === 'six-0');
        expect(p6).toBeDefined();
        expect((p6?.payload.readUInt8(0) ?? 0) >> 4).toBe(6);

        const s = one(await h.stats(), 7);
        expect(s.reader?.packets).toBe(seen.length);
        expect(s.reader?.packets).toBe(13);
        expect(s.reader?.accepted).toBe(8);
        expect(s.reader?.dropped).toBe(5);
        expect(s.kernel?.idSequence).toBe(13);
        expect(s.kernel?.queueTotal).toBe(0);
        expect(s.kernel?.copyMode).toBe(2);
        expect(s.kernel?.queueDropped).toBe(0);
        expect(s.kernel?.portid).toBeGreaterThan(0);
      } finally {
        await h.close();
      }
      // Closed: the queue is unbound, no reader, no --queue-bypass: dropped.
      expect((await udp(t, 9000, 2, 'closed')).count).toBe(0);
    });
  });

  it('decides in the worker with a handler module, merges verdicts into batches, counts match the kernel', async () => {
    await withLab('nfqbatch', async (lab) => {
      const t = await topo(lab);
      await lab.sh(t.r, ['iptables-nft', '-A', 'FORWARD', '-p', 'udp', '-j', 'NFQUEUE', '--queue-num', '9']);
      for (const batchVerdicts of [true, false]) {
        const h = await open({ netns: t.r.netns, queues: [9, 1], failOpen: false, handlerModule: HANDLER, handlerOptions: { verdict: 'accept' }, batchVerdicts });
        try {
          const n = 3000;
          const r = await udp(t, 9100, n, `b${batchVerdicts}`, { recvMs: 4000 });
          const s = one(await h.stats(), 9);
          expect(s.reader?.packets).toBe(n);
          expect(s.reader?.accepted).toBe(n);
          expect(s.kernel?.idSequence).toBe(n);
          expect(s.kernel?.queueTotal).toBe(0);
          expect(r.count).toBe(n);
          if (batchVerdicts) {
            expect(s.reader?.batchMessages).toBeGreaterThan(0);
            expect(s.reader?.verdictMessages).toBeLessThan(n);
          } else {
            expect(s.reader?.batchMessages).toBe(0);
            expect(s.reader?.verdictMessages).toBe(n);
          }
          console.log(`[nfqueue] ${n} UDP packets, batchVerdicts=${batchVerdicts}: ${s.reader?.batchMessages} batch + ${s.reader?.verdictMessages} single verdict messages`);
        } finally {
          await h.close();
        }
      }
    });
  });

  it('with the queue full, fail-open accepts and fail-closed drops (NFQA_CFG_F_FAIL_OPEN)', async () => {
    await withLab('nfqfull', async (lab) => {
      const t = await topo(lab);
      await lab.sh(t.r, ['iptables-nft', '-A', 'FORWARD', '-p', 'udp', '-j', 'NFQUEUE', '--queue-num', '11']);
      for (const failOpen of [true, false]) {
        // Two packets fill the queue; the handler holds each for 1.5 s.
        const h = await open({ netns: t.r.netns, queues: [11, 1], failOpen, maxLen: 2, handlerModule: HANDLER, handlerOptions: { verdict: 'accept', holdMs: 1500 } });
        try {
          const r = await udp(t, 9200, 10, `full${failOpen}`, { interval: 20, recvMs: 3500 });
          const s = one(await h.stats(), 11);
          expect(s.reader?.packets).toBe(2);
          if (failOpen) {
            expect(r.count).toBe(10);
            expect(s.kernel?.queueDropped).toBe(0);
          } else {
            expect(r.count).toBe(2);
            expect(s.kernel?.queueDropped).toBe(8);
          }
        } finally {
          await h.close();
        }
      }
    });
  });

  it('counts ENOBUFS when the socket buffer overflows and keeps reading', async () => {
    await withLab('nfqnobufs', async (lab) => {
      const t = await topo(lab);
      await lab.sh(t.r, ['iptables-nft', '-A', 'FORWARD', '-p', 'udp', '-j', 'NFQUEUE', '--queue-num', '12']);
      // A tiny receive buffer and a handler that stalls 400 ms on its first packet.
      const h = await open({ netns: t.r.netns, queues: [12, 1], failOpen: false, rcvbuf: 4096, handlerModule: HANDLER, handlerOptions: { verdict: 'accept', busyMs: 400 } });
      try {
        const r = await udp(t, 9300, 300, 'burst', { recvMs: 2500 });
        const s = one(await h.stats(), 12);
        expect(s.reader?.enobufs).toBeGreaterThan(0);
        expect(s.kernel?.userDropped).toBeGreaterThan(0);
        // What the kernel could not deliver was dropped (fail-closed); the rest went through.
        expect(r.count).toBe(300 - (s.kernel?.userDropped ?? 0));
        // Still reading afterwards.
        expect((await udp(t, 9301, 5, 'after')).count).toBe(5);
      } finally {
        await h.close();
      }
    });
  });

  it('fans out over two queues, each read by its own worker process', async () => {
    await withLab('nfqfan', async (lab) => {
      const t = await topo(lab);
      const srcs = Array.from({ length: 16 }, (_, i) => `198.18.1.${10 + i}`);
      for (const a of srcs) await lab.addr(t.c, 'eth0', `${a}/24`);
      await lab.sh(t.r, ['iptables-nft', '-A', 'FORWARD', '-p', 'udp', '-j', 'NFQUEUE', '--queue-balance', '20:21']);
      const h = await open({ netns: t.r.netns, queues: [20, 2], failOpen: false, handlerModule: HANDLER, handlerOptions: { verdict: 'accept' } });
      try {
        const pids = [...h.pids().values()];
        expect(pids).toHaveLength(2);
        expect(new Set(pids).size).toBe(2);
        const { recv } = await pair(
          () => traffic<{ count: number }>(t.s, ['udp-recv', '9400', '4000']),
          () => traffic(t.c, ['udp-send', '198.18.2.2', '9400', '5', 'fan', srcs.join(','), '0']),
        );
        expect(recv.count).toBe(80);
        const s = await h.stats();
        const a = one(s, 20).reader?.packets ?? 0;
        const b = one(s, 21).reader?.packets ?? 0;
        expect(a + b).toBe(80);
        expect(a).toBeGreaterThan(0);
        expect(b).toBeGreaterThan(0);
        expect(one(s, 20).kernel?.portid).not.toBe(one(s, 21).kernel?.portid);
      } finally {
        await h.close();
      }
    });
  });

  it('passes GSO super-packets unsegmented; measures a TCP transfer with every packet queued', async () => {
    await withLab('nfqgso', async (lab) => {
      const t = await topo(lab);
      const bytes = 20 * 1024 * 1024;
      const transfer = (port: number) =>
        pair(
          () => traffic<{ conns: { bytes: number }[] }>(t.s, ['tcp-sink', String(port), '30000', '1'], 40_000),
          () => traffic<{ error: string | null; ms: number }>(t.c, ['tcp-send', '198.18.2.2', String(port), String(bytes), '25000'], 40_000),
        );
      const base = await transfer(5200);
      expect(base.recv.conns[0]?.bytes).toBe(bytes);
      await lab.sh(t.r, ['iptables-nft', '-A', 'FORWARD', '-p', 'tcp', '-j', 'NFQUEUE', '--queue-num', '13']);
      const h = await open({ netns: t.r.netns, queues: [13, 1], failOpen: false, handlerModule: HANDLER, handlerOptions: { verdict: 'accept' } });
      try {
        const q = await transfer(5201);
        expect(q.send.error).toBeNull();
        expect(q.recv.conns[0]?.bytes).toBe(bytes);
        const s = one(await h.stats(), 13);
        expect(s.reader?.gso).toBeGreaterThan(0);
        expect(s.reader?.packets).toBe(s.kernel?.idSequence);
        expect(s.kernel?.queueDropped).toBe(0);
        console.log(
          `[nfqueue] 20 MiB TCP: without queue ${base.send.ms} ms, every packet queued ${q.send.ms} ms ` +
            `(ratio ${(base.send.ms / q.send.ms).toFixed(3)}); ${s.reader?.packets} packets queued (${s.reader?.gso} of them GSO); ` +
            `${s.reader?.batchMessages} batch + ${s.reader?.verdictMessages} single verdicts`,
        );
      } finally {
        await h.close();
      }
    });
  });

  it('refuses a queue another reader holds, and leaves nothing running', async () => {
    await withLab('nfqbusy', async (lab) => {
      const t = await topo(lab);
      const h = await open({ netns: t.r.netns, queues: [30, 1], failOpen: true });
      try {
        const second = await openQueues({ netns: t.r.netns, queues: [30, 1], failOpen: true, startTimeoutMs: 20_000 });
        expect(second.err).toBe(true);
        expect(String(second.val)).toMatch(/queue 30/);
        // The first reader still holds it.
        const s = one(await h.stats(), 30);
        expect(s.kernel?.portid).toBeGreaterThan(0);
      } finally {
        await h.close();
      }
      await sleep(100);
    });
  });
});
