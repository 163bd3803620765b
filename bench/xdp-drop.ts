/**
 * bench/xdp-drop — figures `xdp.drop.native-vs-nft` and `xdp.drop.generic-vs-nft`:
 * the CPU the receiver spends per dropped packet, for the XDP blocklist in
 * native mode (veth native XDP), in generic mode, and for the nftables-set
 * fallback (netdev ingress hook), each holding the same 100,000 entries.
 *
 * The receiver is isolated: the receiving veth runs its NAPI *threaded*
 * (/sys/class/net/<dev>/threaded, GRO on so that it has NAPI without an XDP
 * program), so its whole receive path — native XDP, or the skb, generic XDP
 * and the netdev hook — runs in one kernel thread, pinned to the last CPU,
 * whose exact run time (/proc/<pid>/schedstat) is the receiver's CPU, free of
 * whatever else the shared machine runs. Cost per drop = that run time over
 * the drops the backend counted in the same interval.
 *
 * Generators, pinned to the other CPUs: in-kernel XDP frame generators
 * (BPF_PROG_TEST_RUN live frames redirected out of the sending veth, what
 * xdp-trafficgen does; this kernel has no pktgen), or AF_PACKET senders
 * where live frames are not available (bench/xdp-sender.ts).
 *
 * The receive thread runs at real-time priority (SCHED_FIFO) so that the rest
 * of the machine cannot starve it. The generators run unpaced on their own
 * CPU(s), so their rate does not depend on the receiver: every backend gets
 * the same offered load. Rounds alternate the order of the backends; medians.
 * The limit of each backend is `drop path` when its receive thread was busy
 * ≥ 90% of the time (CPU) or frames were lost before the blocklist (the
 * veth's 256-frame ring was full: wake-up latency), else `sender`. The cost
 * per drop counts the receive thread's CPU only, whatever the limit.
 * Figure: ours = XDP drops per receive-CPU ms, baseline = nft drops per
 * receive-CPU ms, so ratio = (nft CPU per drop) / (XDP CPU per drop); goal ≥ 3 for native
 * XDP. The generic figure has no goal: generic XDP runs after the skb is built, where the nft
 * netdev hook runs too, so it cannot be several times cheaper; it is measured and shown.
 *
 * Run as root: npx tsx bench/xdp-drop.ts
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { withLab, type LabHost } from '../src/lab/index.js';
import { nftList } from '../src/host/nft.js';
import { run } from '../src/host/run.js';
import { startProcess, type SpawnedProcess } from '../src/host/spawn.js';
import { BlocklistMaps } from '../src/xdp/maps.js';
import { XdpBlocklist } from '../src/xdp/xdp-blocklist.js';
import { median, report } from './lib/harness.js';

const ENTRIES = 100_000;
const SRC = '198.18.1.2';
const DST = '198.18.1.1';
const NCPU = cpus().length;
const WINDOW_MS = 2000;
const ROUNDS = 5;
const RX_CPU = NCPU - 1;
const GEN_CPUS = Math.max(1, NCPU - 1);
const SCRIPT = fileURLToPath(new URL('./xdp-sender.ts', import.meta.url));

type Kind = 'native' | 'generic' | 'nft';

/** Threads of the receiving device's NAPI (`napi/<dev>-<id>`) and their run time in ms (exact: schedstat). */
function napiThreads(dev: string): { pids: number[]; ms: number } {
  const pids: number[] = [];
  let ns = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (!readFileSync(`/proc/${d}/comm`, 'utf8').startsWith(`napi/${dev}-`)) continue;
      pids.push(Number(d));
      ns += Number(readFileSync(`/proc/${d}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // gone meanwhile
    }
  }
  return { pids, ms: ns / 1e6 };
}

/** One long-lived sender: `blast()` asks it to send and waits for its answer. */
class Sender {
  private waiting: ((m: { sent: number; ms: number; error?: string }) => void) | undefined;
  private constructor(readonly p: SpawnedProcess) {
    p.on('message', (m) => this.waiting?.(m as { sent: number; ms: number }));
  }
  static async start(a: LabHost, cpu: number, iface: string, mac: string, live: boolean): Promise<Sender> {
    const p = startProcess(['taskset', '-c', String(cpu), process.execPath, '--import', 'tsx', SCRIPT, iface, mac, SRC, DST, ...(live ? ['--xdp-live'] : [])], { netns: a.netns, ipc: true, stdout: 'pipe', stderr: 'pipe' });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      let err = '';
      p.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve();
      });
      p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      void p.exited.then((e) => reject(new Error(`sender exited before it was ready (${JSON.stringify(e)}): ${err.slice(0, 500)}`)));
    });
    return new Sender(p);
  }
  blast(ms: number, pps: number): Promise<{ sent: number; ms: number }> {
    return new Promise((resolve, reject) => {
      this.waiting = (m) => (m.error ? reject(new Error(m.error)) : resolve(m));
      this.p.send({ blast: { ms, pps } });
    });
  }
  stop(): void {
    if (this.p.connected) this.p.send({ exit: true });
    setTimeout(() => this.p.kill('SIGKILL'), 2000).unref();
  }
}

interface Window {
  drops: number;
  sent: number;
  wallMs: number;
  /** Run time of the receive thread. */
  rxMs: number;
}

await withLab('xdpdrop', async (lab) => {
  const a = await lab.host('a');
  const b = await lab.host('b');
  const l = await lab.link({ host: a, addrs: [`${SRC}/24`] }, { host: b, iface: `xb${process.pid % 100_000}`, addrs: [`${DST}/24`] });
  const macB = JSON.parse((await lab.sh(b, ['ip', '-j', 'link', 'show', 'dev', l.b])).stdout)[0].address as string;
  const list = [...Array.from({ length: ENTRIES - 1 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), SRC];
  const blocklists: Record<Kind, XdpBlocklist> = {
    native: new XdpBlocklist({ iface: l.b, netns: b.netns, name: `bench_drop_n_${process.pid}`, backend: 'xdp', mode: 'native', maxEntries: ENTRIES + 16 }),
    generic: new XdpBlocklist({ iface: l.b, netns: b.netns, name: `bench_drop_g_${process.pid}`, backend: 'xdp', mode: 'generic', maxEntries: ENTRIES + 16 }),
    nft: new XdpBlocklist({ iface: l.b, netns: b.netns, name: `bench_drop_f_${process.pid}`, backend: 'nft', maxEntries: ENTRIES + 16 }),
  };
  // the receiver: NAPI (GRO on), threaded, so that its receive path is one thread we can time
  (await run([process.execPath, '--import', 'tsx', SCRIPT, l.b, '--gro'], { netns: b.netns })).unwrap();
  (await run(['ip', 'netns', 'exec', b.netns, 'tee', `/sys/class/net/${l.b}/threaded`], { input: '1\n' })).unwrap();
  // the generators: XDP frames from BPF_PROG_TEST_RUN live mode where the kernel has it (one per CPU), else AF_PACKET senders (two per CPU)
  let generator = 'xdp-live';
  let senders: Sender[] = [];
  try {
    senders = await Promise.all(Array.from({ length: GEN_CPUS }, (_, i) => Sender.start(a, i % GEN_CPUS, l.a, macB, true)));
    await Promise.all(senders.map((s) => s.blast(50, 0)));
  } catch (e) {
    console.log(`XDP live-frames generator not usable here (${e instanceof Error ? e.message.split('\n')[0] : String(e)}): AF_PACKET senders`);
    for (const s of senders) s.stop();
    generator = 'af-packet';
    senders = await Promise.all(Array.from({ length: 2 * GEN_CPUS }, (_, i) => Sender.start(a, i % GEN_CPUS, l.a, macB, false)));
  }
  const SENDERS = senders.length;
  const GEN = generator === 'xdp-live' ? `${SENDERS} in-kernel XDP generator(s) (BPF_PROG_TEST_RUN live frames)` : `${SENDERS} AF_PACKET senders`;
  console.log(`generator: ${GEN} on CPU ${GEN_CPUS > 1 ? `0-${GEN_CPUS - 1}` : '0'}; receive thread of ${l.b} on CPU ${RX_CPU}`);

  /** Packets the attached backend dropped so far (its own counters). */
  async function dropped(kind: Kind): Promise<number> {
    const bl = blocklists[kind];
    if (kind !== 'nft') {
      const m = BlocklistMaps.open(bl.pinDir);
      try {
        return Number(m.counters().drop.packets);
      } finally {
        m.close();
      }
    }
    const r = (await nftList(['counters', 'table', 'netdev', bl.nftTable], { netns: b.netns })).unwrap();
    const c = (r.nftables ?? []).map((x) => (x as { counter?: { name: string; packets: number } }).counter).find((x) => x?.name === 'dropped');
    return c?.packets ?? 0;
  }

  /** One interval of `ms` at `ppsPerSender` (0: unpaced): drops, frames sent, the receive thread's run time. */
  async function window(kind: Kind, ms: number, ppsPerSender: number): Promise<Window> {
    // an attach or detach may re-create the device's NAPI: make sure it is threaded now
    (await run(['ip', 'netns', 'exec', b.netns, 'tee', `/sys/class/net/${l.b}/threaded`], { input: '1\n' })).unwrap();
    const t = napiThreads(l.b);
    if (t.pids.length === 0) throw new Error(`no NAPI thread of ${l.b}: threaded NAPI did not take`);
    for (const pid of t.pids) {
      (await run(['taskset', '-p', '-c', String(RX_CPU), String(pid)])).unwrap();
      // real-time priority: the receive thread runs whenever it has frames, whatever else the shared machine runs
      (await run(['chrt', '-f', '-p', '50', String(pid)])).unwrap();
    }
    const d0 = await dropped(kind);
    const r0 = napiThreads(l.b);
    const t0 = performance.now();
    const r = await Promise.all(senders.map((s) => s.blast(ms, ppsPerSender)));
    const wallMs = performance.now() - t0;
    const r1 = napiThreads(l.b);
    const drops = (await dropped(kind)) - d0;
    if (r1.pids.join() !== r0.pids.join()) throw new Error(`the NAPI thread of ${l.b} changed during the interval`);
    return { drops, sent: r.reduce((n, x) => n + x.sent, 0), wallMs, rxMs: Math.max(0.001, r1.ms - r0.ms) };
  }

  async function attach(kind: Kind): Promise<void> {
    const bl = blocklists[kind];
    const at = (await bl.apply()).unwrap();
    if (kind !== 'nft' && at.mode !== kind) throw new Error(`${kind} XDP was asked for, ${at.mode} is in force`);
    (await bl.replace(list)).unwrap();
  }

  const kinds: Kind[] = ['native', 'generic', 'nft'];
  try {
    // alternating rounds of unpaced windows: the generators' rate does not depend on the receiver (another CPU), so every backend gets the same offered load
    const eff: Record<Kind, number[]> = { native: [], generic: [], nft: [] };
    const wins: Record<Kind, Window[]> = { native: [], generic: [], nft: [] };
    const invalid: Record<Kind, number> = { native: 0, generic: 0, nft: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of round % 2 === 0 ? kinds : [...kinds].reverse()) {
        await attach(kind);
        // a window is valid when it dropped frames and the receive thread ran for them (≥ 50 ns each); seen
        // on this VM right after an attach: no drop, or drops handled outside the thread. Take another.
        const valid = (w: Window): boolean => w.drops > 0 && (1e6 * w.rxMs) / w.drops >= 50;
        let w = await window(kind, WINDOW_MS, 0);
        for (let retry = 0; retry < 2 && !valid(w); retry++) {
          invalid[kind]++;
          w = await window(kind, WINDOW_MS, 0);
        }
        (await blocklists[kind].destroy()).unwrap();
        if (!valid(w)) throw new Error(`${kind}: no valid window in three (${w.drops} drops, ${w.rxMs.toFixed(1)} ms of receive thread, ${w.sent} frames sent)`);
        eff[kind].push(w.drops / w.rxMs);
        wins[kind].push(w);
      }
    }
    const per = (k: Kind) => {
      const w = wins[k];
      const offered = median(w.map((x) => (1000 * x.sent) / x.wallMs));
      const drops = median(w.map((x) => (1000 * x.drops) / x.wallMs));
      const lostPct = median(w.map((x) => (x.sent > 0 ? (100 * Math.max(0, x.sent - x.drops)) / x.sent : 0)));
      const rxBusy = median(w.map((x) => x.rxMs / x.wallMs));
      const busy = `receive thread busy ${(100 * rxBusy).toFixed(0)}%`;
      const limit =
        rxBusy >= 0.9
          ? `drop path (CPU: ${busy}, ${lostPct.toFixed(1)}% of the frames lost before the blocklist)`
          : lostPct > 1
            ? `drop path (its 256-frame ring: ${lostPct.toFixed(1)}% of the frames lost before the blocklist while the ${busy}: the thread's wake-up latency, not its CPU)`
            : `sender (${GEN}; ${busy}, nothing lost)`;
      return { offeredPerS: Math.round(offered), dropsPerS: Math.round(drops), lostPct: Number(lostPct.toFixed(2)), rxBusy: Number(rxBusy.toFixed(3)), nsPerDrop: Math.round(1e6 / median(eff[k])), limit };
    };
    const stat = { native: per('native'), generic: per('generic'), nft: per('nft') };
    for (const k of kinds) {
      const x = stat[k];
      console.log(`${k}: ${x.nsPerDrop} ns of receive CPU per drop (rounds: ${eff[k].map((e) => Math.round(1e6 / e)).join(', ')} ns); ${x.dropsPerS.toLocaleString('en')} drops/s of ${x.offeredPerS.toLocaleString('en')} frames/s offered; limit: ${x.limit}`);
    }
    for (const xdp of ['native', 'generic'] as const) {
      report({
        id: `xdp.drop.${xdp}-vs-nft`,
        figure: `XDP ${xdp} vs nft set: drops per ms of receive CPU (100,000 entries)`,
        ours: median(eff[xdp]),
        baseline: median(eff.nft),
        baselineName: 'nft netdev-ingress set drop',
        unit: 'drops per receive-CPU ms',
        // The issue's row (XDP drop ≥ 3× cheaper than the nft set) is XdpBlocklist's own mode, native XDP.
        // Generic XDP, the fallback where a driver has no native XDP, runs after the kernel has built the
        // skb — the nft netdev hook's place — so it is reported beside it, without that goal.
        goal: xdp === 'native' ? { ratioMin: 3 } : {},
        limit: `${xdp}: ${stat[xdp].limit}; nft: ${stat.nft.limit}`,
        detail: {
          oursNsPerDrop: stat[xdp].nsPerDrop,
          nftNsPerDrop: stat.nft.nsPerDrop,
          oursSamples: eff[xdp].map((x) => Math.round(x)),
          baselineSamples: eff.nft.map((x) => Math.round(x)),
          ours: stat[xdp],
          nft: stat.nft,
          generator: GEN,
          rxCpu: RX_CPU,
          cpus: NCPU,
          rounds: ROUNDS,
          windowMs: WINDOW_MS,
          invalidWindowsRetried: invalid,
          loadavg: loadavg()[0]?.toFixed(1),
        },
      });
    }
  } finally {
    for (const s of senders) s.stop();
    for (const k of kinds) await blocklists[k].destroy();
  }
});
