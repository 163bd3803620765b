/**
 * The Host seam: everything netfence does to a machine, behind one interface.
 *
 * - processes: {@link Host.run} (a tool that exits; argv arrays, stdin, a
 *   network namespace), {@link Host.runSync} (exit hooks only) and
 *   {@link Host.spawn} (long-running children: NFQUEUE workers, lab servers,
 *   held traffic generators);
 * - nftables: {@link Host.nft} (apply / check / list one JSON batch);
 * - files: {@link Host.files} (kernel paths: cgroup v2, bpffs, /proc,
 *   /run/netfence);
 * - bpf(2): {@link Host.bpf} (maps, pins, element and batch operations).
 *
 * The module-level functions that the rest of netfence calls (`run`,
 * `nftApply`, `nftList`, `mapCreate`, ...) dispatch through
 * {@link currentHost}, so a test can replace the whole machine with a fake:
 * `withHost(fake, () => firewall.apply())` for one async call tree
 * (AsyncLocalStorage, so concurrent tests do not collide), or
 * {@link setHost} for the whole process. The real implementation is
 * {@link realHost} (src/host/real.ts).
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Readable, Writable } from 'node:stream';
import type { CommandError, NetfenceError } from '../errors.js';
import type { CountSetOptions, SetElementCount } from './nft-elements.js';
import type { ObjectPresence } from './nft-object.js';
import type { Result } from '../result.js';
import type { NftApplyOptions, NftListing, NftListOptions } from './nft.js';
import { realHost } from './real.js';
import type { RunOptions, RunOutput } from './run.js';

export type { RunOptions, RunOutput } from './run.js';

// ---------------------------------------------------------------- processes

/** Options of {@link Host.runSync}: for exit hooks, where nothing asynchronous runs any more. */
export interface RunSyncOptions {
  /** Run inside this network namespace (a name under /run/netns). */
  netns?: string | undefined;
  /** Kill the tool after this many milliseconds (default 10 s). */
  timeoutMs?: number | undefined;
}

/** Options of {@link Host.spawn}. */
export interface SpawnOptions {
  /** Start inside this network namespace (nsenter execs the program, so the pid is the program's). */
  netns?: string | undefined;
  /** Extra environment variables (added to this process's environment). */
  env?: Record<string, string> | undefined;
  /** Standard input: `ignore` (default) or `pipe` (then {@link SpawnedProcess.stdin} is set). */
  stdin?: 'ignore' | 'pipe' | undefined;
  /** Standard output: `pipe` (default: {@link SpawnedProcess.stdout}), `inherit` or `ignore`. */
  stdout?: 'pipe' | 'inherit' | 'ignore' | undefined;
  /** Standard error: `pipe` (default), `inherit` or `ignore`. */
  stderr?: 'pipe' | 'inherit' | 'ignore' | undefined;
  /** Open a Node IPC channel (the child must be a Node program); messages use the `advanced` serialization. */
  ipc?: boolean | undefined;
  /**
   * Start the process *held*: a small Node launcher starts first (that is the
   * pid) and execs nothing until {@link SpawnedProcess.release}; then it runs
   * argv as its child, passes its stdout through and exits with its status.
   * Lets a caller put the pid into a cgroup before the program opens a socket.
   * A held process has no `stdin` (the launcher's stdin is the release signal).
   */
  hold?: boolean | undefined;
  /**
   * Kill it (SIGKILL) after this many milliseconds; default: never. For a held
   * process the time runs from {@link SpawnedProcess.release} and ends the program.
   */
  timeoutMs?: number | undefined;
  /** Start it in its own process group (`detached`), so a signal to the parent's group does not reach it. */
  detached?: boolean | undefined;
  /** Do not keep this process's event loop alive for the child (`unref`): it may outlive its parent. See `startDetached`. */
  unref?: boolean | undefined;
}

/** How a spawned process ended. */
export interface SpawnExit {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (ENOENT, ...). */
  error?: Error | undefined;
}

/** A running child started by {@link Host.spawn}. */
export interface SpawnedProcess {
  /** Its pid (undefined only when it could not be started; `exited` then carries the error). */
  readonly pid: number | undefined;
  /** The argv that was executed (after the namespace wrapper). */
  readonly argv: readonly string[];
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Settles once, when the process is gone (never rejects). */
  readonly exited: Promise<SpawnExit>;
  /** Whether it is still running. */
  readonly alive: boolean;
  /** Send a signal (default SIGTERM); false when it already exited. */
  kill(signal?: NodeJS.Signals | number): boolean;
  /** A held process ({@link SpawnOptions.hold}) starts its program now. */
  release(): void;
  /** IPC (with {@link SpawnOptions.ipc}): whether the channel is open. */
  readonly connected: boolean;
  /** IPC: send a message; false when the channel is closed. */
  send(message: unknown, callback?: (error: Error | null) => void): boolean;
  /** IPC: messages from the child. */
  on(event: 'message', listener: (message: unknown) => void): this;
  /** The process exited (same values as {@link SpawnedProcess.exited}). */
  on(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  /** It could not be started, or a signal/IPC send failed. */
  on(event: 'error', listener: (error: Error) => void): this;
  once(event: 'message', listener: (message: unknown) => void): this;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  once(event: 'error', listener: (error: Error) => void): this;
}

// ---------------------------------------------------------------- nftables

/** nftables through the host (on the real host: an `nft` process, or libnftables in this process for a small commit, see host/libnftables.ts). */
export interface HostNft {
  /** Apply `commands` as one transaction (or only check them with `check: true`); see `nftApply`. */
  apply(commands: readonly unknown[], options?: NftApplyOptions): Promise<Result<void, CommandError>>;
  /** `nft -j list <target...>`, parsed; see `nftList`. */
  list(target: readonly string[], options?: NftListOptions): Promise<Result<NftListing, CommandError>>;
  /** Several JSON `list` commands in one process; see `nftListMany`. */
  listMany(listCommands: readonly unknown[], options?: NftListOptions): Promise<Result<NftListing[], CommandError>>;
  /**
   * How many elements a set holds, without listing it (netlink; see
   * host/nft-elements.ts). Optional: where a host lacks it, callers list the set.
   */
  countElements?(family: string, table: string, set: string, options?: NftListOptions & CountSetOptions): Promise<Result<SetElementCount, NetfenceError>>;
  /**
   * Whether a named object (e.g. the ownership counter) exists in a table,
   * asked the kernel without an nft process (netlink; see host/nft-object.ts).
   * Optional: where a host lacks it, the executor probes with `nft -c`.
   */
  probeObject?(family: string, table: string, type: string, name: string, options?: NftListOptions): Promise<Result<ObjectPresence, NetfenceError>>;
  /**
   * {@link HostNft.apply} with more say (see host/nft-echo.ts): `echo` returns
   * nft's echo of the committed commands (`nft -e`: with the handles the
   * kernel gave; `[]` without it); `inProcess: false` keeps the transaction
   * off the event loop (the libnftables thread, else an nft process), so the
   * event loop is never held while nft reads a large table. Optional: where a
   * host lacks it, the executor uses `apply`.
   */
  transact?(commands: readonly unknown[], options?: NftApplyOptions & { echo?: boolean; inProcess?: boolean }): Promise<Result<unknown[], CommandError>>;
}

// ---------------------------------------------------------------- files

/**
 * Files on kernel paths (cgroup v2, bpffs, /proc, /sys, /run/netfence).
 * Synchronous like the kernel interfaces they front (bpf(2) callers are
 * synchronous too). Failures throw Node-style errors carrying `code`
 * (`ENOENT`, `EEXIST`, `ENOTEMPTY`, `EACCES`, ...), exactly like `node:fs`.
 */
export interface HostFiles {
  /** The file's content as UTF-8 text. */
  read(path: string): string;
  /** Write (create or truncate) `data`; `append: true` appends; `mode` for a new file. */
  write(path: string, data: string, options?: { append?: boolean | undefined; mode?: number | undefined }): void;
  /** Create a directory; `recursive` also creates parents and accepts an existing one. */
  mkdir(path: string, options?: { recursive?: boolean | undefined; mode?: number | undefined }): void;
  /** Remove an empty directory (cgroups are removed this way). */
  rmdir(path: string): void;
  /** Remove a file (or a bpffs pin). */
  unlink(path: string): void;
  /** rename(2) (atomic within one file system; bpffs pins too). */
  rename(from: string, to: string): void;
  /** Whether the path exists. */
  exists(path: string): boolean;
  /** Whether the path is a directory (false when it does not exist). */
  isDirectory(path: string): boolean;
  /**
   * statfs(2) of the file system holding `path`: `type` is its magic number
   * (`f_type`: 0xcafe4a11 bpffs, 0x63677270 cgroup2, ...). Throws ENOENT when
   * the path does not exist.
   */
  statfs(path: string): { type: number };
  /** The names in a directory (no `.`/`..`), unsorted. */
  readdir(path: string): string[];
}

// ---------------------------------------------------------------- bpf(2)

/** A block of C memory: a Buffer view over it and its address (for pointers inside bpf_attr). */
export interface HostMem {
  readonly size: number;
  readonly buf: Buffer;
  readonly addr: bigint;
  /** Release it (the Buffer must not be used afterwards). Idempotent. */
  free(): void;
}

/** Options of {@link HostBpf.mapCreate}. */
export interface MapCreateOptions {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  name: string;
}

/** What the kernel says about a map. */
export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

/** Options of {@link HostBpf.progLoad}. */
export interface ProgLoadOptions {
  /** enum bpf_prog_type (XDP = 6). */
  type: number;
  /** eBPF bytecode (8 bytes per instruction). */
  insns: Buffer;
  license: string;
  /** Object name (at most 15 characters are kept). */
  name: string;
  /** Size of the verifier log buffer (0: no log). */
  logSize?: number | undefined;
}

/** Addresses into {@link HostMem} for a batch operation; see `batchRaw`. */
export interface BatchArgs {
  inBatch?: bigint;
  outBatch?: bigint;
  keys: bigint;
  values?: bigint;
  count: number;
  elemFlags?: number;
}

/**
 * The bpf(2) system call. Calls that return a number are raw (0 / fd, or
 * -errno); the others throw a `BpfSyscallError` carrying errno. Pointers are
 * addresses of {@link HostMem} blocks from {@link HostBpf.alloc}.
 */
export interface HostBpf {
  /** SYS_bpf for `arch` (default: this process's), or undefined where netfence does not support bpf(2). */
  syscallNumber(arch?: string): number | undefined;
  /** Why bpf(2) cannot be called here at all (unsupported architecture, FFI not loadable), or undefined when it can. */
  unavailable(): string | undefined;
  /** C memory for keys, values and batch cursors. */
  alloc(size: number): HostMem;
  /** BPF_MAP_CREATE; returns the fd. */
  mapCreate(o: MapCreateOptions): number;
  /** BPF_PROG_LOAD; returns the fd (throws BpfSyscallError; its message carries the verifier log). */
  progLoad(o: ProgLoadOptions): number;
  /** BPF_OBJ_PIN `fd` at `path` (bpffs). */
  objPin(fd: number, path: string): void;
  /** BPF_OBJ_GET: open a pinned object; returns an fd. */
  objGet(path: string): number;
  /** BPF_OBJ_GET_INFO_BY_FD for a map. */
  mapInfo(fd: number): MapInfo;
  /** Kernel id of the map or program behind `fd`. */
  objId(fd: number): number;
  /** close(2). */
  close(fd: number): void;
  /** BPF_MAP_UPDATE_ELEM; 0 or -errno. */
  updateElem(fd: number, key: bigint, value: bigint, flags?: number): number;
  /** BPF_MAP_LOOKUP_ELEM; 0 or -errno (-ENOENT when absent). */
  lookupElem(fd: number, key: bigint, value: bigint): number;
  /** BPF_MAP_DELETE_ELEM; 0 or -errno. */
  deleteElem(fd: number, key: bigint): number;
  /** BPF_MAP_GET_NEXT_KEY (key 0n = first); 0 or -errno (-ENOENT at the end). */
  nextKey(fd: number, key: bigint, next: bigint): number;
  /** BPF_MAP_{UPDATE,DELETE,LOOKUP}_BATCH: ret 0 or -errno, count = elements processed. */
  batch(cmd: number, fd: number, o: BatchArgs): { ret: number; count: number };
  /**
   * BPF_MAP_UPDATE_BATCH off the event loop (the real host: a libuv
   * thread-pool thread), so that batches on disjoint keys run on several CPUs.
   * Same answer as {@link batch}. Optional: without it callers run {@link batch}.
   */
  updateBatchAsync?(fd: number, o: BatchArgs): Promise<{ ret: number; count: number }>;
  /** BPF_PROG_TEST_RUN once on `packet`; returns the program's return value (the XDP action). */
  progTestRun(progFd: number, packet: Buffer): number;
  /** clock_gettime(clk) in ns (CLOCK_BOOTTIME = bpf_ktime_get_boot_ns()). */
  clockNs(clk: number): bigint;
}

// ---------------------------------------------------------------- the host

/** Everything netfence does to a machine. */
export interface Host {
  /** Short name for messages and tests (`real`, `fake`, ...). */
  readonly name: string;
  /**
   * Run a tool to completion: Ok with what it printed when it exits 0, else Err
   * with a CommandError (argv, exit code, output). Same contract as `run()` in
   * src/host/run.ts, whose argv checks run before any host sees the call.
   */
  run(argv: readonly string[], options?: RunOptions): Promise<Result<RunOutput, CommandError>>;
  /** Run a tool synchronously (exit hooks only); never throws. */
  runSync(argv: readonly string[], options?: RunSyncOptions): RunOutput;
  /** Start a long-running child. */
  spawn(argv: readonly string[], options?: SpawnOptions): SpawnedProcess;
  readonly nft: HostNft;
  readonly files: HostFiles;
  readonly bpf: HostBpf;
}

const scoped = new AsyncLocalStorage<Host>();
let processHost: Host | undefined;

/**
 * The host in effect: the one of the innermost {@link withHost}, else the
 * one given to {@link setHost}, else {@link realHost}.
 */
export function currentHost(): Host {
  return scoped.getStore() ?? processHost ?? realHost;
}

/**
 * Run `fn` with `host` as the current host for everything it does, including
 * its asynchronous continuations (AsyncLocalStorage); other concurrent work
 * keeps its own host.
 */
export function withHost<T>(host: Host, fn: () => T): T {
  return scoped.run(host, fn);
}

/**
 * Make `host` the host of this whole process (outside any {@link withHost});
 * `setHost(undefined)` goes back to {@link realHost}. Returns the previous one.
 */
export function setHost(host: Host | undefined): Host | undefined {
  const prev = processHost;
  processHost = host;
  return prev;
}

export { realHost };
