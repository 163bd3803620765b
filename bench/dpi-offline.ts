/**
 * Offline classification speed: netfence's DPI engine against nDPI's
 * ndpiReader (Debian libndpi-bin, nDPI 4.2) on the same captures — the nDPI
 * regression corpus in ../shared/corpus/ndpi — in the same run.
 *
 * Figure: packets per second of ours / packets per second of ndpiReader.
 * Both figures count processing only (file reading + decoding + classification),
 * not process start-up: for ndpiReader its own "Packet Processing Time" over one
 * run on a playlist of every capture; for us the in-process time of
 * classifyPcapSync over every capture (after one warm-up pass).
 * Wall-clock figures (with start-up) are printed too.
 * Also compares ndpiReader 4.2's BitTorrent flows (its CSV) with ours.
 *
 * Run: npx tsx bench/dpi-offline.ts
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { classifyPcapSync } from '../src/dpi/classify-pcap.js';
import { run } from '../src/host/run.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pcapDir = path.resolve(repoRoot, '../shared/corpus/ndpi/pcap');

function key(proto: string, a: string, ap: number, b: string, bp: number): string {
  const x = `${a.toLowerCase()}|${ap}`;
  const y = `${b.toLowerCase()}|${bp}`;
  return x <= y ? `${proto}|${x}|${y}` : `${proto}|${y}|${x}`;
}

async function main(): Promise<void> {
  const files = readdirSync(pcapDir)
    .sort()
    .map((f) => path.join(pcapDir, f));

  // --- ours
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
  const oursMs = pass(false);

  // --- ndpiReader on a playlist of the same files
  const dir = mkdtempSync(path.join(tmpdir(), 'netfence-bench-'));
  try {
    const playlist = path.join(dir, 'playlist.txt');
    const csv = path.join(dir, 'flows.csv');
    writeFileSync(playlist, files.join('\n') + '\n');
    const w0 = performance.now();
    const r = await run(['ndpiReader', '-i', playlist, '-C', csv], { timeoutMs: 300_000, what: 'ndpiReader' });
    const ndpiWallMs = performance.now() - w0;
    if (r.err) throw r.val;
    const out = r.val.stdout;
    const proc = /Packet Processing Time:\s+([\d.]+)\s*msec/.exec(out);
    const setup = /Setup Time:\s+([\d.]+)\s*msec/.exec(out);
    const total = /IP packets:\s+\d+\s+of\s+(\d+)\s+packets total/.exec(out);
    if (!proc || !total) throw new Error(`cannot read ndpiReader statistics:\n${out.slice(0, 2000)}`);
    const ndpiMs = Number(proc[1]);
    const ndpiPackets = Number(total[1]);

    // ndpiReader's BitTorrent flows from its CSV
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

    // --- wall clock of ours including node start-up: one child process
    const w1 = performance.now();
    const child = await run(
      [process.execPath, '--import', 'tsx', '-e', `import('${path.join(repoRoot, 'src/dpi/classify-pcap.ts')}').then(m=>{for(const f of ${JSON.stringify(files)}){m.classifyPcapSync(f)}})`],
      { timeoutMs: 300_000, what: 'node classify' },
    );
    const oursWallMs = performance.now() - w1;
    if (child.err) throw child.val;

    const oursPps = packets / (oursMs / 1000);
    const ndpiPps = ndpiPackets / (ndpiMs / 1000);
    console.log(`captures: ${files.length}, packets: ${packets} (ndpiReader counted ${ndpiPackets})`);
    console.log(`ours:       ${oursMs.toFixed(0)} ms processing -> ${(oursPps / 1000).toFixed(1)} K packets/s; wall with node+tsx start-up ${oursWallMs.toFixed(0)} ms`);
    console.log(
      `ndpiReader: ${ndpiMs.toFixed(0)} ms processing -> ${(ndpiPps / 1000).toFixed(1)} K packets/s; setup ${setup?.[1] ?? '?'} ms; wall ${ndpiWallMs.toFixed(0)} ms`,
    );
    console.log(`ratio (ours / ndpiReader packets per second, processing only): ${(oursPps / ndpiPps).toFixed(3)}`);
    console.log(`ratio (wall clock, ndpiReader / ours): ${(ndpiWallMs / oursWallMs).toFixed(3)}`);

    const both = [...ndpiBt].filter((k) => oursBt.has(k));
    const onlyNdpi = [...ndpiBt].filter((k) => !oursBt.has(k));
    const onlyOurs = [...oursBt.keys()].filter((k) => !ndpiBt.has(k));
    console.log(`\nBitTorrent flows: ndpiReader 4.2 ${ndpiBt.size}, ours ${oursBt.size}, both ${both.length}`);
    console.log('only ndpiReader 4.2 (CSV row; flows of the playlist run are merged across files by 5-tuple):');
    for (const k of onlyNdpi) console.log(`  ${k}`);
    console.log('only ours:');
    for (const k of onlyOurs) console.log(`  ${k}  (${oursBt.get(k)})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
