/**
 * Tools that run to completion: {@link run} (and {@link runSync} for exit
 * hooks) dispatch through the current host (host/host.ts); on this machine
 * ({@link runOnMachine}) that is execa with argv arrays, optional standard
 * input, optional network namespace ({@link wrapNetns}, the one nsenter
 * wrapper). Never a shell. Long-running children: host/spawn.ts.
 *
 * Standard input is a real pipe. Node (libuv) gives children a socketpair as
 * stdin, and tools that implement `-f -` as `open("/dev/stdin")` (nft 1.0.x)
 * fail on a socket with ENXIO. So when there is input, a pipe is made with
 * pipe2(2) (host/libc.ts), its read end becomes the child's fd 0 and the input
 * is streamed into the write end: no temp file, no shell, no size limit.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { closeSync, createWriteStream, type WriteStream } from 'node:fs';
import { execa } from 'execa';
import { z } from 'zod';
import { CommandError, fromZodIssues, ValidationError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { NetnsName } from '../validate.js';
import { currentHost, type RunSyncOptions } from './host.js';
import { libc } from './libc.js';

/** Settings of the process runner (see {@link configureHost}). */
export interface HostSettings {
  /**
   * The nft program netfence runs wherever it says `nft`: an absolute path.
   * `undefined` (the default) means `$NETFENCE_NFT` when that is set (read at
   * every call), else `nft` from `PATH`.
   */
  nft?: string | undefined;
}

const AbsolutePath = z
  .string()
  .min(1, 'must not be empty')
  .max(4096, 'must be at most 4096 characters')
  .refine((s) => !s.includes('\0'), 'must not contain NUL bytes')
  .refine((s) => s.startsWith('/'), 'must be an absolute path');
const HostSettingsSchema = z.object({ nft: AbsolutePath.optional() }).strict();

let configuredNft: string | undefined;

/**
 * Change how this process starts tools; returns the settings now in effect.
 * `configureHost({ nft: '/opt/nft/sbin/nft' })` makes every nft invocation
 * (plans, listings, capability probes) use that binary;
 * `configureHost({ nft: undefined })` goes back to `$NETFENCE_NFT`, else `nft`
 * from `PATH`. An invalid path (not absolute, NUL bytes) throws a
 * `ValidationError`. Cached capability reports describe the binary they were
 * probed with; {@link nftProgram} tells which one is in use.
 */
export function configureHost(settings: HostSettings): HostSettings {
  const r = HostSettingsSchema.safeParse(settings);
  if (!r.success) throw fromZodIssues('host settings', r.error.issues);
  if ('nft' in settings) configuredNft = r.data.nft;
  return { nft: configuredNft };
}

/** Which nft program runs, and who chose it. */
export interface NftProgram {
  /** What is executed: an absolute path, or `nft` (looked up in `PATH`). */
  program: string;
  /** `option`: {@link configureHost}; `env`: `$NETFENCE_NFT`; `path`: `nft` from `PATH`. */
  source: 'option' | 'env' | 'path';
}

/**
 * The nft program in use: {@link configureHost}'s `nft`, else `$NETFENCE_NFT`
 * (read now, so it can change between calls), else `nft` from `PATH`. This is
 * the one place that resolves it: {@link run} executes it for every argv whose
 * first element is `nft`. An invalid `$NETFENCE_NFT` throws a `ValidationError`.
 */
export function nftProgram(): NftProgram {
  if (configuredNft !== undefined) return { program: configuredNft, source: 'option' };
  const env = process.env.NETFENCE_NFT;
  if (env === undefined || env === '') return { program: 'nft', source: 'path' };
  const r = AbsolutePath.safeParse(env);
  if (!r.success) throw new ValidationError('NETFENCE_NFT', r.error.issues.map((i) => ({ path: 'NETFENCE_NFT', message: i.message })));
  return { program: r.data, source: 'env' };
}

/** Options for {@link run}. */
export interface RunOptions {
  /** Run inside this network namespace (a name under /run/netns). */
  netns?: string | undefined;
  /** Data for the tool's standard input (for nft: the JSON document). */
  input?: string | undefined;
  /**
   * Standard input produced piecewise, instead of {@link RunOptions.input}:
   * called once and its pieces streamed into the pipe as the tool reads them
   * (the whole text is never held), again only to put the text into a
   * failure's `input`. Hosts other than this machine get the joined text as
   * `input`.
   */
  inputChunks?: (() => Iterable<string>) | undefined;
  /** Kill the tool after this many milliseconds (default 60 s). */
  timeoutMs?: number | undefined;
  /** Short description of what was asked, used in error messages. */
  what?: string | undefined;
}

/** What a tool printed. */
export interface RunOutput {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** The argv actually executed for `argv` in `netns` (nsenter keeps mounts such as bpffs visible). */
export function wrapNetns(argv: readonly string[], netns?: string): string[] {
  if (!netns) return [...argv];
  return ['nsenter', `--net=/run/netns/${netns}`, '--', ...argv];
}

/** Check that argv elements are plain strings without NUL bytes, and the namespace name; undefined when fine. */
export function checkArgv(argv: readonly string[], netns?: string): ValidationError | undefined {
  const issues: { path: string; message: string }[] = [];
  if (!Array.isArray(argv) || argv.length === 0) issues.push({ path: 'argv', message: 'must be a non-empty array' });
  else
    argv.forEach((a, i) => {
      if (typeof a !== 'string') issues.push({ path: `argv.${i}`, message: 'must be a string' });
      else if (a.includes('\0')) issues.push({ path: `argv.${i}`, message: 'must not contain NUL bytes' });
    });
  if (netns !== undefined) {
    const r = NetnsName.safeParse(netns);
    if (!r.success) issues.push({ path: 'netns', message: r.error.issues[0]?.message ?? 'invalid' });
  }
  return issues.length ? new ValidationError('command', issues) : undefined;
}

let pipesWork: boolean | undefined;
const O_CLOEXEC = 0o2000000;

/** A pipe as [readFd, writeFd], or undefined when pipe2(2) cannot be called. */
function makePipe(): [number, number] | undefined {
  if (pipesWork === false) return undefined;
  let l;
  try {
    l = libc();
    pipesWork = true;
  } catch {
    pipesWork = false;
    return undefined;
  }
  const fds = [-1, -1];
  if (l.pipe2(fds, O_CLOEXEC) !== 0) return undefined;
  return [fds[0] as number, fds[1] as number];
}

/**
 * Run a tool. Resolves to Ok with its output when it exits 0, otherwise to Err
 * with a {@link CommandError} carrying argv, exit code and what it printed.
 * Invalid argv or namespace names are thrown as {@link ValidationError}: they are
 * bugs in the caller, never passed on. An argv starting with `nft` runs the
 * program {@link nftProgram} names.
 */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<Result<RunOutput, CommandError>> {
  const bad = checkArgv(argv, options.netns);
  if (bad) throw bad;
  const host = currentHost();
  if (options.inputChunks && host.name !== 'real') {
    const { inputChunks, ...rest } = options;
    return host.run(argv, { ...rest, input: joinChunks(inputChunks) });
  }
  return host.run(argv, options);
}

const joinChunks = (chunks: () => Iterable<string>): string => [...chunks()].join('');

/**
 * Write `chunks` into `ws` as the reader takes them (waits for `drain` when
 * the pipe is full); resolves when all is written and the stream closed, or
 * at the first error (EPIPE when the tool exits without reading: its exit
 * status says why).
 */
function writeChunks(ws: WriteStream, chunks: Iterable<string>): Promise<void> {
  return new Promise<void>((resolve) => {
    let failed = false;
    ws.on('error', () => {
      failed = true;
      resolve();
    });
    ws.on('close', () => resolve());
    const it = chunks[Symbol.iterator]();
    const pump = (): void => {
      try {
        for (;;) {
          if (failed) return;
          const n = it.next();
          if (n.done) {
            ws.end();
            return;
          }
          if (!ws.write(n.value)) {
            ws.once('drain', pump);
            return;
          }
        }
      } catch (e) {
        ws.destroy(e as Error);
      }
    };
    pump();
  });
}

/**
 * {@link run} on this machine (the real host's `run`): execa, argv arrays, a
 * real stdin pipe, `nsenter` for a namespace.
 */
export async function runOnMachine(argv: readonly string[], options: RunOptions = {}): Promise<Result<RunOutput, CommandError>> {
  const bad = checkArgv(argv, options.netns);
  if (bad) throw bad;
  const nft = argv[0] === 'nft' ? nftProgram() : undefined;
  const full = wrapNetns(nft ? [nft.program, ...argv.slice(1)] : argv, options.netns);
  const [file, ...args] = full as [string, ...string[]];
  let input = options.input;
  const chunks = input === undefined ? options.inputChunks : undefined;
  const pipe = input === undefined && chunks === undefined ? undefined : makePipe();
  if (chunks && !pipe) input = joinChunks(chunks); // no pipe2(2): execa writes the text
  const common = {
    reject: false,
    shell: false,
    timeout: options.timeoutMs ?? 60_000,
    stripFinalNewline: true,
    encoding: 'utf8',
    env: { LC_ALL: 'C' },
    extendEnv: true,
  } as const;
  let r;
  if (pipe) {
    const [rfd, wfd] = pipe;
    let child;
    try {
      // execa passes any fd number through to spawn(); its types only list 0 and 3-9.
      child = execa(file, args, { ...common, stdin: rfd as unknown as 0 });
    } finally {
      closeSync(rfd); // the child has its own copy now
    }
    const ws = createWriteStream('', { fd: wfd, autoClose: true, highWaterMark: 1024 * 1024 });
    const written = writeChunks(ws, chunks ? chunks() : [input ?? '']);
    r = await child;
    await written;
  } else {
    r = await execa(file, args, { ...common, input, stdin: input === undefined ? 'ignore' : 'pipe' });
  }
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  if (r.exitCode === 0 && !r.failed) return Ok({ stdout, stderr, exitCode: 0 });
  const missing = (r as { code?: string }).code === 'ENOENT';
  return Err(
    new CommandError(
      options.what ?? (argv[0] as string),
      {
        argv: full,
        netns: options.netns,
        exitCode: r.exitCode,
        stdout: stdout.trim(),
        stderr: (stderr || (missing ? `${file}: not found` : String(r.shortMessage ?? ''))).trim(),
        input: input ?? (chunks ? joinChunks(chunks) : undefined),
        timedOut: r.timedOut,
      },
      !missing
        ? {}
        : nft && nft.source !== 'path'
          ? { hint: `the nft program ${nft.program} (${nft.source === 'env' ? 'from NETFENCE_NFT' : 'set by configureHost()'}) does not exist or cannot be run` }
          : { hint: `install ${file === 'nsenter' ? 'util-linux' : argv[0]} (run \`npm run setup\` on Debian)` },
    ),
  );
}

/** Like {@link run} but throws the CommandError; for places where failure is a bug. */
export async function runOrThrow(argv: readonly string[], options: RunOptions = {}): Promise<RunOutput> {
  const r = await run(argv, options);
  if (r.err) throw r.val;
  return r.val;
}

/**
 * Run a tool synchronously, for exit hooks (where nothing asynchronous runs
 * any more); through the current host. Never throws: a failure is a non-zero
 * exit code.
 */
export function runSync(argv: readonly string[], options: RunSyncOptions = {}): RunOutput {
  const bad = checkArgv(argv, options.netns);
  if (bad) throw bad;
  return currentHost().runSync(argv, options);
}

/** {@link runSync} on this machine (the real host's `runSync`). */
export function runSyncOnMachine(argv: readonly string[], options: RunSyncOptions = {}): RunOutput {
  const bad = checkArgv(argv, options.netns);
  if (bad) throw bad;
  const nft = argv[0] === 'nft' ? nftProgram() : undefined;
  const full = wrapNetns(nft ? [nft.program, ...argv.slice(1)] : argv, options.netns);
  const [file, ...args] = full as [string, ...string[]];
  const r = spawnSync(file, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: options.timeoutMs ?? 10_000, env: { ...process.env, LC_ALL: 'C' }, shell: false });
  return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? (r.error ? r.error.message : '')), exitCode: r.status ?? (r.error ? 127 : 1) };
}
