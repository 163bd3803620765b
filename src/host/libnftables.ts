/**
 * nft transactions in this process: libnftables (`nft_run_cmd_from_buffer`,
 * JSON in, JSON echo out) called through koffi, the way Python's `nftables`
 * module does, instead of starting `nsenter … nft -j -f -` (about 5 ms of
 * process start-up for a change that costs the kernel well under 1 ms).
 *
 * - Which library: the one that belongs to the nft program in use
 *   (`nftProgram()`): the system's `libnftables.so.1` for the system nft, or
 *   `<prefix>/lib/libnftables.so.1` next to `<prefix>/sbin/nft` (a build such
 *   as `$NETFENCE_NFT`). One library per process (two builds share a soname
 *   and their dependencies); a program whose library cannot be found, or a
 *   second one, uses the nft process.
 * - Namespaces: the call runs synchronously on this thread, entered into the
 *   namespace with setns(2) and moved straight back (as host/nft-elements.ts
 *   does to open its socket); a fresh context per call, so its netlink socket
 *   is created inside the namespace and no namespace is kept alive.
 * - On this thread only what is small: batches up to {@link INPROC_MAX_BYTES}
 *   of JSON (a large batch would hold the event loop). Bigger batches that are
 *   still written at once (up to `STREAM_MIN_CHARS`) run on the libnftables
 *   thread ({@link runOnThread}, source in host/libc.ts): measured on the
 *   10,000-rule + 200,000-element bench, 50–80 ms less than an nft process.
 *   Commits only (`nft -c` checks keep the process). A failed batch changed
 *   nothing (atomic): the caller runs it again through the nft process, which
 *   names the failed command exactly as before.
 *
 * koffi is reached through host/libc.ts (its only import site).
 * @module
 */
import { closeSync, existsSync, openSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { koffi, koffiPath, libc, nftThreadSource } from './libc.js';
import type { CommandError } from '../errors.js';
import { Ok, type Result } from '../result.js';
import { NetnsName } from '../validate.js';
import { nftApplyOnMachine, nftDocument, nftStats, STREAM_MIN_CHARS, type NftApplyOptions } from './nft.js';
import { nftProgram } from './run.js';
import { documentSizeHint, documentTextUpTo } from '../nft/document.js';

/** Batches larger than this (bytes of JSON) go to the nft process. */
export const INPROC_MAX_BYTES = 256 * 1024;

/** The libnftables functions netfence calls, as koffi declarations (bound here and on the libnftables thread). */
const NFT_FUNCS = {
  ctxNew: 'void *nft_ctx_new(uint32_t flags)',
  ctxFree: 'void nft_ctx_free(void *ctx)',
  setFlags: 'void nft_ctx_output_set_flags(void *ctx, unsigned int flags)',
  bufferOutput: 'int nft_ctx_buffer_output(void *ctx)',
  bufferError: 'int nft_ctx_buffer_error(void *ctx)',
  getOutput: 'const char *nft_ctx_get_output_buffer(void *ctx)',
  getError: 'const char *nft_ctx_get_error_buffer(void *ctx)',
  run: 'int nft_run_cmd_from_buffer(void *ctx, const char *buf)',
} as const;

const NFT_CTX_OUTPUT_HANDLE = 1 << 3;
const NFT_CTX_OUTPUT_JSON = 1 << 4;
const NFT_CTX_OUTPUT_ECHO = 1 << 5;
const CLONE_NEWNET = 0x40000000;

interface Bound {
  path: string;
  ctxNew: (flags: number) => unknown;
  ctxFree: (ctx: unknown) => void;
  setFlags: (ctx: unknown, flags: number) => void;
  bufferOutput: (ctx: unknown) => number;
  bufferError: (ctx: unknown) => number;
  getOutput: (ctx: unknown) => string;
  getError: (ctx: unknown) => string;
  run: (ctx: unknown, buf: string) => number;
}

let bound: Bound | undefined;
let loadFailed = new Set<string>();
/** Library path per nft program (undefined: none usable). */
const forProgram = new Map<string, string | undefined>();

/** `NETFENCE_LIBNFTABLES=off` keeps every transaction in the nft process. */
function disabled(): boolean {
  return process.env.NETFENCE_LIBNFTABLES === 'off';
}

function which(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir, program);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

/** The libnftables that belongs to `program` (absolute path, or `libnftables.so.1` for the system's), or undefined. */
export function libraryFor(program: string): string | undefined {
  if (forProgram.has(program)) return forProgram.get(program);
  let lib: string | undefined;
  try {
    const exe = realpathSync(program.includes('/') ? program : (which(program) ?? program));
    const prefix = dirname(dirname(exe));
    if (prefix === '/usr' || prefix === '/') lib = 'libnftables.so.1'; // the distribution's nft and library
    else lib = ['lib', 'lib64', 'lib/x86_64-linux-gnu', 'lib/aarch64-linux-gnu'].map((d) => join(prefix, d, 'libnftables.so.1')).find((p) => existsSync(p));
  } catch {
    lib = undefined;
  }
  forProgram.set(program, lib);
  return lib;
}

function bind(path: string): Bound | undefined {
  if (bound) return bound.path === path ? bound : undefined;
  if (threadLib !== undefined && threadLib !== path) return undefined; // one library per process
  if (loadFailed.has(path)) return undefined;
  try {
    const lib = koffi().load(path);
    const ctxNew = lib.func(NFT_FUNCS.ctxNew);
    const ctxFree = lib.func(NFT_FUNCS.ctxFree);
    const setFlags = lib.func(NFT_FUNCS.setFlags);
    const bufferOutput = lib.func(NFT_FUNCS.bufferOutput);
    const bufferError = lib.func(NFT_FUNCS.bufferError);
    const getOutput = lib.func(NFT_FUNCS.getOutput);
    const getError = lib.func(NFT_FUNCS.getError);
    const run = lib.func(NFT_FUNCS.run);
    bound = {
      path,
      ctxNew: (f) => ctxNew(f) as unknown,
      ctxFree: (c) => void ctxFree(c),
      setFlags: (c, f) => void setFlags(c, f),
      bufferOutput: (c) => bufferOutput(c) as number,
      bufferError: (c) => bufferError(c) as number,
      getOutput: (c) => String(getOutput(c) ?? ''),
      getError: (c) => String(getError(c) ?? ''),
      run: (c, b) => run(c, b) as number,
    };
    return bound;
  } catch {
    loadFailed = new Set([...loadFailed, path]);
    return undefined;
  }
}

/** What one in-process run gave: `ok` with nft's output (the echo), or not ok with its error text. */
export interface InprocResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** What one batch through libnftables gave; `ran: false`: nothing was run (`why`), the caller may use the nft process. */
interface BatchOutcome {
  ran: boolean;
  ok?: boolean;
  stdout?: string;
  stderr?: string;
  why?: string;
  /** The calling thread could not go back to its own network namespace. */
  stuck?: boolean;
}

/** The system calls {@link runBatch} needs, given by the thread that runs it. */
interface BatchSys {
  setns(fd: number, nstype: number): number;
  open(path: string): number;
  close(fd: number): void;
  clone: number;
}

/**
 * One batch through libnftables on the calling thread: enter `netns`, a
 * fresh context (its netlink socket is created in the namespace), run, read
 * nft's output, free, move back. Once nft ran the batch nothing here throws
 * or says "not run" (a batch reported as not run is run again by the nft
 * process). Plain JavaScript that uses only its arguments: its source text is
 * also the body of the libnftables thread ({@link nftThreadSource}), so both
 * threads run this code.
 */
function runBatch(b: Omit<Bound, 'path'>, sys: BatchSys, doc: string, netns: string | undefined, flags: number): BatchOutcome {
  let own = -1;
  let target = -1;
  let entered = false;
  let out: BatchOutcome = { ran: false };
  try {
    if (netns !== undefined) {
      own = sys.open('/proc/thread-self/ns/net');
      target = sys.open('/run/netns/' + netns);
      if (sys.setns(target, sys.clone) !== 0) throw new Error('setns into ' + netns + ' failed');
      entered = true;
    }
    const ctx = b.ctxNew(0);
    if (!ctx) throw new Error('nft_ctx_new failed');
    try {
      b.setFlags(ctx, flags);
      if (b.bufferOutput(ctx) !== 0 || b.bufferError(ctx) !== 0) throw new Error('nft_ctx_buffer_* failed');
      const rc = b.run(ctx, doc);
      out = { ran: true, ok: rc === 0, stdout: '', stderr: '' };
      try {
        out.stdout = String(b.getOutput(ctx) ?? '');
        out.stderr = String(b.getError(ctx) ?? '');
      } catch {
        /* the batch ran: its outcome stands without the text */
      }
    } finally {
      try {
        b.ctxFree(ctx);
      } catch {
        /* the batch's outcome stands */
      }
    }
  } catch (e) {
    if (!out.ran) out = { ran: false, why: String((e as Error)?.message ?? e) };
  } finally {
    if (entered && sys.setns(own, sys.clone) !== 0) out.stuck = true;
    try {
      if (target >= 0) sys.close(target);
      if (own >= 0) sys.close(own);
    } catch {
      /* an fd left open is not worth a wrong outcome */
    }
  }
  return out;
}

/**
 * Run `document` (a `{"nftables": [...]}` JSON text) as one transaction in
 * this process, in `netns`. Undefined when it cannot run here (no usable
 * library, too large, disabled): the caller uses the nft process.
 */
export function runInProcess(document: string, options: { netns?: string | undefined; echo?: boolean | undefined }): InprocResult | undefined {
  if (disabled() || document.length > INPROC_MAX_BYTES) return undefined;
  if (options.netns !== undefined && !NetnsName.safeParse(options.netns).success) return undefined;
  const path = libraryFor(nftProgram().program);
  const b = path === undefined ? undefined : bind(path);
  if (!b) return undefined;
  const l = libc();
  const sys: BatchSys = { setns: (fd, type) => l.setns(fd, type), open: (p) => openSync(p, 'r'), close: (fd) => closeSync(fd), clone: CLONE_NEWNET };
  const r = runBatch(b, sys, document, options.netns, outputFlags(options.echo));
  if (r.stuck) {
    // Going back cannot fail once entering worked (same privilege); if it did, nothing this thread does would be right.
    process.stderr.write('netfence: setns back to the own network namespace failed\n');
    process.abort();
  }
  return r.ran ? { ok: r.ok === true, stdout: r.stdout ?? '', stderr: r.stderr ?? '' } : undefined;
}

/** nft_ctx_output_set_flags for a batch: JSON, and the echo with handles when asked. */
function outputFlags(echo: boolean | undefined): number {
  return NFT_CTX_OUTPUT_JSON | (echo ? NFT_CTX_OUTPUT_ECHO | NFT_CTX_OUTPUT_HANDLE : 0);
}

// ---------------------------------------------------------------------------
// Big batches on a thread of their own.

/** The thread's answer: {@link runBatch}'s outcome for batch `id` (`stuck`: the thread must not run anything else). */
type ThreadReply = BatchOutcome & { id: number };

let thread: Worker | undefined;
/** The library the thread uses (one per process, as for this thread: see the module comment). */
let threadLib: string | undefined;
let threadSeq = 0;
const threadWaiting = new Map<number, (r: ThreadReply | undefined) => void>();
/** One batch at a time on the thread (its namespace is per batch). */
let threadTail: Promise<unknown> = Promise.resolve();

function nftThread(): Worker {
  if (thread) return thread;
  const w = new Worker(nftThreadSource(runBatch.toString()), { eval: true, workerData: { koffi: koffiPath(), funcs: NFT_FUNCS, clone: CLONE_NEWNET }, stdout: false, stderr: false });
  w.unref(); // never keeps the process alive by itself
  w.on('message', (r: ThreadReply) => {
    const done = threadWaiting.get(r.id);
    threadWaiting.delete(r.id);
    if (threadWaiting.size === 0) w.unref();
    if (r.stuck) {
      if (thread === w) thread = undefined;
      void w.terminate();
    }
    done?.(r);
  });
  const gone = (): void => {
    if (thread === w) thread = undefined;
    for (const done of threadWaiting.values()) done(undefined);
    threadWaiting.clear();
  };
  w.on('error', gone);
  w.on('exit', gone);
  thread = w;
  return w;
}

/**
 * Run `document` as one transaction on the libnftables thread (see
 * {@link nftThreadSource}): the event loop stays free while nft parses and
 * the kernel commits, and no process is started; with `echo`, stdout is nft's
 * echo of the batch with handles (as {@link runInProcess}). Undefined when it could not
 * run there (no usable library, disabled, the thread failed before running
 * the batch); a reply with `ok: false` means nft ran it and refused it
 * (atomic: nothing changed).
 */
export function runOnThread(document: string, options: { netns?: string | undefined; echo?: boolean | undefined }): Promise<InprocResult | undefined> {
  if (disabled()) return Promise.resolve(undefined);
  if (options.netns !== undefined && !NetnsName.safeParse(options.netns).success) return Promise.resolve(undefined);
  const path = libraryFor(nftProgram().program);
  if (path === undefined || (bound && bound.path !== path) || (threadLib !== undefined && threadLib !== path)) return Promise.resolve(undefined);
  threadLib = path;
  const run = async (): Promise<InprocResult | undefined> => {
    let w: Worker;
    try {
      w = nftThread();
    } catch {
      return undefined;
    }
    const id = ++threadSeq;
    const reply = new Promise<ThreadReply | undefined>((resolve) => threadWaiting.set(id, resolve));
    w.ref(); // a batch in flight keeps the process alive until its reply
    w.postMessage({ id, lib: path, doc: document, netns: options.netns, flags: outputFlags(options.echo) });
    const r = await reply;
    if (!r?.ran) return undefined;
    return { ok: r.ok === true, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const p = threadTail.then(run, run);
  threadTail = p.catch(() => undefined);
  return p;
}

/**
 * `nft.apply` of the real host: a commit that is small enough runs in this
 * process; a bigger one that is still written at once (up to
 * {@link STREAM_MIN_CHARS} characters, about 8 MB) runs on the libnftables
 * thread (see {@link runOnThread}). A check, a batch that is streamed, a host
 * without a usable library, and every failure go to the nft process
 * (`nftApplyOnMachine`), which names the failed command. The failure is
 * atomic in the kernel, so running it again changes nothing.
 */
export async function nftApplyPreferInProcess(commands: readonly unknown[], options: NftApplyOptions = {}): Promise<Result<void, CommandError>> {
  if (!options.check && commands.length > 0) {
    const doc = documentTextUpTo(commands, INPROC_MAX_BYTES); // a big batch is never written out whole here (H2: streamed to the process)
    let r = doc === undefined ? undefined : runInProcess(doc, { netns: options.netns });
    if (doc === undefined && documentSizeHint(commands) <= (options.streamAboveChars ?? STREAM_MIN_CHARS)) {
      r = await runOnThread(nftDocument(commands), { netns: options.netns });
      if (r?.ok) nftStats.threadApplies++;
    }
    if (r?.ok) {
      nftStats.applies++;
      return Ok(undefined);
    }
  }
  return nftApplyOnMachine(commands, options);
}
