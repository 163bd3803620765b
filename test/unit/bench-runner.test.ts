import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluate, type Figure } from '../../bench/lib/harness.js';
import { compareTable, FigureLine, resultsTable, tally, type RunResults } from '../../bench/lib/results.js';
import { benchScripts } from '../../bench/lib/scripts.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const fig = (id: string, ours: number, baseline: number, goal: Figure['goal'], limit?: string) =>
  ({ ...evaluate({ id, figure: `figure ${id}`, ours, baseline, baselineName: 'raw nft', unit: 'ms', goal, ...(limit ? { limit } : {}) }), bench: 'b1' });

function results(figures: ReturnType<typeof fig>[], commit: string): RunResults {
  return {
    commit,
    date: '2026-12-02T00:00:00.000Z',
    kernel: 'k',
    nftVersion: 'nft',
    node: 'v20',
    machine: { cpus: 2, loadAtStart: [0, 0, 0], loadAtEnd: [0, 0, 0] },
    benches: [
      { bench: 'b1', status: 'ok', figures: figures.length, seconds: 1, load1AtStart: 0 },
      { bench: 'b2', status: 'failed', figures: 0, seconds: 1, reason: 'exit code 1', load1AtStart: 0 },
      { bench: 'b3', status: 'ok', figures: 0, seconds: 1, load1AtStart: 0 },
    ],
    figures,
    failedBenches: ['b2'],
    noFigures: ['b3'],
    ...tally(figures),
  };
}

describe('npm run bench (bench/run.ts)', () => {
  it('runs bench/*.ts but not the runner, scratch files, declarations or scripts another bench starts', () => {
    const d = mkdtempSync(join(tmpdir(), 'nf-bench-'));
    dirs.push(d);
    mkdirSync(join(d, 'lib'));
    writeFileSync(join(d, 'lib', 'harness.ts'), '');
    writeFileSync(join(d, 'run.ts'), '');
    writeFileSync(join(d, '_scratch.ts'), '');
    writeFileSync(join(d, 'types.d.ts'), '');
    writeFileSync(join(d, 'b-drop.ts'), "run(['npx', 'tsx', fileURLToPath(new URL('./b-sender.ts', import.meta.url))]); // see bench/a-apply.ts");
    writeFileSync(join(d, 'b-sender.ts'), '');
    writeFileSync(join(d, 'a-apply.ts'), '');
    writeFileSync(join(d, 'notes.md'), '');
    expect(benchScripts(d)).toEqual(['a-apply.ts', 'b-drop.ts']);
  });

  it('reads BENCH-JSON lines as report() prints them, NaN figures included', () => {
    const r = fig('x.y', 1.1, 1, { ratioMax: 1.2 });
    expect(FigureLine.parse(JSON.parse(JSON.stringify(r)))).toMatchObject({ id: 'x.y', held: true, goalText: 'ratio ≤ 1.2' });
    const nan = JSON.parse(JSON.stringify(evaluate({ id: 'n', figure: 'n', ours: Number.NaN, baseline: 1, baselineName: 'b', unit: 'ms', goal: { ratioMax: 1 } })));
    expect(FigureLine.parse(nan)).toMatchObject({ ours: null, ratio: null, held: false });
    expect(() => FigureLine.parse({ id: 'x' })).toThrow();
  });

  it('prints one table: a row per figure, failed benches and benches without figures named', () => {
    const r = results([fig('fw.apply', 1100, 1000, { ratioMax: 1.1 }), fig('xdp.drop', 2, 1, { ratioMin: 3 }, 'sender'), fig('xdp.file', 900, 600, {})], 'abc');
    expect([r.held, r.missed, r.informational]).toEqual([1, 1, 1]);
    const t = resultsTable(r);
    const lines = t.split('\n');
    expect(lines[0]).toMatch(/^id\s+figure\s+ours\s+baseline\s+ratio\s+goal\s+held\s+limit$/);
    expect(lines.find((l) => l.startsWith('fw.apply'))).toMatch(/1,100 ms\s+1,000 ms \(raw nft\)\s+1\.10\s+ratio ≤ 1\.1\s+held/);
    expect(lines.find((l) => l.startsWith('xdp.drop'))).toMatch(/2\.00\s+ratio ≥ 3\s+MISSED\s+sender$/);
    expect(lines.find((l) => l.startsWith('xdp.file'))).toMatch(/1\.50\s+\(none\)\s+-$/);
    expect(lines.find((l) => l.startsWith('b2 (bench)'))).toContain('FAILED: exit code 1');
    expect(lines.find((l) => l.startsWith('b3 (bench)'))).toContain('no figures');
  });

  it('compares two runs by figure id: old ratio, new ratio, change, held before and after', () => {
    const old = results([fig('fw.apply', 1570, 1000, { ratioMax: 1.1 }), fig('gone', 1, 1, { ratioMax: 2 })], 'old0000000000');
    const now = results([fig('fw.apply', 1050, 1000, { ratioMax: 1.1 }), fig('new', 1, 1, { ratioMax: 2 })], 'new0000000000');
    const lines = compareTable(old, now).split('\n');
    expect(lines[0]).toMatch(/figure id\s+ratio old0000000\s+ratio new0000000\s+change\s+held/);
    expect(lines.find((l) => l.startsWith('fw.apply'))).toMatch(/1\.57\s+1\.05\s+-33\.1%\s+MISSED -> held/);
    expect(lines.find((l) => l.startsWith('new'))).toMatch(/absent\s+1\.00\s+-\s+- -> held/);
    expect(lines.find((l) => l.startsWith('gone'))).toMatch(/1\.00\s+absent\s+-\s+held -> -/);
  });
});
