/**
 * bench/xdp-drop: packets dropped per second by the XDP blocklist (native
 * mode on a veth pair) against the nftables-set fallback (netdev ingress
 * hook), both holding 100,000 entries, with the same sender in the same
 * run: bench/xdp-sender.ts blasting UDP frames (AF_PACKET, sendmmsg) from a listed
 * source for a bounded time. Drops are read from each backend's counters;
 * three alternating rounds per backend, medians compared. Prints the ratio.
 *
 * Run as root: npx tsx bench/xdp-drop.ts
 */
import { cpus, loadavg } from 'node:os';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withLab, type LabHost } from '../src/lab/index.js';
import { run } from '../src/host/run.js';
import { XdpBlocklist } from '../src/xdp/xdp-blocklist.js';
import { PIN_ROOT } from '../src/xdp/loader.js';

const ENTRIES = 100_000;
const SECONDS = 2;
const ROUNDS = 3; // alternating XDP / nft, medians reported
const SRC = '198.18.1.2';
const DST = '198.18.1.1';

async function blast(a: LabHost, iface: string, dstMac: string): Promise<number> {
  const r = await run(['npx', 'tsx', fileURLToPath(new URL('./xdp-sender.ts', import.meta.url)), iface, dstMac, SRC, DST, String(SECONDS)], { netns: a.netns, timeoutMs: (SECONDS + 60) * 1000 });
  if (r.err) throw r.val;
  return Number(/sent=(\d+)/.exec(r.val.stdout)?.[1] ?? 0);
}

/** One timed blast against an attached blocklist: drops/s from its counters, offered pkt/s from the sender. */
async function measure(a: LabHost, iface: string, dstMac: string, bl: XdpBlocklist): Promise<{ dropsPerS: number; sentPerS: number }> {
  const before = (await bl.stats()).unwrap();
  const sent = await blast(a, iface, dstMac);
  const after = (await bl.stats()).unwrap();
  return { dropsPerS: (after.dropped.packets - before.dropped.packets) / SECONDS, sentPerS: sent / SECONDS };
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)] ?? 0;
}

const names: string[] = [];
try {
  await withLab('xdpdrop', async (lab) => {
    const a = await lab.host('a');
    const b = await lab.host('b');
    const l = await lab.link({ host: a, addrs: [`${SRC}/24`] }, { host: b, addrs: [`${DST}/24`] });
    const macB = JSON.parse((await lab.sh(b, ['ip', '-j', 'link', 'show', 'dev', l.b])).stdout)[0].address as string;
    await lab.sh(a, ['ip', 'neigh', 'replace', DST, 'lladdr', macB, 'dev', l.a, 'nud', 'permanent']);
    const mk = (backend: 'xdp' | 'nft'): XdpBlocklist => {
      const name = `bench_drop_${backend}_${process.pid}`;
      names.push(name);
      return new XdpBlocklist({ iface: l.b, netns: b.netns, name, backend, maxEntries: ENTRIES + 16 });
    };
    const list = [...Array.from({ length: ENTRIES - 1 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), SRC];
    // each round attaches one backend, loads the list, blasts, and detaches it: exactly one filters at a time
    const xdpBl = mk('xdp');
    const nftBl = mk('nft');
    const rounds: { xdp: number[]; nft: number[]; xdpSent: number[]; nftSent: number[] } = { xdp: [], nft: [], xdpSent: [], nftSent: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const which of ['xdp', 'nft'] as const) {
        const bl = which === 'xdp' ? xdpBl : nftBl;
        (await bl.apply()).unwrap();
        (await bl.replace(list)).unwrap();
        const m = await measure(a, l.a, macB, bl);
        (await bl.destroy()).unwrap();
        rounds[which].push(m.dropsPerS);
        rounds[which === 'xdp' ? 'xdpSent' : 'nftSent'].push(m.sentPerS);
      }
    }
    const xdp = { dropsPerS: median(rounds.xdp), sentPerS: median(rounds.xdpSent) };
    const nft = { dropsPerS: median(rounds.nft), sentPerS: median(rounds.nftSent) };
    const fmt = (n: number): string => Math.round(n).toLocaleString('en');
    console.log(`XDP (native, veth), ${ENTRIES.toLocaleString('en')} entries: median ${fmt(xdp.dropsPerS)} drops/s (sender offered ${fmt(xdp.sentPerS)} pkt/s)`);
    console.log(`nft set fallback (netdev ingress), ${ENTRIES.toLocaleString('en')} entries: median ${fmt(nft.dropsPerS)} drops/s (sender offered ${fmt(nft.sentPerS)} pkt/s)`);
    console.log(`rounds (drops/s): XDP ${rounds.xdp.map(fmt).join(', ')}; nft ${rounds.nft.map(fmt).join(', ')}`);
    console.log(`load average: ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} CPUs`);
    console.log(`ratio: XDP drops ${(xdp.dropsPerS / nft.dropsPerS).toFixed(2)}x the packets per second of the nft fallback`);
  });
} finally {
  for (const n of names) if (existsSync(join(PIN_ROOT, n))) rmSync(join(PIN_ROOT, n), { recursive: true, force: true });
  if (existsSync(PIN_ROOT) && readdirSync(PIN_ROOT).length === 0) rmSync(PIN_ROOT, { recursive: true, force: true });
}
