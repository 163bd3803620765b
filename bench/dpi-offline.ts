/**
 * Offline classification speed: netfence's DPI engine against nDPI's
 * ndpiReader (Debian libndpi-bin, nDPI 4.2) on the same captures — the 543
 * captures of the nDPI regression corpus in ../shared/corpus/ndpi — in the
 * same run.
 *
 * Figure `dpi.offline-vs-ndpireader`: packets per second, ours / ndpiReader's,
 * goal ≥ 1.0. Both sides count processing only (file reading + decoding +
 * classification), not process start-up: for ndpiReader its own "Packet
 * Processing Time" over one run on a playlist of every capture; for us the
 * in-process time of classifyPcapSync over every capture (after two warm-up
 * passes, the first also collects the verdicts). The rounds alternate which side goes
 * first (bench/lib/harness.ts) and the medians are compared. Wall-clock figures
 * with start-up, and the BitTorrent flows found by only one of the two, are in
 * the detail.
 *
 * Run: npx tsx bench/dpi-offline.ts [--rounds N]
 * No namespace or packet is involved: it reads files only.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { classifyPcapSync } from '../src/dpi/classify-pcap.js';
import { run } from '../src/host/run.js';
import { alternate, report } from './lib/harness.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pcapDir = path.resolve(repoRoot, '../shared/corpus/ndpi/pcap');
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Math.max(1, Number(process.argv[roundsArg + 1])) : 7;

function key(proto: string, a: string, ap: number, b: string, bp: number): string {
  const x = `${a.toLowerCase()}|${ap}`;
  const y = `${b.toLowerCase()}|${bp}`;
  return x <= y ? `${proto}|${x}|${y}` : `${proto}|${y}|${x}`;
}

async function main(): Promise<void> {
  const files = readdirSync(pcapDir)
    .sort()
    .map((f) => path.join(pcapDir, f));
  const dir = mkdtempSync(path.join(tmpdir(), 'netfence-bench-'));
  try {
    const playlist = path.join(dir, 'playlist.txt');
    const csv = path.join(dir, 'flows.csv');
    writeFileSync(playlist, files.join('\n') + '\n');

    // --- ours: one pass over every capture; returns processing milliseconds
    const oursBt = new Map<string, string>();
    let packets = 0;
    const pass = (collect: boolean): number => {
      const t0 = performance.now();
      let n = 0;
      for (const f of files) {
        const r = classifyPcapSync(f);
        if (r.err) throw r.val;
        n += r.val.packets;
        if (collect)
          for (const fl of r.val.flows)
            if (fl.verdict === 'bittorrent')
              oursBt.set(key(fl.transport === 'tcp' ? '6' : '17', fl.client.addr, fl.client.port, fl.server.addr, fl.server.port), `${path.basename(f)}: ${fl.reason}`);
      }
      packets = n;
      return performance.now() - t0;
    };
    pass(true); // warm-up (JIT) and verdicts
    pass(false); // a second warm-up pass: the optimising compiler has seen every path

    // --- ndpiReader on a playlist of the same files; its own processing time
    let ndpiPackets = 0;
    let ndpiWallMs = 0;
    let ndpiSetupMs = 0;
    const ndpiPass = async (): Promise<number> => {
      const w0 = performance.now();
      const r = await run(['ndpiReader', '-i', playlist, '-C', csv], { timeoutMs: 300_000, what: 'ndpiReader' });
      ndpiWallMs = performance.now() - w0;
      if (r.err) throw r.val;
      const out = r.val.stdout;
      const proc = /Packet Processing Time:\s+([\d.]+)\s*msec/.exec(out);
      const setup = /Setup Time:\s+([\d.]+)\s*msec/.exec(out);
      const total = /IP packets:\s+\d+\s+of\s+(\d+)\s+packets total/.exec(out);
      if (!proc || !total) throw new Error(`cannot read ndpiReader statistics:\n${out.slice(0, 2000)}`);
      ndpiPackets = Number(total[1]);
      ndpiSetupMs = Number(setup?.[1] ?? 0);
      return Number(proc[1]);
    };

    const ms = await alternate(ROUNDS, async () => pass(false), ndpiPass);
    const oursPps = packets / (ms.ours / 1000);
    const ndpiPps = ndpiPackets / (ms.baseline / 1000);

    // ndpiReader's BitTorrent flows from its CSV (last round)
    const ndpiBt = new Set<string>();
    const lines = readFileSync(csv, 'utf8').split('\n');
    const header = (lines[0] ?? '').replace(/^#/, '').split(',');
    const col = (n: string) => header.indexOf(n);
    const [cProto, cSrc, cSport, cDst, cDport, cName] = ['protocol', 'src_ip', 'src_port', 'dst_ip', 'dst_port', 'ndpi_proto'].map(col);
    for (const l of lines.slice(1)) {
      const f = l.split(',');
      if (!f[cName!] || !/BitTorrent/.test(f[cName!]!)) continue;
      ndpiBt.add(key(f[cProto!]!, f[cSrc!]!, Number(f[cSport!]), f[cDst!]!, Number(f[cDport!])));
    }

    // --- wall clock of ours including node + tsx start-up: one child process
    const w1 = performance.now();
    const child = await run(
      [process.execPath, '--import', 'tsx', '-e', `import('${path.join(repoRoot, 'src/dpi/classify-pcap.ts')}').then(m=>{for(const f of ${JSON.stringify(files)}){m.classifyPcapSync(f)}})`],
      { timeoutMs: 300_000, what: 'node classify' },
    );
    const oursWallMs = performance.now() - w1;
    if (child.err) throw child.val;

    const onlyNdpi = [...ndpiBt].filter((k) => !oursBt.has(k));
    const onlyOurs = [...oursBt.keys()].filter((k) => !ndpiBt.has(k));
    console.log(`captures: ${files.length}, packets: ${packets} (ndpiReader counted ${ndpiPackets})`);
    console.log(`ours: ${ms.oursSamples.map((x) => x.toFixed(0)).join(' ')} ms processing; wall with node+tsx start-up ${oursWallMs.toFixed(0)} ms`);
    console.log(`ndpiReader: ${ms.baselineSamples.map((x) => x.toFixed(0)).join(' ')} ms processing; setup ${ndpiSetupMs} ms; wall ${ndpiWallMs.toFixed(0)} ms`);
    console.log(`BitTorrent flows: ndpiReader 4.2 ${ndpiBt.size}, ours ${oursBt.size}, both ${ndpiBt.size - onlyNdpi.length}`);
    for (const k of onlyNdpi) console.log(`  only ndpiReader: ${k}`);
    for (const k of onlyOurs) console.log(`  only ours: ${k}  (${oursBt.get(k)})`);
    report({
      id: 'dpi.offline-vs-ndpireader',
      figure: `offline classification of the nDPI corpus (${files.length} captures, ${packets} packets)`,
      ours: Math.round(oursPps),
      baseline: Math.round(ndpiPps),
      baselineName: 'ndpiReader 4.2 (its Packet Processing Time)',
      unit: 'packets/s',
      goal: { ratioMin: 1.0 },
      detail: {
        rounds: ms.rounds,
        oursMs: ms.oursSamples,
        ndpiReaderMs: ms.baselineSamples,
        oursWallMsWithStartup: Math.round(oursWallMs),
        ndpiReaderWallMs: Math.round(ndpiWallMs),
        bittorrentFlows: { ndpiReader: ndpiBt.size, ours: oursBt.size, onlyNdpiReader: onlyNdpi.length, onlyOurs: onlyOurs.length },
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
