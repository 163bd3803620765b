/**
 * Typed error values. Each one says what was asked, what the tool or kernel
 * said, and what to do about it.
 * @module
 */

/** Base class of every error netfence returns or throws. */
export class NetfenceError extends Error {
  /** A stable machine-readable code, e.g. `VALIDATION`, `COMMAND_FAILED`. */
  readonly code: string;
  /** What the caller can do about it, when we know. */
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(options.hint ? `${message}\n  hint: ${options.hint}` : message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }
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
