/**
 * What every `netfence` subcommand shares: option parsing with the usage on
 * error, one-paragraph errors, tables for people, progress where people wait.
 * Exit codes (docs/cli.md): 0 success, 1 the operation failed on the host,
 * 2 invalid arguments or input, 3 a confirm deadline passed / nothing to confirm.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { hostFiles } from '../../host/files.js';
import { CommandError, NetfenceError, ValidationError } from '../../errors.js';

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
  console.error(`netfence${name ? ` ${name}` : ''}: ${first.length > 600 ? `${first.slice(0, 600)}…` : first}${hint ? `\n${hint}` : ''}`);
}

/** A plain-text table: header row, a rule, then rows; columns padded to their widest cell. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const width = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i] ?? 0))).join('  ').trimEnd();
  return [line(header), line(width.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

/** Where progress is written: stderr, or a fake stream in tests (`isTTY` decides bar vs plain lines). */
export interface ProgressStream {
  isTTY?: boolean | undefined;
  write(chunk: string): unknown;
}

/** Progress of a count: a redrawn bar on a TTY, a plain line every ~10% otherwise. */
export interface Progress {
  /** Set the done count. */
  update(done: number): void;
  /** Finish with a final line (`label: summary in 1.2 s`). */
  done(summary?: string): void;
}

/** Options of {@link progress} and {@link activity}. */
export interface ProgressOptions {
  /** Default process.stderr. */
  stream?: ProgressStream | undefined;
  /** false: print nothing at all (e.g. `--json` without `--progress` off a TTY). Default true. */
  enabled?: boolean | undefined;
  /** Milliseconds between redraws of a bar (default 80); 0 redraws on every update (tests). */
  redrawMs?: number | undefined;
  /** Clock for the elapsed time (tests). */
  now?: (() => number) | undefined;
}

const silent: Progress = { update() {}, done() {} };

function elapsed(t0: number, now: () => number): string {
  return `${((now() - t0) / 1000).toFixed(1)} s`;
}

/**
 * Start a progress report for `total` units of `label` on stderr: a bar
 * redrawn in place on a TTY, a plain line at every 10% otherwise (logs and
 * pipes stay readable). Nothing is written to stdout, so `--json` output is
 * never mixed with progress.
 */
export function progress(label: string, total: number, o: ProgressOptions = {}): Progress {
  if (o.enabled === false) return silent;
  const stream = o.stream ?? process.stderr;
  const now = o.now ?? Date.now;
  const redraw = o.redrawMs ?? 80;
  const tty = stream.isTTY === true;
  const t0 = now();
  let lastPct = -1;
  let lastDraw = -Infinity;
  let finished = false;
  const render = (done: number) => {
    if (finished) return;
    const d = Math.max(0, Math.min(done, total));
    const pct = total > 0 ? Math.floor((d / total) * 100) : 100;
    if (tty) {
      const t = now();
      if (t - lastDraw < redraw && d < total) return;
      lastDraw = t;
      const w = 30;
      const fill = Math.round((pct / 100) * w);
      stream.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${String(pct).padStart(3)}% ${d}/${total}`);
    } else if (Math.floor(pct / 10) > Math.floor(lastPct / 10) || (pct === 100 && lastPct !== 100)) {
      stream.write(`${label}: ${d}/${total} (${pct}%)\n`);
    }
    lastPct = pct;
  };
  return {
    update: render,
    done(summary) {
      render(total);
      finished = true;
      if (tty) stream.write('\n');
      stream.write(`${label}: ${summary ?? 'done'} in ${elapsed(t0, now)}\n`);
    },
  };
}

/** Whether to show progress: on a TTY, or when asked with `--progress` (never on stdout). */
export function wantProgress(flag: boolean | undefined, stream: ProgressStream = process.stderr): boolean {
  return flag === true || stream.isTTY === true;
}

/** A wait without a count (capability probes): a start line, on a TTY the seconds ticking, an end line. */
export interface Activity {
  /** Say what is happening now (one line; redrawn in place on a TTY). */
  note(what: string): void;
  /** Finish with `label: summary in 1.2 s`. */
  done(summary?: string): void;
}

/**
 * Report a wait whose length is unknown: `label…` at once, then on a TTY the
 * elapsed seconds redrawn every `tickMs` (default 1000), and a final line.
 * Off a TTY only the notes and the final line are written.
 */
export function activity(label: string, options: ProgressOptions & { tickMs?: number } = {}): Activity {
  if (options.enabled === false) return { note() {}, done() {} };
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const tty = stream.isTTY === true;
  const t0 = now();
  let current = label;
  const draw = () => stream.write(`\r${current}… ${Math.floor((now() - t0) / 1000)} s\u001b[K`);
  let timer: NodeJS.Timeout | undefined;
  if (tty) {
    draw();
    timer = setInterval(draw, options.tickMs ?? 1000);
    timer.unref();
  } else stream.write(`${label}…\n`);
  return {
    note(what) {
      current = `${label}: ${what}`;
      if (tty) draw();
      else stream.write(`${current}\n`);
    },
    done(summary) {
      if (timer) clearInterval(timer);
      if (tty) stream.write('\r\u001b[K');
      stream.write(`${label}: ${summary ?? 'done'} in ${elapsed(t0, now)}\n`);
    },
  };
}

/** What to do about a failure, when it can be told from the error: one sentence, or undefined. */
export function hintFor(e: unknown): string | undefined {
  const failure = e instanceof CommandError ? e.failure : undefined;
  const text = `${e instanceof Error ? e.message : String(e)}\n${failure?.stderr ?? ''}`;
  if (failure && /: not found$/m.test(failure.stderr)) {
    const tool = failure.argv.find((a) => !a.startsWith('-') && a !== 'nsenter') ?? '';
    if (/(^|\/)nft$/.test(tool)) return 'install nftables (apt-get install nftables) or point $NETFENCE_NFT at an nft binary';
    if (tool === 'bpftool') return 'install bpftool (apt-get install bpftool)';
    if (tool === 'tc' || tool === 'ip') return 'install iproute2 (apt-get install iproute2)';
  }
  if (/cannot open \/run\/netns\/|Cannot open network namespace/i.test(text)) return 'the network namespace does not exist: create it with `ip netns add NAME` or check --netns';
  if (/Operation not permitted|EPERM|Permission denied|EACCES|must be root/i.test(text)) return 'run as root (netfence needs CAP_NET_ADMIN and CAP_BPF: sudo netfence …)';
  if (e instanceof NetfenceError && e.hint) return e.hint;
  return undefined;
}

/** Whether `netns` (a name under /run/netns) exists; undefined (the current namespace) always does. */
export function netnsExists(netns: string | undefined): boolean {
  return netns === undefined || hostFiles().exists(`/run/netns/${netns}`);
}

/** The one-paragraph error for a --netns that does not exist; returns exit code 2. */
export function unknownNetns(name: string, netns: string): number {
  console.error(`netfence ${name}: network namespace ${netns} does not exist (no /run/netns/${netns}).\nCreate it with \`ip netns add ${netns}\` or check --netns.`);
  return EXIT.usage;
}

/**
 * Print `e` as one paragraph with what to do ({@link hintFor}) and return the
 * exit code: 2 for invalid input (a ValidationError), 1 for a failure on the host.
 */
export function fail(name: string, e: unknown): number {
  printError(name, e, hintFor(e));
  return e instanceof ValidationError ? EXIT.usage : EXIT.failed;
}
