/**
 * What `npm run bench` (bench/run.ts) keeps of a run: the figures every bench reported
 * through `report()` (bench/lib/harness.ts), the benches that failed or reported nothing,
 * and the machine it ran on — printed as one table and written to bench/results.json,
 * so that two commits' runs can be compared by figure id (`--compare`).
 */
import { z } from 'zod';
import { table } from '../../src/cli/commands/common.js';
import type { FigureResult } from './harness.js';

/** One `BENCH-JSON {…}` line as `report()` prints it (a FigureResult). */
export const FigureLine = z.looseObject({
  id: z.string().min(1),
  figure: z.string(),
  ours: z.number().nullable(),
  baseline: z.number().nullable(),
  baselineName: z.string(),
  unit: z.string(),
  goal: z.record(z.string(), z.number()),
  limit: z.string().optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
  ratio: z.number().nullable(),
  held: z.boolean(),
  goalText: z.string(),
});

/** A figure as results.json keeps it: the harness's result plus the bench that reported it. */
export type RunFigure = FigureResult & { bench: string };

export interface BenchRun {
  bench: string;
  /** `ok` (exit 0, figures or not), `failed` (non-zero exit, signal, timeout, no start). */
  status: 'ok' | 'failed';
  figures: number;
  seconds: number;
  /** Why it failed: exit code, signal or timeout. */
  reason?: string;
  /** The 1-minute load average when it started. */
  load1AtStart: number;
}

export interface RunResults {
  commit: string;
  date: string;
  kernel: string;
  nftVersion: string;
  node: string;
  machine: { cpus: number; loadAtStart: number[]; loadAtEnd: number[] };
  benches: BenchRun[];
  figures: RunFigure[];
  failedBenches: string[];
  /** Benches that exited 0 without a single BENCH-JSON line (not converted to the harness yet). */
  noFigures: string[];
  held: number;
  missed: number;
  /** Figures without a goal. */
  informational: number;
}

/** A figure reported without a goal (informational): neither held nor missed. */
export const informational = (f: Pick<RunFigure, 'goalText'>): boolean => f.goalText === '';

/** `held`, `MISSED` or `-` (no goal). */
export const verdict = (f: Pick<RunFigure, 'goalText' | 'held'>): string => (informational(f) ? '-' : f.held ? 'held' : 'MISSED');

/** Figures held and missed (informational ones are neither). */
export function tally(figures: readonly RunFigure[]): { held: number; missed: number; informational: number } {
  const info = figures.filter(informational).length;
  const held = figures.filter((f) => !informational(f) && f.held).length;
  return { held, missed: figures.length - info - held, informational: info };
}

/** A number as the table shows it: 3 significant figures, no exponent for ordinary sizes. */
export function num(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** The one table of a run: a row per figure (benches in run order), and a row per bench that failed or reported nothing. */
export function resultsTable(r: RunResults): string {
  const rows: string[][] = [];
  for (const b of r.benches) {
    for (const f of r.figures.filter((x) => x.bench === b.bench)) {
      rows.push([
        f.id,
        f.figure,
        `${num(f.ours)} ${f.unit}`,
        `${num(f.baseline)} ${f.unit} (${f.baselineName})`,
        num(f.ratio),
        f.goalText || '(none)',
        verdict(f),
        f.limit ?? '',
      ]);
    }
    if (b.status === 'failed') rows.push([`${b.bench} (bench)`, `FAILED: ${b.reason ?? 'error'}`, '', '', '', '', '', '']);
    else if (b.figures === 0) rows.push([`${b.bench} (bench)`, 'no figures (prints no BENCH-JSON line)', '', '', '', '', '', '']);
  }
  return table(['id', 'figure', 'ours', 'baseline', 'ratio', 'goal', 'held', 'limit'], rows);
}

/** Per figure id: the ratio in an older run, in this run, and the change. */
export function compareTable(old: Pick<RunResults, 'figures' | 'commit'>, now: Pick<RunResults, 'figures' | 'commit'>): string {
  const before = new Map(old.figures.map((f) => [f.id, f]));
  const after = new Map(now.figures.map((f) => [f.id, f]));
  const ids = [...new Set([...after.keys(), ...before.keys()])]; // this run's order, then figures only the old run has
  const rows = ids.map((id) => {
    const a = before.get(id);
    const b = after.get(id);
    const change = a && b && a.ratio && b.ratio && Number.isFinite(a.ratio) && Number.isFinite(b.ratio) ? `${((b.ratio / a.ratio - 1) * 100).toFixed(1)}%` : '-';
    const held = `${a ? verdict(a) : '-'} -> ${b ? verdict(b) : '-'}`;
    return [id, a ? num(a.ratio) : 'absent', b ? num(b.ratio) : 'absent', change, held];
  });
  return table(['figure id', `ratio ${old.commit.slice(0, 10)}`, `ratio ${now.commit.slice(0, 10)}`, 'change', 'held'], rows);
}
