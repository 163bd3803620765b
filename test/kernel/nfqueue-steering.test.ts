/**
 * The steering plan against the kernel, in the form the capability report
 * picks (the nft `queue` statement where the kernel has it, else the xtables
 * NFQUEUE target through iptables-nft): first packets only, benign flows
 * bypass the queue, bad flows are dropped in full (or reset),
 * fail-open/fail-closed with no reader and after the reader is killed, and
 * the undo leaves nothing behind. The verdict reaches conntrack directly where
 * the kernel has the conntrack netlink glue, else through packet mark +
 * NF_REPEAT and the rules.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectCapabilities } from '../../src/capabilities/index.js';
import { nftList } from '../../src/host/nft.js';
import { openQueues, type QueueHandle } from '../../src/dpi/nfqueue/index.js';
import { compileSteering, steeringNames, type SteeringOptions } from '../../src/dpi/steering.js';
import { run } from '../../src/host/run.js';
import { withLab, type Lab } from '../../src/lab/index.js';
import { apply, type AppliedPlan } from '../../src/plan/executor.js';
import { HANDLER, pair, sleep, topo, traffic, udp, type Topo } from './nfqueue-lab.js';

/** Whether this kernel steers with the nft queue statement (capability report of the router's namespace). */
async function nftQueue(t: Topo): Promise<boolean> {
  return (await detectCapabilities({ netns: t.r.netns })).nft.features.queue.available;
}

async function steer(t: Topo, o: Omit<SteeringOptions, 'netns' | 'nftQueue'>): Promise<AppliedPlan> {
  const viaNft = await nftQueue(t);
  const plan = compileSteering({ ...o, netns: t.r.netns, nftQueue: viaNft });
  if (plan.err) throw plan.val;
  expect(plan.val.decisions[0]?.chosen).toMatch(viaNft ? /nft queue/ : /xtables/);
  console.log(`[nfqueue] ${release()}: steering via ${plan.val.decisions[0]?.chosen}`);
  const a = await apply(plan.val);
  if (a.err) throw a.val;
  return a.val;
}

const release = (): string => readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();

async function open(o: Parameters<typeof openQueues>[0]): Promise<QueueHandle> {
  const h = await openQueues(o);
  if (h.err) throw h.val;
  return h.val;
}

async function queued(h: QueueHandle, q: number): Promise<number> {
  const s = (await h.stats()).find((x) => x.queue === q);
  return s?.kernel?.idSequence ?? -1;
}

/** Packet counters of the steering rules, by comment (nft table or xtables chain, whichever this kernel uses). */
async function ruleCounters(lab: Lab, t: Topo, tool = 'iptables-nft'): Promise<Map<string, number>> {
  const { chain, table } = steeringNames();
  const m = new Map<string, number>();
  if (await nftQueue(t)) {
    const l = await nftList(['table', 'inet', table], { netns: t.r.netns });
    if (l.err) throw l.val;
    for (const o of l.val.nftables) {
      const r = (o as { rule?: { comment?: string; expr: Record<string, unknown>[] } }).rule;
      const c = r?.expr.find((e) => 'counter' in e)?.['counter'] as { packets?: number } | undefined;
      if (r?.comment && c) m.set(r.comment, (m.get(r.comment) ?? 0) + (c.packets ?? 0));
    }
    return m;
  }
  const out = await lab.sh(t.r, [tool, '-t', 'filter', '-L', chain, '-v', '-n', '-x']);
  for (const line of out.stdout.split('\n')) {
    const c = /\/\* (netfence dpi: [^*]+) \*\//.exec(line);
    const n = /^\s*(\d+)/.exec(line);
    if (c?.[1] && n?.[1]) m.set(c[1].trim(), (m.get(c[1].trim()) ?? 0) + Number(n[1]));
  }
  return m;
}

const MB10 = 10 * 1024 * 1024;

function tcpTransfer(t: Topo, port: number, bytes: number) {
  return pair(
    () => traffic<{ conns: { bytes: number; head: string }[] }>(t.s, ['tcp-sink', String(port), '30000', '1'], 40_000),
    () => traffic<{ error: string | null; ms: number }>(t.c, ['tcp-send', '198.18.2.2', String(port), String(bytes), '25000'], 40_000),
  );
}

describe('nfqueue steering rules (nft queue or xtables, as the kernel allows)', () => {
  it('a flow judged benign bypasses the queue: a 10 MB transfer queues only a handful of packets', async () => {
    await withLab('nfqbenign', async (lab) => {
      const t = await topo(lab);
      // No packet bound: only the benign mark keeps the flow out of the queue.
      const applied = await steer(t, { queues: [40, 1], failOpen: false, packets: 1_000_000 });
      try {
        // Control: a handler that never marks the flow sees (nearly) every packet.
        let h = await open({ netns: t.r.netns, queues: [40, 1], failOpen: false, handlerModule: HANDLER, handlerOptions: { verdict: 'accept' } });
        const control = await tcpTransfer(t, 5300, MB10);
        const controlQueued = await queued(h, 40);
        await h.close();
        expect(control.recv.conns[0]?.bytes).toBe(MB10);
        expect(controlQueued).toBeGreaterThan(100);

        h = await open({ netns: t.r.netns, queues: [40, 1], failOpen: false, handlerModule: HANDLER, handlerOptions: { verdict: 'accept', benignOnPayload: true } });
        try {
          const r = await tcpTransfer(t, 5301, MB10);
          expect(r.send.error).toBeNull();
          expect(r.recv.conns[0]?.bytes).toBe(MB10);
          const n = await queued(h, 40);
          const s = (await h.stats())[0]?.reader;
          // SYN, SYN-ACK, ACK, the first data segment (judged benign) and whatever of the initial
          // window was already on its way before that verdict landed: then no more.
          expect(n).toBeGreaterThanOrEqual(4);
          expect(n).toBeLessThanOrEqual(16);
          // Segments that were queued before the first verdict landed are judged benign as well.
          expect(s?.benign).toBeGreaterThanOrEqual(1);
          expect(s?.benign).toBeLessThanOrEqual(n);
          expect(s?.repeatLoops).toBe(0);
          const c = await ruleCounters(lab, t);
          // With the conntrack glue the reader sets the conntrack mark itself: the copy rule sees nothing.
          expect(c.get('netfence dpi: verdict benign to conntrack')).toBe(h.connmarkVia === 'ct' ? 0 : s?.benign);
          expect(c.get('netfence dpi: benign flow bypasses the queue')).toBeGreaterThan(50);
          console.log(`[nfqueue] 10 MB TCP transfer: ${controlQueued} packets queued without a benign mark, ${n} with it (connmark via ${h.connmarkVia})`);
        } finally {
          await h.close();
        }
      } finally {
        await applied.rollback();
      }
    });
  });

  it('skipPayloadless + skipSynAck (as DpiBlocker steers), + skipSyn (as it steers where readers get conntrack attributes): of a TCP connection only the SYN and the packets with payload are queued, then only the latter', async () => {
    await withLab('nfqsynack', async (lab) => {
      const t = await topo(lab);
      // One connection carrying 1000 bytes, steered without skipSynAck, with it, and with skipSyn too, read by one
      // worker (started once: fewer node starts under the emulated kernel column); the handler reports every packet
      // it gets with its TCP flags. Counts are not compared: a queued data segment overtaken by its unqueued FIN is
      // sent again, so how many data packets reach the queue varies.
      const seen: Record<string, { tcpFlags: number; payloadLen: number }[]> = {};
      const h = await open({ netns: t.r.netns, queues: [46, 1], failOpen: false, handlerModule: HANDLER, handlerOptions: { verdict: 'accept', emit: true } });
      let got: { tcpFlags: number; payloadLen: number }[] = [];
      h.on('event', (e) => {
        const d = e.data as { tcpFlags?: number; payloadLen: number };
        if (d.tcpFlags !== undefined) got.push({ tcpFlags: d.tcpFlags, payloadLen: d.payloadLen });
      });
      try {
        for (const [name, skipSynAck, skipSyn] of [['without', false, false], ['with', true, false], ['nosyn', true, true]] as const) {
          const applied = await steer(t, { queues: [46, 1], failOpen: false, packets: 1_000_000, skipPayloadless: true, skipSynAck, skipSyn });
          got = [];
          const before = await queued(h, 46);
          try {
            const r = await tcpTransfer(t, 5310 + (skipSyn ? 2 : skipSynAck ? 1 : 0), 1000);
            expect(r.send.error).toBeNull();
            expect(r.recv.conns[0]?.bytes).toBe(1000);
            await sleep(200); // the last events
            const c = await ruleCounters(lab, t);
            expect(c.get('netfence dpi: no payload, not queued')).toBeGreaterThan(0);
            expect(got.length).toBe((await queued(h, 46)) - before);
            seen[name] = got;
          } finally {
            await applied.rollback();
          }
        }
      } finally {
        await h.close();
      }
      const synAck = (p: { tcpFlags: number }): boolean => (p.tcpFlags & 0x12) === 0x12;
      const bareSyn = (p: { tcpFlags: number }): boolean => (p.tcpFlags & 0x12) === 0x02;
      // without: the SYN, the SYN+ACK and the data are queued, no payload-less packet other than those two
      expect(seen.without!.filter(bareSyn)).toHaveLength(1);
      expect(seen.without!.filter(synAck)).toHaveLength(1);
      expect(seen.without!.filter((p) => p.payloadLen === 0 && !bareSyn(p) && !synAck(p))).toEqual([]);
      // with: the SYN and the data only
      expect(seen.with!.filter(bareSyn)).toHaveLength(1);
      expect(seen.with!.filter(synAck)).toEqual([]);
      expect(seen.with!.filter((p) => p.payloadLen > 0).length).toBeGreaterThanOrEqual(1);
      expect(seen.with!.filter((p) => p.payloadLen === 0 && !bareSyn(p))).toEqual([]);
      // with skipSyn: the data only
      expect(seen.nosyn!.filter((p) => p.payloadLen > 0).length).toBeGreaterThanOrEqual(1);
      expect(seen.nosyn!.filter((p) => p.payloadLen === 0)).toEqual([]);
    });
  });

  it('only the first N packets of a flow are queued (connbytes bound)', async () => {
    await withLab('nfqbound', async (lab) => {
      const t = await topo(lab);
      const applied = await steer(t, { queues: [41, 1], failOpen: false, packets: 5, protocols: ['udp'] });
      const h = await open({ netns: t.r.netns, queues: [41, 1], failOpen: false, handlerModule: HANDLER, handlerOptions: { verdict: 'accept' } });
      try {
        // Paced: while a flow's first packet waits in the queue its conntrack entry is unconfirmed,
        // so packets right behind it start entries of their own (and are queued too). 250 ms leaves
        // room for a verdict on a slow (emulated) machine.
        const r = await udp(t, 9500, 12, 'bound', { interval: 250 });
        expect(r.count).toBe(12);
        expect(await queued(h, 41)).toBe(5);
      } finally {
        await h.close();
        await applied.rollback();
      }
    });
  });

  for (const resetBad of [false, true]) {
    it(`a flow judged bad is dropped in full — later segments and retransmissions too${resetBad ? ', answered with a TCP reset' : ''}; new flows are unaffected`, async () => {
      await withLab(resetBad ? 'nfqbadrst' : 'nfqbad', async (lab) => {
        const t = await topo(lab);
        const applied = await steer(t, { queues: [42, 1], failOpen: false, resetBad });
        const h = await open({ netns: t.r.netns, queues: [42, 1], failOpen: false, handlerModule: HANDLER, handlerOptions: { verdict: 'accept', badPattern: 'EVIL' } });
        try {
          const bad = await pair(
            () => traffic<{ conns: { bytes: number; head: string }[] }>(t.s, ['tcp-sink', '5400', resetBad ? '4000' : '6000', '1']),
            () => traffic<{ error: string | null; written: number }>(t.c, ['tcp-chat', '198.18.2.2', '5400', '300', 'hello', 'EVIL', 'after1', 'after2']),
          );
          expect(bad.recv.conns[0]?.head).toBe('hello');
          if (resetBad) expect(bad.send.error).toBe('ECONNRESET');
          else expect(bad.send.error).toBe('TIMEOUT');
          const c = await ruleCounters(lab, t);
          // A bad verdict is always repeated with the packet mark (also where it sets the conntrack mark), so the rules drop it.
          expect(c.get('netfence dpi: verdict bad to conntrack')).toBe(1);
          if (resetBad) expect(c.get('netfence dpi: bad flow, reset')).toBeGreaterThanOrEqual(1);
          // Without a reset the client keeps retransmitting: each retransmission dropped by the rule, not queued again.
          else expect(c.get('netfence dpi: bad flow, drop')).toBeGreaterThanOrEqual(3);
          const s = (await h.stats())[0]?.reader;
          expect(s?.bad).toBe(1);

          const good = await pair(
            () => traffic<{ conns: { bytes: number; head: string }[] }>(t.s, ['tcp-sink', '5400', '4000', '1']),
            () => traffic<{ error: string | null }>(t.c, ['tcp-chat', '198.18.2.2', '5400', '100', 'fine', 'still-fine']),
          );
          expect(good.send.error).toBeNull();
          expect(good.recv.conns[0]?.head).toBe('finestill-fine');
        } finally {
          await h.close();
          await applied.rollback();
        }
      });
    });
  }

  it('fail-open accepts and fail-closed drops steered packets with no reader bound and after the reader is SIGKILLed', async () => {
    await withLab('nfqfail', async (lab) => {
      const t = await topo(lab);
      const seen: Record<string, number> = {};
      for (const failOpen of [true, false]) {
        const applied = await steer(t, { queues: [43, 1], failOpen, packets: 12 });
        try {
          const expectNoReader = failOpen ? 3 : 0;
          seen[`${failOpen}:none`] = (await udp(t, 9600, 3, 'none')).count;
          expect(seen[`${failOpen}:none`]).toBe(expectNoReader);

          const h = await open({ netns: t.r.netns, queues: [43, 1], failOpen, handlerModule: HANDLER, handlerOptions: { verdict: 'accept' } });
          try {
            expect((await udp(t, 9600, 3, 'reader')).count).toBe(3);
            const pid = h.pids().get(43);
            expect(pid).toBeGreaterThan(0);
            const exited = new Promise((r) => h.once('exit', r));
            process.kill(pid as number, 'SIGKILL');
            const ev = (await exited) as { signal: string; expected: boolean };
            expect(ev.signal).toBe('SIGKILL');
            expect(ev.expected).toBe(false);
            await sleep(100);
            seen[`${failOpen}:killed`] = (await udp(t, 9600, 3, 'killed')).count;
            expect(seen[`${failOpen}:killed`]).toBe(expectNoReader);
            // The kernel has no reader for the queue any more.
            const proc = await run(['cat', '/proc/net/netfilter/nfnetlink_queue'], { netns: t.r.netns });
            expect(proc.ok && proc.val.stdout.split('\n').some((l) => l.trim().split(/\s+/)[0] === '43')).toBe(false);
          } finally {
            await h.close();
          }
        } finally {
          await applied.rollback();
        }
      }
      console.log(`[nfqueue] datagrams through (of 3): ${JSON.stringify(seen)}`);
    });
  });

  it('IPv6 flows are steered too, and the undo removes every rule', async () => {
    await withLab('nfqundo', async (lab) => {
      const t = await topo(lab);
      const { chain } = steeringNames();
      const applied = await steer(t, { queues: [44, 1], failOpen: false, packets: 3, hooks: ['forward'] });
      const h = await open({ netns: t.r.netns, queues: [44, 1], failOpen: false, handlerModule: HANDLER, handlerOptions: { verdict: 'accept' } });
      try {
        expect((await udp(t, 9700, 6, 'six', { v6: true, interval: 250 })).count).toBe(6);
        expect(await queued(h, 44)).toBe(3);
      } finally {
        await h.close();
      }
      const viaNft = await nftQueue(t);
      const ours = async (): Promise<boolean[]> =>
        viaNft
          ? [(await lab.sh(t.r, ['nft', 'list', 'tables'])).stdout.includes(steeringNames().table)]
          : await Promise.all(['iptables-nft', 'ip6tables-nft'].map(async (tool) => (await lab.sh(t.r, [tool, '-S'])).stdout.includes(chain)));
      expect(await ours()).not.toContain(false);
      const rb = await applied.rollback();
      expect(rb.ok).toBe(true);
      expect(await ours()).not.toContain(true);
      // The nft form never touches xtables: no filter tables appear.
      if (viaNft) expect((await lab.sh(t.r, ['nft', 'list', 'tables'])).stdout).not.toMatch(/table ip6? filter/);
      // With the rules gone, traffic flows without any reader even though the plan was fail-closed.
      expect((await udp(t, 9700, 2, 'free')).count).toBe(2);
    });
  });
});
