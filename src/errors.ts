/**
 * Typed error values. Each one says what was asked, what the tool or kernel
 * said, and what to do about it.
 *
 * Every error netfence returns or throws is a {@link NetfenceError} with a
 * stable {@link NetfenceErrorCode}. `.unwrap()` and `.expect()` on netfence's
 * Results throw that same error object, so `instanceof` and `.code` work in a
 * `catch`. Printed (`console.log`, `util.inspect`, `JSON.stringify`) an error
 * is short — code, message, the failed command once, an excerpt of the tool's
 * input — while the full data stays on its properties (`failure.input`,
 * `failure.failedCommand`, `issues`, `cause`, ...).
 * @module
 */

/**
 * Every `code` a {@link NetfenceError} can carry. Stable: match on these, not
 * on messages.
 */
export type NetfenceErrorCode =
  // the base classes of this module
  | 'VALIDATION'
  | 'COMMAND_FAILED'
  | 'UNSUPPORTED'
  | 'APPLY_FAILED'
  | 'NOT_IMPLEMENTED'
  // plans, ownership, locks, listings
  | 'NOT_OWNED'
  | 'NO_SNAPSHOT'
  | 'LOCK_TIMEOUT'
  | 'LOCK_FAILED'
  | 'BAD_LISTING'
  | 'CAPABILITIES'
  | 'FAULT_INJECTED'
  // confirm-or-revert (watchdog.ts)
  | 'NO_WATCHDOG'
  | 'CONFIRM_EXPIRED'
  | 'CONFIRM_AMBIGUOUS'
  // Firewall
  | 'NOTHING_APPLIED'
  | 'NOT_FOUND'
  | 'WRONG_FAMILY'
  // SmartProxy integration
  | 'RESOLVE_FAILED'
  | 'FASTPATH'
  // XdpBlocklist
  | 'NOT_ATTACHED'
  | 'XDP_BUSY'
  | 'BLOCKLIST_FULL'
  | 'MAP_FAILED'
  // DpiBlocker, NFQUEUE, captures
  | 'DPI_STATE'
  | 'DPI_CAPABILITIES'
  | 'DPI_BLOCKLIST'
  | 'DPI_SETTLE'
  | 'NO_DPI_HANDLER'
  | 'NO_WORKER'
  | 'QUEUE_START'
  | 'QUEUE_WORKER'
  | 'ON_PACKET'
  | 'NETLINK'
  | 'CAPTURE_FORMAT';

/** Longest message shown when an error is printed (the full text stays in `.message`). */
const PRINT_MESSAGE_MAX = 480;
/** Characters of a tool's standard input shown when an error is printed. */
const PRINT_STDIN_MAX = 100;
/** Stack frames shown when an error is printed. */
const PRINT_FRAMES = 3;
/** Properties printed by their own rules (or not at all), not as `key: value`. */
const PRINTED_APART = new Set(['name', 'message', 'stack', 'code', 'hint', 'cause', 'failure', 'issues', 'restoreErrors']);

function cap(s: string, max: number, where: string): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (+${s.length - max} chars in ${where})`;
}

function oneLine(v: unknown, max: number): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length <= max ? s : `${s.slice(0, max)}…`;
}

/** The tool input of an error or of the first error in its cause chain that has one. */
function stdinOf(e: unknown, depth = 0): string | undefined {
  if (depth > 4 || !(e instanceof Error)) return undefined;
  const f = (e as { failure?: CommandFailure }).failure;
  if (f && typeof f.input === 'string' && f.input.length > 0) return f.input;
  return stdinOf((e as { cause?: unknown }).cause, depth + 1);
}

function stdinSummary(input: string): { excerpt: string; bytes: number } {
  return { excerpt: input.length <= PRINT_STDIN_MAX ? input : `${input.slice(0, PRINT_STDIN_MAX)}…`, bytes: Buffer.byteLength(input) };
}

/** What an outer error of a chain already shows, so that causes do not repeat it. */
interface Shown {
  messages: string[];
  argv: Set<string>;
  inputs: Set<string>;
  failedTexts: string[];
}

/** A compact, bounded summary of an error for JSON (text an outer error already shows is not repeated). */
function summarize(e: unknown, shown: Shown, depth: number): Record<string, unknown> {
  if (!(e instanceof Error)) return { value: oneLine(e, 200) };
  const out: Record<string, unknown> = { name: e.name };
  const code = (e as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  const failure = (e as { failure?: CommandFailure }).failure;
  if (!shown.messages.some((m) => m.includes(e.message))) {
    // a cause that names a failed command already shown (the same batch under another index) adds only its index
    const repeats = shown.failedTexts.some((t) => t.length > 0 && e.message.includes(t));
    if (!repeats) out.message = cap(e.message, PRINT_MESSAGE_MAX, '.message');
  }
  shown.messages.push(e.message);
  for (const [k, v] of Object.entries(e)) {
    if (PRINTED_APART.has(k) || v === undefined) continue;
    out[k] = typeof v === 'string' ? cap(v, 120, `.${k}`) : v !== null && typeof v === 'object' ? JSON.parse(oneLineJson(v)) : v;
  }
  if (failure) {
    const f: Record<string, unknown> = {};
    const argv = failure.argv.join(' ');
    if (!shown.argv.has(argv)) f.argv = cap(argv, 200, '.failure.argv');
    shown.argv.add(argv);
    if (failure.exitCode !== undefined) f.exitCode = failure.exitCode;
    if (failure.timedOut) f.timedOut = true;
    if (failure.failedIndex !== undefined) f.failedIndex = failure.failedIndex;
    if (failure.failedText) shown.failedTexts.push(failure.failedText);
    if (typeof failure.input === 'string' && failure.input.length > 0 && !shown.inputs.has(failure.input)) {
      const s = stdinSummary(failure.input);
      f.stdinExcerpt = s.excerpt;
      f.stdinBytes = s.bytes;
      shown.inputs.add(failure.input);
    }
    out.failure = f;
  }
  const issues = (e as { issues?: ValidationIssue[] }).issues;
  if (Array.isArray(issues)) out.issueCount = issues.length;
  const restoreErrors = (e as { restoreErrors?: unknown[] }).restoreErrors;
  if (Array.isArray(restoreErrors) && restoreErrors.length > 0) {
    out.restoreErrors = depth < 2 ? restoreErrors.slice(0, 2).map((r) => summarize(r, shown, depth + 1)) : [];
    if (restoreErrors.length > 2) out.moreRestoreErrors = restoreErrors.length - 2;
  }
  const cause = (e as { cause?: unknown }).cause;
  if (cause !== undefined && depth < 3) out.cause = summarize(cause, shown, depth + 1);
  return out;
}

/** JSON of a small value, bounded (objects such as a holder or a table reference). */
function oneLineJson(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    if (s !== undefined && s.length <= 200) return s;
  } catch {
    /* fall through */
  }
  return JSON.stringify(String(oneLine(v, 120)));
}

/** Base class of every error netfence returns or throws. */
export class NetfenceError extends Error {
  /** A stable machine-readable code, e.g. `VALIDATION`, `COMMAND_FAILED`. */
  readonly code: NetfenceErrorCode;
  /** What the caller can do about it, when we know. */
  readonly hint: string | undefined;

  constructor(code: NetfenceErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(options.hint ? `${message}\n  hint: ${options.hint}` : message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }

  /**
   * A bounded JSON form: name, code, message, the subclass's small fields, a
   * summary of a failed command (argv, exit code, index, a stdin excerpt and its
   * size) and the cause, without repeating text the message already holds.
   */
  toJSON(): Record<string, unknown> {
    return summarize(this, { messages: [], argv: new Set(), inputs: new Set(), failedTexts: [] }, 0);
  }

  /**
   * How `console.log` and `util.inspect` show the error: under 1 KB, the failed
   * command once, a stdin excerpt, a few stack frames. The full data is on the
   * properties (`failure.input`, `failure.failedCommand`, `cause`, `stack`).
   * @internal
   */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return printError(this);
  }
}

/** The printed form of a netfence error (see {@link NetfenceError}'s `util.inspect` hook). */
function printError(e: NetfenceError): string {
  const lines = [`${e.name} [${e.code}]: ${cap(e.message, PRINT_MESSAGE_MAX, '.message')}`];
  const frames = (e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
  for (const f of frames.slice(0, PRINT_FRAMES)) lines.push(`    ${cap(f.trim(), 120, '.stack')}`);
  if (frames.length > PRINT_FRAMES) lines.push(`    ... ${frames.length - PRINT_FRAMES} more frames in .stack`);
  const fields: string[] = [];
  for (const [k, v] of Object.entries(e)) {
    if (PRINTED_APART.has(k) || v === undefined) continue;
    fields.push(`${k}: ${oneLine(v, 80)}`);
  }
  if (e instanceof ValidationError) fields.push(`issues: ${e.issues.length}`);
  if (e instanceof ApplyError && e.restoreErrors.length > 0) fields.push(`restoreErrors: ${e.restoreErrors.length}`);
  const f = e instanceof CommandError ? e.failure : undefined;
  if (f?.exitCode !== undefined) fields.push(`exitCode: ${f.exitCode}`);
  if (f?.failedIndex !== undefined) fields.push(`failedIndex: ${f.failedIndex}`);
  if (fields.length > 0) lines.push(`  { ${cap(fields.join(', '), 200, 'the properties')} }`);
  const input = stdinOf(e);
  if (input !== undefined) {
    const s = stdinSummary(input);
    lines.push(`  stdin (${s.bytes} bytes, full text in .failure.input): ${s.excerpt}`);
  }
  const cause = e.cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    const head = `  cause: ${cause.name}${typeof code === 'string' ? ` [${code}]` : ''}`;
    lines.push(e.message.includes(cause.message) ? `${head} (message included above)` : `${head}: ${cap(cause.message.split('\n')[0] ?? '', 160, '.cause.message')}`);
  } else if (cause !== undefined) lines.push(`  cause: ${oneLine(cause, 120)}`);
  return lines.join('\n');
}

/** One problem found while validating input. */
export interface ValidationIssue {
  /** Dotted path of the offending field, e.g. `rules.3.dstPortStart`. */
  path: string;
  /** Why the value was refused. */
  message: string;
}

/** Input was refused before it reached any tool. */
export class ValidationError extends NetfenceError {
  /** Every problem found, each naming its field. */
  readonly issues: ValidationIssue[];
  constructor(what: string, issues: ValidationIssue[], options: { hint?: string } = {}) {
    const list = issues.map((i) => `  - ${i.path || '(root)'}: ${i.message}`).join('\n');
    super('VALIDATION', `invalid ${what}:\n${list}`, options);
    this.issues = issues;
  }
}

/** Details of a command that failed. */
export interface CommandFailure {
  /** The argv that was run (after netns wrapping). */
  argv: string[];
  /** The network namespace it was run in, if any. */
  netns?: string | undefined;
  /** Exit code, or undefined if it was killed or could not start. */
  exitCode?: number | undefined;
  /** What the tool printed on stdout (trimmed). */
  stdout: string;
  /** What the tool printed on stderr (trimmed). */
  stderr: string;
  /** Standard input given to the tool (for nft: the JSON document), if any. */
  input?: string | undefined;
  /** For batches: index of the command that failed within the batch. */
  failedIndex?: number | undefined;
  /** For batches: the failed command itself, as data. */
  failedCommand?: unknown;
  /** For batches: the failed command rendered as nft text, for humans. */
  failedText?: string | undefined;
  /** Whether the tool timed out. */
  timedOut?: boolean | undefined;
}

/** A tool (nft, tc, ip, bpftool, ...) exited with an error or could not be started. */
export class CommandError extends NetfenceError {
  readonly failure: CommandFailure;
  constructor(what: string, failure: CommandFailure, options: { hint?: string; cause?: unknown } = {}) {
    const where = failure.netns ? ` in netns ${failure.netns}` : '';
    const cmd = failure.argv.join(' ');
    const idx = failure.failedIndex !== undefined ? `\n  failed command #${failure.failedIndex}${failure.failedText ? `: ${failure.failedText}` : ''}` : '';
    const said = failure.stderr || failure.stdout || (failure.timedOut ? 'timed out' : `exit code ${failure.exitCode ?? 'unknown'}`);
    super('COMMAND_FAILED', `${what} failed${where}: \`${cmd}\`${idx}\n  tool said: ${said}`, options);
    this.failure = failure;
  }
}

/** The host lacks a kernel feature, tool or privilege that the request needs. */
export class UnsupportedError extends NetfenceError {
  /** Name of the missing capability, as in the capability report. */
  readonly capability: string;
  constructor(capability: string, message: string, options: { hint?: string } = {}) {
    super('UNSUPPORTED', message, options);
    this.capability = capability;
  }
}

/** A plan could not be applied; the host was restored to its previous state (see `restored`). */
export class ApplyError extends NetfenceError {
  /** Which phase failed: nft, a step id, verify, health-check, confirm-timeout. */
  readonly phase: string;
  /** Whether the previous state was fully restored. */
  readonly restored: boolean;
  /** Problems met while restoring, if any. */
  readonly restoreErrors: NetfenceError[];
  constructor(phase: string, message: string, options: { restored: boolean; restoreErrors?: NetfenceError[]; cause?: unknown; hint?: string }) {
    super('APPLY_FAILED', message, options);
    this.phase = phase;
    this.restored = options.restored;
    this.restoreErrors = options.restoreErrors ?? [];
  }
}

/** A feature that a later release will provide; nothing was changed on the host. */
export class NotImplementedError extends NetfenceError {
  constructor(feature: string) {
    super('NOT_IMPLEMENTED', `${feature} is not implemented yet in this version of netfence; nothing was changed`);
  }
}

/** Convert a zod error into a ValidationError naming each field. */
export function fromZodIssues(what: string, issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string; code?: string; keys?: readonly string[] }>): ValidationError {
  return new ValidationError(
    what,
    issues.flatMap((i) => {
      const path = i.path.map((p) => String(p));
      // unknown keys: name each key as the bad field (zod reports them at the parent's path)
      if (i.code === 'unrecognized_keys' && Array.isArray(i.keys) && i.keys.length > 0)
        return i.keys.map((k) => ({ path: [...path, String(k) === '' ? '""' : JSON.stringify(String(k)).slice(1, -1).slice(0, 64)].join('.'), message: `unknown field ${JSON.stringify(String(k)).slice(0, 80)}` }));
      return [{ path: path.join('.'), message: i.message }];
    }),
  );
}
