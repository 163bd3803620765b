/**
 * Cross-process lock per network namespace: an advisory `flock(2)` on
 * `/run/netfence/lock/<ns>.lock`, held by the executor for the duration of an
 * `apply`, `rollback` or `destroy` in that namespace, so two processes never
 * interleave their ownership probe, snapshot, nft batch and steps on the same
 * namespace. The kernel drops the lock when the holder dies (even by SIGKILL),
 * so a crashed netfence never leaves a stale lock behind.
 *
 * Waiting never blocks Node's event loop: the lock is tried with `LOCK_NB`
 * and retried with a short, growing, jittered delay until the timeout, after
 * which a {@link LockTimeoutError} names the holder (its pid and what it was
 * doing are written into the lock file while it holds the lock).
 * @module
 */
import { close, closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NetfenceError, ValidationError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { libc as hostLibc } from '../host/libc.js';
import { NetnsName } from '../validate.js';

/** Settings of the cross-process lock (see {@link configureLocks}). */
export interface LockSettings {
  /** Directory of the lock files (default `/run/netfence/lock`, or `$NETFENCE_LOCK_DIR`). */
  dir: string;
  /** How long to wait for another process before giving up with `LOCK_TIMEOUT` (default 60 s, or `$NETFENCE_LOCK_TIMEOUT_MS`). */
  timeoutMs: number;
  /** Whether to take the cross-process lock at all (default true; `$NETFENCE_LOCK=off` turns it off). */
  enabled: boolean;
}

function envTimeout(): number {
  const v = Number(process.env.NETFENCE_LOCK_TIMEOUT_MS);
  return Number.isFinite(v) && v >= 0 ? v : 60_000;
}

const settings: LockSettings = {
  dir: process.env.NETFENCE_LOCK_DIR || '/run/netfence/lock',
  timeoutMs: envTimeout(),
  enabled: process.env.NETFENCE_LOCK !== 'off',
};

/**
 * Change the lock settings for this process (e.g. a shorter timeout for an
 * interactive tool). Every process that must be coordinated has to use the
 * same `dir`.
 */
export function configureLocks(s: Partial<LockSettings>): LockSettings {
  if (s.timeoutMs !== undefined && !(Number.isFinite(s.timeoutMs) && s.timeoutMs >= 0)) {
    throw new ValidationError('lock settings', [{ path: 'timeoutMs', message: 'must be a finite number >= 0' }]);
  }
  if (s.dir !== undefined && !s.dir.startsWith('/')) throw new ValidationError('lock settings', [{ path: 'dir', message: 'must be an absolute path' }]);
  Object.assign(settings, s);
  return { ...settings };
}

/** The current lock settings. */
export function lockSettings(): LockSettings {
  return { ...settings };
}

/** Who held a lock when a wait timed out, as written into the lock file by the holder. */
export interface LockHolder {
  /** Process id of the holder (undefined if the file could not be read). */
  pid: number | undefined;
  /** What the holder was doing, e.g. `apply firewall:web`. */
  what: string | undefined;
  /** When it took the lock (ISO time). */
  since: string | undefined;
}

/** Another process held the namespace's lock for longer than the timeout. Code `LOCK_TIMEOUT`. */
export class LockTimeoutError extends NetfenceError {
  /** The namespace (undefined = the caller's own, or a lock that is not a namespace's). */
  readonly netns: string | undefined;
  /** The holder, as it described itself in the lock file. */
  readonly holder: LockHolder;
  /** How long this process waited, in ms. */
  readonly waitedMs: number;

  constructor(label: string, netns: string | undefined, holder: LockHolder, waitedMs: number, path: string) {
    const who = holder.pid !== undefined ? `pid ${holder.pid}${holder.what ? ` (${holder.what}` + (holder.since ? `, since ${holder.since})` : ')') : ''}` : 'another process';
    super('LOCK_TIMEOUT', `${label} is locked by ${who}; gave up after waiting ${waitedMs} ms for ${path}`, {
      hint: 'another netfence process is changing this namespace: retry later, or raise the timeout (configureLocks({ timeoutMs }) from netfence/advanced, or NETFENCE_LOCK_TIMEOUT_MS)',
    });
    this.netns = netns;
    this.holder = holder;
    this.waitedMs = waitedMs;
  }
}

type Flock = (fd: number, op: number) => number;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;
const EINTR = 4;

function libc(): { flock: Flock; errno: () => number } {
  const l = hostLibc();
  return { flock: l.flock, errno: l.errno };
}

/** The lock file of a namespace (`host.lock` for the caller's own namespace). */
export function lockPath(netns: string | undefined): string {
  if (netns !== undefined && !NetnsName.safeParse(netns).success) throw new ValidationError('lock', [{ path: 'netns', message: 'invalid namespace name' }]);
  return join(settings.dir, netns === undefined ? 'host.lock' : `ns-${netns}.lock`);
}

/** A held lock; {@link NsLock.release} it exactly once. */
export interface NsLock {
  /** The lock file. */
  readonly path: string;
  /** How long acquiring took, in ms. */
  readonly waitedMs: number;
  /** Give the lock back (removes the lock file). Idempotent. */
  release(): void;
}

function readHolder(path: string): LockHolder {
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown; what?: unknown; since?: unknown };
    return {
      pid: typeof j.pid === 'number' ? j.pid : undefined,
      what: typeof j.what === 'string' ? j.what : undefined,
      since: typeof j.since === 'string' ? j.since : undefined,
    };
  } catch {
    return { pid: undefined, what: undefined, since: undefined };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Take the namespace's cross-process lock, waiting (without blocking the event
 * loop) up to `timeoutMs`. Err is a {@link LockTimeoutError}, or a
 * `LOCK_FAILED` {@link NetfenceError} when the lock file cannot be created.
 *
 * The lock file is removed on release; a waiter that locked a file which was
 * meanwhile removed (or replaced) notices it (inode check) and retries, so at
 * most one process holds the lock of a path at any time.
 */
export async function acquireNsLock(netns: string | undefined, what: string, options: { timeoutMs?: number } = {}): Promise<Result<NsLock, NetfenceError>> {
  return acquireAt(lockPath(netns), netns === undefined ? 'the current network namespace' : `network namespace ${netns}`, netns, what, options);
}

/** Lock-file names for {@link acquireKeyLock}: letters, digits, `_ . -`. */
const KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$/;

/**
 * Take a cross-process lock on something that is not a namespace, e.g. a
 * pinned XDP blocklist (pins are machine-wide): `/run/netfence/lock/key-<key>.lock`.
 * Same waiting and errors as {@link acquireNsLock}.
 */
export async function acquireKeyLock(key: string, what: string, options: { timeoutMs?: number } = {}): Promise<Result<NsLock, NetfenceError>> {
  if (!KEY.test(key)) throw new ValidationError('lock', [{ path: 'key', message: 'must be 1-101 letters, digits, _ . - (not starting with . or -)' }]);
  return acquireAt(join(settings.dir, `key-${key}.lock`), key, undefined, what, options);
}

/**
 * Run `fn` while holding the cross-process lock `key` (see {@link acquireKeyLock});
 * if the lock cannot be taken, `fn` does not run and `onLockError` gives the result.
 */
export async function withKeyLock<T>(key: string, what: string, fn: () => Promise<T>, onLockError: (e: NetfenceError) => T): Promise<T> {
  if (!settings.enabled) return fn();
  const l = await acquireKeyLock(key, what);
  if (l.err) return onLockError(l.val);
  try {
    return await fn();
  } finally {
    l.val.release();
  }
}

async function acquireAt(path: string, label: string, netns: string | undefined, what: string, options: { timeoutMs?: number }): Promise<Result<NsLock, NetfenceError>> {
  const timeoutMs = options.timeoutMs ?? settings.timeoutMs;
  const t0 = performance.now();
  let delay = 2;
  try {
    mkdirSync(settings.dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    return Err(new NetfenceError('LOCK_FAILED', `cannot create the lock directory ${settings.dir}: ${(e as Error).message}`, { cause: e }));
  }
  const { flock, errno } = libc();
  for (;;) {
    let fd: number;
    try {
      fd = openSync(path, 'a+', 0o600); // O_CREAT, no truncation (another holder's pid stays readable); libuv adds O_CLOEXEC
    } catch (e) {
      return Err(new NetfenceError('LOCK_FAILED', `cannot open the lock file ${path}: ${(e as Error).message}`, { cause: e }));
    }
    let held = false;
    const r = flock(fd, LOCK_EX | LOCK_NB);
    if (r === 0) {
      held = true;
      // The file we locked must still be the one at `path` (a previous holder unlinks it on release).
      let same = false;
      try {
        same = fstatSync(fd).ino === statSync(path).ino;
      } catch {
        same = false;
      }
      if (same) {
        const info = JSON.stringify({ pid: process.pid, what, since: new Date().toISOString() });
        try {
          ftruncateSync(fd, 0);
          writeSync(fd, info, 0);
        } catch {
          // the pid is informational; the lock is held either way
        }
        const waitedMs = Math.round(performance.now() - t0);
        let released = false;
        return Ok({
          path,
          waitedMs,
          release() {
            if (released) return;
            released = true;
            try {
              unlinkSync(path); // while still holding the lock: waiters on this inode will retry
            } catch {
              /* already gone */
            }
            flock(fd, LOCK_UN);
            // Released above; the close itself (the last reference to an unlinked inode on a
            // disk-backed /run costs ~1.6 ms) runs on the thread pool, off the caller's path.
            close(fd, () => undefined);
          },
        });
      }
    } else {
      const e = errno();
      if (e !== EWOULDBLOCK && e !== EINTR) {
        closeSync(fd);
        return Err(new NetfenceError('LOCK_FAILED', `flock(${path}) failed with errno ${e}`));
      }
    }
    if (held) flock(fd, LOCK_UN);
    closeSync(fd);
    const waited = performance.now() - t0;
    if (!held && waited >= timeoutMs) return Err(new LockTimeoutError(label, netns, readHolder(path), Math.round(waited), path));
    if (held) continue; // stale inode: retry at once
    await sleep(Math.min(delay + Math.random() * delay, Math.max(1, timeoutMs - waited)));
    delay = Math.min(delay * 2, 50);
  }
}

/**
 * Run `fn` while holding the namespace's cross-process lock (released when
 * `fn` settles, also when it throws). If the lock cannot be taken, `fn` does
 * not run and `onLockError` gives the result instead. With the lock disabled
 * (see {@link configureLocks}) `fn` just runs.
 */
export async function withNsLock<T>(netns: string | undefined, what: string, fn: () => Promise<T>, onLockError: (e: NetfenceError) => T): Promise<T> {
  if (!settings.enabled) return fn();
  const l = await acquireNsLock(netns, what);
  if (l.err) return onLockError(l.val);
  try {
    return await fn();
  } finally {
    l.val.release();
  }
}

/**
 * Remove lock files left by processes that died while holding them (the kernel
 * freed their flock, but nobody unlinked the file). Files whose lock is held
 * are kept. Meant for `reconcile()`; returns the paths removed.
 */
export function pruneLockFiles(): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(settings.dir);
  } catch {
    return removed;
  }
  const { flock } = libc();
  for (const n of names) {
    if (!n.endsWith('.lock')) continue;
    const path = join(settings.dir, n);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      continue;
    }
    try {
      if (flock(fd, LOCK_EX | LOCK_NB) !== 0) continue; // held: a live process
      let same = false;
      try {
        same = fstatSync(fd).ino === statSync(path).ino;
      } catch {
        same = false;
      }
      if (same) {
        unlinkSync(path);
        removed.push(path);
      }
      flock(fd, LOCK_UN);
    } finally {
      closeSync(fd);
    }
  }
  return removed;
}
