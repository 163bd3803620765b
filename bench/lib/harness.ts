/**
 * The one harness every bench uses (issue 14).
 *
 * A bench measures a figure as a ratio against a baseline measured in the same run:
 * `alternate()` runs both sides for several rounds, alternating which goes first, and
 * takes the median of each side. `report()` prints one readable line and one
 * machine-readable `BENCH-JSON {…}` line that `bench/run.ts` (`npm run bench`) collects
 * into its table and into `bench/results.json`.
 */

/** The goal of a figure: any combination of bounds; the figure holds when all hold. */
export interface Goal {
  /** ours / baseline must be at most this (lower is better: time, CPU, memory). */
  ratioMax?: number;
  /** ours / baseline must be at least this (higher is better: rates). */
  ratioMin?: number;
  /** ours (in `unit`) must be at most this (absolute bound, e.g. ≤ 1000 ms, ≤ 200 MiB). */
  oursMax?: number;
  /** ours (in `unit`) must be at least this. */
  oursMin?: number;
}

export interface Figure {
  /** Stable key, e.g. `nft.add-element.1m`; results.json of two commits compare by it. */
  id: string;
  /** Human title, e.g. `add 1 element to a 1,000,000-element set`. */
  figure: string;
  /** Our side, in `unit` (a median when measured over rounds). */
  ours: number;
  /** The baseline side, same unit, same run. */
  baseline: number;
  /** What the baseline is, e.g. `raw nft -j -f - process`. */
  baselineName: string;
  unit: string;
  goal: Goal;
  /** What limited the measurement when that matters (e.g. `drop path` or `sender`). */
  limit?: string;
  /** Anything else worth keeping (samples, rounds, sizes). */
  detail?: Record<string, unknown>;
}

export interface FigureResult extends Figure {
  ratio: number;
  held: boolean;
  goalText: string;
}

export const median = (xs: readonly number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** Time one async call in milliseconds. */
export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

export interface Alternated {
  ours: number;
  baseline: number;
  oursSamples: number[];
  baselineSamples: number[];
  rounds: number;
}

/**
 * Run both sides `rounds` times, alternating which goes first (round 0: ours first,
 * round 1: baseline first, …). Each side returns its measurement (e.g. ms); the result
 * holds the median of each side and all samples.
 */
export async function alternate(
  rounds: number,
  ours: (round: number) => Promise<number>,
  baseline: (round: number) => Promise<number>,
): Promise<Alternated> {
  const o: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      o.push(await ours(r));
      b.push(await baseline(r));
    } else {
      b.push(await baseline(r));
      o.push(await ours(r));
    }
  }
  return { ours: median(o), baseline: median(b), oursSamples: o, baselineSamples: b, rounds };
}

export function goalText(g: Goal, unit: string): string {
  const parts: string[] = [];
  if (g.ratioMax !== undefined) parts.push(`ratio ≤ ${g.ratioMax}`);
  if (g.ratioMin !== undefined) parts.push(`ratio ≥ ${g.ratioMin}`);
  if (g.oursMax !== undefined) parts.push(`≤ ${g.oursMax} ${unit}`);
  if (g.oursMin !== undefined) parts.push(`≥ ${g.oursMin} ${unit}`);
  return parts.join(', ');
}

export function evaluate(f: Figure): FigureResult {
  const ratio = f.ours / f.baseline;
  const g = f.goal;
  const held =
    Number.isFinite(ratio) &&
    (g.ratioMax === undefined || ratio <= g.ratioMax) &&
    (g.ratioMin === undefined || ratio >= g.ratioMin) &&
    (g.oursMax === undefined || f.ours <= g.oursMax) &&
    (g.oursMin === undefined || f.ours >= g.oursMin);
  return { ...f, ratio, held, goalText: goalText(g, f.unit) };
}

const fmt = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

/** Print a figure: one readable line, then `BENCH-JSON {…}` for `npm run bench`. */
export function report(f: Figure): FigureResult {
  const r = evaluate(f);
  const informational = r.goalText === ''; // no goal: neither held nor missed
  console.log(
    `${informational ? 'info  ' : r.held ? 'held  ' : 'MISSED'} ${r.figure}: ours ${fmt(r.ours)} ${r.unit}, ${r.baselineName} ${fmt(r.baseline)} ${r.unit}, ratio ${r.ratio.toFixed(2)}${informational ? '' : ` (goal ${r.goalText})`}${r.limit ? `, limit: ${r.limit}` : ''}`,
  );
  console.log(`BENCH-JSON ${JSON.stringify(r)}`);
  return r;
}
