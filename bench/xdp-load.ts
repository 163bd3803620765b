/**
 * bench/xdp-load — figure `xdp.add-1m`: XdpBlocklist.add() of 1,000,000 IPv4
 * addresses (validation, packing, the bpf(2) batches), goal ≤ 1,000 ms.
 *
 * The blocklist is applied to a veth in a lab namespace (maps of 1,000,000
 * entries per list); each round clears it (an empty side) and times add().
 * Baseline, same run, alternating order: the floor of a single-threaded
 * loader — BPF_MAP_UPDATE_BATCH of the same keys already built in C memory,
 * into a fresh map of the same type and size, on one thread. add() may beat
 * it: it spreads its batches over the CPUs. Before each timed load, both
 * sides wait 2 s for the kernel to finish freeing the previous million elements.
 * Detail: the validation/packing alone and, for scale, one `bpftool map
 * update` process per entry (200 entries, extrapolated).
 *
 * Run as root: npx tsx bench/xdp-load.ts
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { withLab } from '../src/lab/index.js';
import { run } from '../src/host/run.js';
import { BPF_F_NO_PREALLOC, BpfCmd, BpfMapType, CMem, batchRaw, closeFd, mapCreate } from '../src/host/bpf.js';
import { XdpBlocklist } from '../src/xdp/xdp-blocklist.js';
import { packEntries } from '../src/xdp/packed.js';
import { alternate, median, report, timeMs } from './lib/harness.js';

const N = 1_000_000;
const ROUNDS = 3;
const BPFTOOL_ENTRIES = 200;
const SETTLE_MS = 2000;

/** 10.0.0.0 + i as text. */
const ip = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

/**
 * Let the kernel finish freeing what the previous side left (a million map
 * elements deleted by clear() or by closing the floor's map are freed after
 * an RCU grace period, on the same CPUs) before the next timed load.
 */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, SETTLE_MS));

/** One thread, prebuilt keys and values in C memory, 65,536 elements per call: the time of the kernel's inserts alone. */
function rawFloor(): number {
  const fd = mapCreate({ type: BpfMapType.HASH, keySize: 4, valueSize: 24, maxEntries: N, flags: BPF_F_NO_PREALLOC, name: 'bench_floor' });
  const keys = new CMem(N * 4);
  const vals = new CMem(N * 24);
  try {
    vals.buf.fill(0, 0, N * 24);
    for (let i = 0; i < N; i++) {
      keys.buf.writeUInt32BE((0x0a000000 + i) >>> 0, i * 4);
      vals.buf.writeUInt32LE(32, i * 24 + 16);
    }
    const t = performance.now();
    for (let done = 0; done < N; ) {
      const n = Math.min(65_536, N - done);
      const r = batchRaw(BpfCmd.MAP_UPDATE_BATCH, fd, { keys: keys.addr + BigInt(done * 4), values: vals.addr + BigInt(done * 24), count: n });
      if (r.ret < 0) throw new Error(`MAP_UPDATE_BATCH: errno ${-r.ret}`);
      done += r.count;
    }
    return performance.now() - t;
  } finally {
    keys.free();
    vals.free();
    closeFd(fd);
  }
}

await withLab('xdpload', async (lab) => {
  const a = await lab.host('a');
  const b = await lab.host('b');
  const l = await lab.link({ host: a, addrs: ['198.18.210.2/24'] }, { host: b, addrs: ['198.18.210.1/24'] });
  const name = `bench_load_${process.pid}`;
  const bl = new XdpBlocklist({ iface: l.b, netns: b.netns, name, backend: 'xdp', maxEntries: N });
  const entries = Array.from({ length: N }, (_, i) => ip(i));
  try {
    const at = (await bl.apply()).unwrap();
    const pack: number[] = [];
    const m = await alternate(
      ROUNDS,
      async () => {
        (await bl.clear()).unwrap();
        pack.push(await timeMs(async () => packEntries(entries).unwrap()));
        await settle();
        return timeMs(async () => (await bl.add(entries)).unwrap());
      },
      async () => {
        await settle();
        return rawFloor();
      },
    );
    const count = (await bl.stats()).unwrap().entries;
    if (count !== N) throw new Error(`expected ${N} entries after add(), the blocklist has ${count}`);
    // for scale: one bpftool process per entry, into the active side
    const pinned = join(bl.pinDir, 'nf_v4_a');
    const tb = await timeMs(async () => {
      for (let i = 0; i < BPFTOOL_ENTRIES; i++) {
        const key = ['198', '18', String(i >> 8), String(i & 255)];
        const value = Array.from({ length: 24 }, (_, k) => (k === 16 ? '32' : '0'));
        (await run(['bpftool', 'map', 'update', 'pinned', pinned, 'key', ...key, 'value', ...value])).unwrap();
      }
    });
    report({
      id: 'xdp.add-1m',
      figure: 'XdpBlocklist.add() of 1,000,000 IPv4 addresses',
      ours: m.ours,
      baseline: m.baseline,
      baselineName: 'raw BPF_MAP_UPDATE_BATCH of prebuilt keys, one thread',
      unit: 'ms',
      goal: { oursMax: 1000 },
      detail: {
        rounds: ROUNDS,
        oursSamples: m.oursSamples.map(Math.round),
        baselineSamples: m.baselineSamples.map(Math.round),
        validateAndPackMs: Math.round(median(pack)),
        bpftoolPerEntryExtrapolatedS: Math.round(((tb / BPFTOOL_ENTRIES) * N) / 1000),
        backend: `${at.backend}${at.mode ? ` ${at.mode}` : ''}`,
        cpus: cpus().length,
        loadavg: loadavg()[0]?.toFixed(1),
      },
    });
  } finally {
    (await bl.destroy()).unwrap();
  }
});
