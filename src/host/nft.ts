/**
 * The nft runner: applies a batch of libnftables JSON commands as ONE
 * transaction (`nft -j -f -`, JSON on stdin, never a temp file, never a
 * shell), checks a batch without committing (`nft -c`), lists objects as
 * parsed JSON, and — only when a batch fails — finds which command failed.
 * @module
 */
import { CommandError } from '../errors.js';
import { documentChunks, documentSizeHint } from '../nft/document.js';
import { parseListingText, type NftListing } from '../nft/listing.js';
import { Err, Ok, type Result } from '../result.js';
import { currentHost } from './host.js';
import { run } from './run.js';

/** Turns one nft JSON command into readable nft text (for error messages). */
export type NftRenderer = (command: unknown) => string;

let defaultRenderer: NftRenderer | undefined;

/**
 * Install the renderer used in error messages when a call does not pass its
 * own. netfence's nft module registers its `renderCommand` here; until then
 * failed commands are shown as compact JSON.
 */
export function setDefaultNftRenderer(render: NftRenderer | undefined): void {
  defaultRenderer = render;
}

/** Options for {@link nftApply}. */
export interface NftApplyOptions {
  /** Network namespace to run in (a name under /run/netns); the current one if undefined. */
  netns?: string | undefined;
  /** Validate with the kernel without committing (`nft -c`). */
  check?: boolean | undefined;
  /** Renderer for the failed command in errors (default: the installed one, else compact JSON). */
  render?: NftRenderer | undefined;
  /** Do not localize the failing command on error (saves the bisection processes). */
  noLocalize?: boolean | undefined;
  /** Timeout for each nft process, in ms (default 60 s). */
  timeoutMs?: number | undefined;
  /** Short description of what was asked, used in error messages. */
  what?: string | undefined;
  /**
   * Stream the JSON to nft in pieces when it is larger than this many
   * characters (estimated; default 8 Mi characters); smaller
   * batches are written at once.
   */
  streamAboveChars?: number | undefined;
}

/** The JSON document that nft reads for `commands`. */
export function nftDocument(commands: readonly unknown[]): string {
  return JSON.stringify({ nftables: commands });
}

/** Readable text for one command: the renderer's output, else compact JSON. */
export function describeCommand(command: unknown, render?: NftRenderer): string {
  const r = render ?? defaultRenderer;
  if (r) {
    try {
      return r(command);
    } catch {
      /* fall back to JSON: a renderer must never hide the real error */
    }
  }
  const s = JSON.stringify(command) ?? String(command);
  return s.length > 600 ? `${s.slice(0, 600)}…` : s;
}

/**
 * Batches whose JSON is larger than this (characters, estimated: 8 Mi, about
 * 400,000 IPv6 set elements) are streamed to nft in pieces, so that a
 * million-element set is never one string; smaller ones are written at once.
 */
export const STREAM_MIN_CHARS = 8 * 1024 * 1024;

/** Counters for observability and benchmarks: commits (`applies`, by any path; `threadApplies`: those on the libnftables thread), checks, bisection checks and listings. */
export const nftStats = { applies: 0, checks: 0, bisectChecks: 0, lists: 0, threadApplies: 0 };

async function nftRun(commands: readonly unknown[], check: boolean, options: NftApplyOptions) {
  const argv = check ? ['nft', '-c', '-j', '-f', '-'] : ['nft', '-j', '-f', '-'];
  return run(argv, {
    netns: options.netns,
    // A big batch (a million-element set) is streamed in pieces, never one string: that saves memory,
    // not time — nft reads all of stdin before it parses (libnftables' stdin_to_buffer), so nothing
    // overlaps, and a 7.6 MB document streamed took 1,477 ms against 1,428 ms written at once. A smaller
    // batch is serialized once nft is starting (run() asks for the input after the spawn) and written at once.
    inputChunks: documentSizeHint(commands) > (options.streamAboveChars ?? STREAM_MIN_CHARS) ? () => documentChunks(commands) : () => [nftDocument(commands)],
    timeoutMs: options.timeoutMs,
    what: options.what ?? (check ? 'nft check' : 'nft apply'),
  });
}

/**
 * Find which command of a failed batch is at fault: the smallest k such that
 * commands[0..k] fails `nft -c`. Prefixes (not single commands) are checked
 * because later commands depend on earlier ones (a rule needs its chain).
 * Uses nft's own "Parsing command array at index N" when it says so.
 * Returns undefined when the failure does not reproduce under `nft -c`.
 */
export async function localizeFailure(
  commands: readonly unknown[],
  stderr: string,
  options: Pick<NftApplyOptions, 'netns' | 'timeoutMs'> = {},
): Promise<number | undefined> {
  const m = /Parsing command array at index (\d+) failed/.exec(stderr);
  if (m) {
    const i = Number(m[1]);
    if (i >= 0 && i < commands.length) return i;
  }
  if (commands.length === 0) return undefined;
  if (commands.length === 1) return 0;
  const fails = async (k: number): Promise<boolean> => {
    nftStats.bisectChecks++;
    const r = await nftRun(commands.slice(0, k + 1), true, { netns: options.netns, timeoutMs: options.timeoutMs });
    return r.err;
  };
  // Invariant: prefix lo-1 passes (or lo = 0); prefix hi fails (assumed for hi = n-1, verified below).
  let lo = 0;
  let hi = commands.length - 1;
  let hiVerified = false;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (await fails(mid)) {
      hi = mid;
      hiVerified = true;
    } else lo = mid + 1;
  }
  if (!hiVerified && !(await fails(hi))) return undefined;
  return hi;
}

/**
 * Apply `commands` as one nftables transaction (`nft -j -f -` with
 * `{"nftables":[...]}` on stdin), or only check them with `check: true`.
 * Either all commands take effect or none does. On failure the
 * {@link CommandError} names the failed command (`failedIndex`,
 * `failedCommand`, `failedText`), found by checking prefixes of the batch
 * with `nft -c` (about log2(n) extra processes, only on the error path).
 */
export function nftApply(commands: readonly unknown[], options: NftApplyOptions = {}): Promise<Result<void, CommandError>> {
  return currentHost().nft.apply(commands, options);
}

/** {@link nftApply} on this machine (the real host's `nft.apply`). */
export async function nftApplyOnMachine(commands: readonly unknown[], options: NftApplyOptions = {}): Promise<Result<void, CommandError>> {
  if (commands.length === 0) return Ok(undefined);
  if (options.check) nftStats.checks++;
  else nftStats.applies++;
  const r = await nftRun(commands, options.check === true, options);
  if (r.ok) return Ok(undefined);
  const failure = r.val.failure;
  // Nothing to localize when nft could not run at all (missing, killed, timed out).
  if (options.noLocalize || failure.timedOut || failure.exitCode === undefined || failure.exitCode === 127) return Err(r.val);
  const idx = await localizeFailure(commands, failure.stderr, options);
  if (idx === undefined) return Err(r.val);
  const failedCommand = commands[idx];
  const failedText = describeCommand(failedCommand, options.render);
  return Err(
    new CommandError(options.what ?? (options.check ? 'nft check' : 'nft apply'), { ...failure, failedIndex: idx, failedCommand, failedText }, r.val.hint ? { hint: r.val.hint } : {}),
  );
}


/** Options for {@link nftList}. */
export interface NftListOptions {
  /** Network namespace to list in; the current one if undefined. */
  netns?: string | undefined;
  /** Timeout in ms (default 60 s). */
  timeoutMs?: number | undefined;
}

const LIST_WORD = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * List with `nft -j list <target...>` and parse the JSON, e.g.
 * `['ruleset']`, `['tables']`, `['table', 'inet', 'x']`, `['set', 'inet', 'x', 's']`.
 * Each word must be a plain name (letters, digits, `_ . -`).
 */
export function nftList(target: readonly string[], options: NftListOptions = {}): Promise<Result<NftListing, CommandError>> {
  return currentHost().nft.list(target, options);
}

/** {@link nftList} on this machine (the real host's `nft.list`). */
export async function nftListOnMachine(target: readonly string[], options: NftListOptions = {}): Promise<Result<NftListing, CommandError>> {
  const bad = target.find((w) => !LIST_WORD.test(w));
  if (target.length === 0 || bad !== undefined) {
    return Err(new CommandError('nft list', { argv: ['nft', '-j', 'list', ...target], netns: options.netns, stdout: '', stderr: `refused: invalid list target word ${JSON.stringify(bad ?? '')}` }));
  }
  nftStats.lists++;
  const r = await run(['nft', '-j', 'list', ...target], { netns: options.netns, timeoutMs: options.timeoutMs, what: `nft list ${target.join(' ')}` });
  if (r.err) return Err(r.val);
  return parseListing(r.val.stdout, ['nft', '-j', 'list', ...target], options.netns);
}

/** The listing module (src/nft/listing.ts) reads nft's output through the tolerant schema. */
function parseListing(stdout: string, argv: string[], netns: string | undefined): Result<NftListing, CommandError> {
  const p = parseListingText(stdout);
  if (p.ok) return p;
  return Err(new CommandError('parse nft listing', { argv, netns, stdout: stdout.trim().slice(0, 2000), stderr: `unreadable listing from nft: ${p.val.message}` }));
}

/**
 * Run several JSON `list` commands; returns one listing per command, in
 * order. Fails as a whole if any listed object does not exist. (One nft
 * process per command: nft 1.0.6 and 1.1.6 fill their cache for the first
 * `list` of a batch only, so a second table in the same batch is reported
 * missing — "No such file or directory; did you mean table …".)
 */
export function nftListMany(listCommands: readonly unknown[], options: NftListOptions = {}): Promise<Result<NftListing[], CommandError>> {
  return currentHost().nft.listMany(listCommands, options);
}

/** {@link nftListMany} on this machine (the real host's `nft.listMany`). */
export async function nftListManyOnMachine(listCommands: readonly unknown[], options: NftListOptions = {}): Promise<Result<NftListing[], CommandError>> {
  if (listCommands.length === 0) return Ok([]);
  if (listCommands.length > 1) {
    const each = await Promise.all(listCommands.map((c) => nftListManyOnMachine([c], options)));
    const out: NftListing[] = [];
    for (const r of each) {
      if (r.err) return Err(r.val);
      out.push(...r.val);
    }
    return Ok(out);
  }
  nftStats.lists++;
  const argv = ['nft', '-j', '-f', '-'];
  const r = await run(argv, { netns: options.netns, input: nftDocument(listCommands), timeoutMs: options.timeoutMs, what: 'nft list (batch)' });
  if (r.err) return Err(r.val);
  const out: NftListing[] = [];
  // nft prints one single-line JSON document per list command.
  for (const line of r.val.stdout.split('\n')) {
    if (line.trim() === '') continue;
    const p = parseListing(line, argv, options.netns);
    if (p.err) return Err(p.val);
    out.push(p.val);
  }
  if (out.length !== listCommands.length) {
    return Err(new CommandError('nft list (batch)', { argv, netns: options.netns, stdout: r.val.stdout.slice(0, 2000), stderr: `expected ${listCommands.length} listings, got ${out.length}` }));
  }
  return Ok(out);
}

export { listingObjects, listingItems, parseListingText, type ListedObject, type NftListing } from '../nft/listing.js';
