/**
 * Accuracy of the BitTorrent classifier on the nDPI regression corpus
 * (../shared/corpus/ndpi, read in place, never copied).
 *
 * - Every flow nDPI labels BitTorrent with `Confidence: DPI` must be detected
 *   (flows matched by 5-tuple, either orientation).
 * - Every flow we call BitTorrent must be one nDPI calls BitTorrent too (DPI);
 *   flows nDPI calls BitTorrent only through its cache or a guess are listed and
 *   judged case by case (docs/dpi-classifier.md); anything else is a false
 *   positive and fails the test.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { classifyPcapSync, type ClassifiedFlow } from '../../src/dpi/classify-pcap.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const corpus = path.resolve(repoRoot, '../shared/corpus/ndpi');

interface NdpiFlow {
  transport: 'tcp' | 'udp';
  a: string;
  b: string;
  proto: string;
  confidence: string;
  line: string;
}

function parseEndpoint(s: string): string | undefined {
  if (s.startsWith('[')) {
    const close = s.indexOf(']:');
    if (close < 0) return undefined;
    return `${s.slice(1, close).toLowerCase()}|${Number(s.slice(close + 2))}`;
  }
  const c = s.lastIndexOf(':');
  if (c < 0) return undefined;
  return `${s.slice(0, c)}|${Number(s.slice(c + 1))}`;
}

function tupleKey(transport: string, a: string, b: string): string {
  return a <= b ? `${transport}|${a}|${b}` : `${transport}|${b}|${a}`;
}

const LINE = /^\s*\d+\s+(TCP|UDP)\s+(\S+)\s+(?:<->|->)\s+(\S+)\s+\[proto: ([^\]]+)\]/;

/** Parse the per-flow lines of an nDPI result file (format: corpus README.md). */
function parseNdpiOut(text: string): NdpiFlow[] {
  const flows: NdpiFlow[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const a = parseEndpoint(m[2]!);
    const b = parseEndpoint(m[3]!);
    if (!a || !b) continue;
    const conf = /\[Confidence: ([^\]]+)\]/.exec(line)?.[1] ?? 'Unknown';
    flows.push({ transport: m[1]!.toLowerCase() as 'tcp' | 'udp', a, b, proto: m[4]!, confidence: conf, line: line.trim().slice(0, 160) });
  }
  return flows;
}

const isBt = (f: NdpiFlow): boolean => /(^|[/.])BitTorrent\b/.test(f.proto);

function ep(e: { addr: string; port: number }): string {
  return e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`;
}

describe('BitTorrent classifier accuracy on the nDPI corpus', () => {
  it('detects every nDPI BitTorrent (Confidence: DPI) flow and has no false positives', () => {
    expect(existsSync(path.join(corpus, 'pcap')), `corpus not found at ${corpus}`).toBe(true);
    const captures = readdirSync(path.join(corpus, 'pcap')).sort();
    const started = performance.now();
    let flowsOurs = 0;
    let flowsNdpi = 0;
    let packets = 0;
    const positives: { capture: string; f: NdpiFlow; ours: ClassifiedFlow[] }[] = [];
    const missed: string[] = [];
    const falsePositives: string[] = [];
    const caseByCase: string[] = [];
    const nonBtCaptureDetections: string[] = [];
    const ndpiOnlyCache: string[] = [];
    for (const capture of captures) {
      const r = classifyPcapSync(path.join(corpus, 'pcap', capture));
      expect(r.err, `${capture}: ${r.err ? r.val.message : ''}`).toBe(false);
      if (r.err) continue;
      const res = r.val;
      packets += res.packets;
      flowsOurs += res.flows.length;
      const ours = new Map<string, ClassifiedFlow[]>();
      for (const f of res.flows) {
        const k = tupleKey(f.transport, `${f.client.addr}|${f.client.port}`, `${f.server.addr}|${f.server.port}`);
        const list = ours.get(k);
        if (list) list.push(f);
        else ours.set(k, [f]);
      }
      const outPath = path.join(corpus, 'result', `${capture}.out`);
      const ndpi = existsSync(outPath) ? parseNdpiOut(readFileSync(outPath, 'utf8')) : [];
      flowsNdpi += ndpi.length;
      const ndpiByKey = new Map<string, NdpiFlow>();
      for (const f of ndpi) ndpiByKey.set(tupleKey(f.transport, f.a, f.b), f);
      const captureHasBtDpi = ndpi.some((f) => isBt(f) && f.confidence === 'DPI');
      // Recall: nDPI's DPI BitTorrent flows.
      for (const f of ndpi) {
        if (!isBt(f)) continue;
        const mine = ours.get(tupleKey(f.transport, f.a, f.b)) ?? [];
        if (f.confidence === 'DPI') {
          positives.push({ capture, f, ours: mine });
          if (mine.length === 0 || !mine.every((x) => x.verdict === 'bittorrent')) missed.push(`${capture}: ${f.line}`);
        } else if (!mine.some((x) => x.verdict === 'bittorrent')) {
          ndpiOnlyCache.push(`${capture}: nDPI ${f.confidence} — ours: ${mine.map((x) => x.reason).join('; ') || 'no such flow'}: ${f.line}`);
        }
      }
      // Precision: each of our detections against nDPI's label.
      for (const f of res.flows) {
        if (f.verdict !== 'bittorrent') continue;
        const k = tupleKey(f.transport, `${f.client.addr}|${f.client.port}`, `${f.server.addr}|${f.server.port}`);
        const n = ndpiByKey.get(k);
        const row = `${capture}  ${f.transport.toUpperCase()} ${ep(f.client)} -> ${ep(f.server)}  ours: ${f.reason}  nDPI: ${n ? `${n.proto} (${n.confidence})` : 'no such flow'}`;
        if (!captureHasBtDpi) nonBtCaptureDetections.push(row);
        if (n && isBt(n) && n.confidence === 'DPI') continue;
        if (n && isBt(n)) caseByCase.push(row);
        else falsePositives.push(row);
      }
    }
    const elapsed = (performance.now() - started) / 1000;
    const detected = positives.length - missed.length;
    const report = [
      '',
      '=== BitTorrent accuracy on the nDPI corpus ===',
      `captures read:                 ${captures.length}`,
      `packets:                       ${packets}`,
      `flows (ours):                  ${flowsOurs}`,
      `flows (nDPI result files):     ${flowsNdpi}`,
      `nDPI BitTorrent DPI flows:     ${positives.length}`,
      `detected:                      ${detected}`,
      `missed:                        ${missed.length}`,
      `false positives:               ${falsePositives.length}`,
      `case-by-case (nDPI cache/guess says BitTorrent too): ${caseByCase.length}`,
      `time:                          ${elapsed.toFixed(1)} s`,
      '',
      'Detections in captures without nDPI BitTorrent DPI flows:',
      ...(nonBtCaptureDetections.length ? nonBtCaptureDetections.map((r) => `  ${r}`) : ['  (none)']),
      'Case-by-case detections (nDPI labels BitTorrent by cache/guess):',
      ...(caseByCase.length ? caseByCase.map((r) => `  ${r}`) : ['  (none)']),
      'nDPI cache/guess BitTorrent flows we do not call BitTorrent:',
      ...(ndpiOnlyCache.length ? ndpiOnlyCache.map((r) => `  ${r}`) : ['  (none)']),
      'False positives:',
      ...(falsePositives.length ? falsePositives.map((r) => `  ${r}`) : ['  (none)']),
      'Missed:',
      ...(missed.length ? missed.map((r) => `  ${r}`) : ['  (none)']),
    ].join('\n');
    console.log(report);
    expect(captures.length).toBe(543);
    expect(positives.length).toBeGreaterThanOrEqual(35);
    expect(missed, 'missed nDPI BitTorrent DPI flows').toEqual([]);
    expect(falsePositives, 'false positives').toEqual([]);
    expect(elapsed).toBeLessThan(60);
  });
});
