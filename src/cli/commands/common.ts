/**
 * What every `netfence` subcommand shares: option parsing with the usage on
 * error, one-paragraph errors, tables for people, progress where people wait.
 * Exit codes (docs/cli.md): 0 success, 1 the operation failed on the host,
 * 2 invalid arguments or input, 3 a confirm deadline passed / nothing to confirm.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { NetfenceError } from '../../errors.js';

/** Exit codes shared by all commands. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notConfirmed: 3 } as const;

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parse `args` strictly. On an unknown or malformed option prints
 * `netfence NAME: message` plus the usage to stderr and returns the exit code 2.
 */
export function parseCommand<O extends Options>(
  name: string,
  usage: string,
  args: string[],
  options: O,
  positionals: { min?: number; max?: number } = { max: 0 },
): { values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>['values']; positionals: string[] } | number {
  try {
    const r = parseArgs({ args, options, strict: true, allowPositionals: true });
    const n = r.positionals.length;
    if (positionals.min !== undefined && n < positionals.min) throw new Error(`expected at least ${positionals.min} argument(s), got ${n}`);
    if (positionals.max !== undefined && n > positionals.max) throw new Error(`unexpected argument(s): ${r.positionals.slice(positionals.max).join(' ')}`);
    return { values: r.values as never, positionals: r.positionals };
  } catch (e) {
    console.error(`netfence ${name}: ${e instanceof Error ? e.message : String(e)}\n\n${usage}`);
    return EXIT.usage;
  }
}

/**
 * One short paragraph on stderr: what failed and what to do about it.
 * A NetfenceError names its stable code; only the first line of a long message is kept.
 */
export function printError(name: string, e: unknown, hint?: string): void {
  const msg = e instanceof NetfenceError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
  const first = msg.split('\n')[0] ?? msg;
  console.error(`netfence ${name}: ${first.length > 600 ? `${first.slice(0, 600)}…` : first}${hint ? `\n${hint}` : ''}`);
}

/** A plain-text table: header row, a rule, then rows; columns padded to their widest cell. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const width = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i] ?? 0))).join('  ').trimEnd();
  return [line(header), line(width.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

/** Progress on stderr: a redrawn bar on a TTY, a plain line every ~10% otherwise. */
export interface Progress {
  /** Set the done count. */
  update(done: number): void;
  /** Finish with a final line. */
  done(summary?: string): void;
}

/** Start a progress report for `total` units of `label` (stderr; a bar on a TTY, plain lines otherwise). */
export function progress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  const t0 = Date.now();
  let lastPct = -1;
  let lastDraw = 0;
  const render = (done: number) => {
    const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
    if (tty) {
      const now = Date.now();
      if (now - lastDraw < 80 && done < total) return;
      lastDraw = now;
      const w = 30;
      const fill = Math.round((pct / 100) * w);
      stream.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${pct}% ${done}/${total}`);
    } else if (Math.floor(pct / 10) > Math.floor(lastPct / 10) || (pct === 100 && lastPct !== 100)) {
      stream.write(`${label}: ${done}/${total} (${pct}%)\n`);
    }
    lastPct = pct;
  };
  return {
    update: render,
    done(summary) {
      render(total);
      if (tty) stream.write('\n');
      stream.write(`${label}: ${summary ?? 'done'} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    },
  };
}
