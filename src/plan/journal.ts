/**
 * The intent journal: small JSON files under `/run/netfence/journal/` (tmpfs,
 * directories 0700) that say what a netfence process is in the middle of, so
 * that {@link reconcile} can repair what a process that died (SIGKILL, OOM,
 * power cut of a container) left behind.
 *
 * - `apply` entries: written by the executor before it touches the host (owner,
 *   namespace, the owned tables and whether they existed, their snapshots, the
 *   steps with their undo), updated before each step, removed when the apply
 *   completes, fails (after restoring) or — with a confirm timer — when it is
 *   confirmed or rolled back.
 *   XdpBlocklist attaches are plans too (XDP steps with their undo); a completed
 *   attach has no entry: it outlives its process by design.
 *   A DpiBlocker's steering is an apply entry kept while its process lives (`in-effect`).
 *
 * Each entry names its process by pid AND start time (field 22 of
 * `/proc/<pid>/stat`), so a reused pid is never mistaken for the writer.
 * Files are written atomically (write to a temporary name, then rename).
 * Journal failures never fail an apply: without a writable /run the journal is
 * simply off (and {@link journalDisabledReason} says why).
 * @module
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NftListing } from '../host/nft.js';
import type { Step, TableRef } from './types.js';

/** Where journal entries live (tmpfs: a reboot clears them, as it clears what they describe). */
export const JOURNAL_DIR = process.env.NETFENCE_JOURNAL_DIR ?? '/run/netfence/journal';

/** A process, identified so that pid reuse is detected. */
export interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  startTime: string;
  /** Process group (field 5): when it equals `pid`, the group's remaining members are the process's own tools. */
  pgid: number;
}

/** Common fields of every journal entry. */
interface EntryBase extends ProcessIdentity {
  version: 1;
  /** File name (without directory) of the entry. */
  id: string;
  netns?: string | undefined;
  createdAt: string;
}

/** An owned table as an apply found it. */
export interface JournalTable {
  table: TableRef;
  existed: boolean;
  listing?: NftListing | undefined;
}

/** An apply in progress (or applied and awaiting confirm). */
export interface ApplyJournalEntry extends EntryBase {
  kind: 'apply';
  owner: string;
  tables: JournalTable[];
  steps: Step[];
  /** How many steps had started (a started step's tools run to completion even if netfence dies). */
  stepsStarted: number;
  /** `in-effect`: applied with `whileAlive` (the plan holds only while the process lives). */
  phase: 'prepared' | 'steps' | 'verify' | 'health-check' | 'awaiting-confirm' | 'in-effect';
  /** Set with `confirmWithinMs`: the deadline and the watchdog process that reverts at it (see watchdog.ts). */
  confirm?: ConfirmRecord | undefined;
}

/** The confirm deadline of an apply entry and the detached watchdog that holds it. */
export interface ConfirmRecord {
  /** The `confirmWithinMs` the plan was applied with. */
  withinMs: number;
  /** The deadline as wall-clock time (for people; decisions use `deadlineMonoMs`). */
  deadline: string;
  /** The deadline on CLOCK_MONOTONIC in ms (the same clock in every process, immune to wall-clock steps; see {@link monotonicMs}). */
  deadlineMonoMs: number;
  /** The watchdog process (pid AND start time); absent when it could not be started (then only the applier's timer and reconcile() revert). */
  watchdog?: Pick<ProcessIdentity, 'pid' | 'startTime'> | undefined;
}

/** CLOCK_MONOTONIC in ms (libuv's hrtime): comparable between processes of one boot. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/**
 * After its deadline a live watchdog still holds its entry for this long
 * (it is reverting, under the namespace lock); a watchdog alive past it is
 * presumed stuck and {@link reconcile} repairs the entry itself.
 */
export const WATCHDOG_GRACE_MS = 30_000;

/**
 * Whether an entry is held by a live process: its writer (pid AND start
 * time), or the confirm watchdog named in it while its deadline (plus
 * {@link WATCHDOG_GRACE_MS}) has not passed. Entries that are not held are
 * repaired by reconcile().
 */
export function entryHeld(e: JournalEntry, now = monotonicMs()): boolean {
  if (isAlive(e)) return true;
  const w = e.confirm?.watchdog;
  return w !== undefined && now < e.confirm!.deadlineMonoMs + WATCHDOG_GRACE_MS && isAlive(w);
}

/** Any journal entry. */
export type JournalEntry = ApplyJournalEntry;

/** Distributes `Omit` over a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

let disabled: string | undefined;
let seq = 0;
let self: ProcessIdentity | undefined;

/** Why the journal is off in this process (undefined: it works). */
export function journalDisabledReason(): string | undefined {
  return disabled;
}

/** Read pid, process group and start time of a process from /proc (undefined: no such process). */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime"
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  if (state === 'Z' || state === 'X') return undefined; // a zombie does nothing any more
  return { pid, pgid: Number(rest[2]), startTime: rest[19] ?? '' };
}

/** Whether the process that wrote an entry is still running (same pid AND same start time). */
export function isAlive(p: Pick<ProcessIdentity, 'pid' | 'startTime'>): boolean {
  const now = processIdentity(p.pid);
  return now !== undefined && now.startTime === p.startTime;
}

function me(): ProcessIdentity {
  if (!self || self.pid !== process.pid) self = processIdentity(process.pid) ?? { pid: process.pid, startTime: '', pgid: 0 };
  return self;
}

function ensureDir(): boolean {
  if (disabled) return false;
  try {
    mkdirSync(JOURNAL_DIR, { recursive: true, mode: 0o700 });
    return true;
  } catch (e) {
    disabled = `cannot create ${JOURNAL_DIR}: ${(e as Error).message}`;
    return false;
  }
}

function writeAtomic(id: string, entry: JournalEntry): void {
  const path = join(JOURNAL_DIR, id);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
  renameSync(tmp, path);
}

/** A live journal entry of this process: update it as the operation progresses, remove it when done. */
export class JournalHandle<E extends JournalEntry> {
  private removed = false;
  constructor(
    /** The entry as last written. */
    readonly entry: E,
  ) {}

  /** Merge `changes` into the entry and rewrite it atomically. */
  update(changes: Partial<E>): void {
    if (this.removed) return;
    Object.assign(this.entry, changes);
    try {
      writeAtomic(this.entry.id, this.entry);
    } catch {
      // the journal is best effort: never fail an operation because of it
    }
  }

  /** Delete the entry (the operation is complete or fully undone). */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    try {
      unlinkSync(join(JOURNAL_DIR, this.entry.id));
    } catch {
      // already gone
    }
  }
}

/**
 * Record an operation this process is starting. Returns undefined when the
 * journal is off (no writable /run); callers carry on without it.
 */
export function journalBegin<E extends JournalEntry>(fields: DistributiveOmit<E, 'version' | 'id' | 'pid' | 'startTime' | 'pgid' | 'createdAt'>): JournalHandle<E> | undefined {
  if (!ensureDir()) return undefined;
  const p = me();
  const id = `${fields.kind}-${p.pid}-${p.startTime}-${++seq}.json`;
  const entry = { version: 1, id, ...p, createdAt: new Date().toISOString(), ...fields } as unknown as E;
  try {
    writeAtomic(id, entry);
  } catch (e) {
    disabled = `cannot write to ${JOURNAL_DIR}: ${(e as Error).message}`;
    return undefined;
  }
  return new JournalHandle(entry);
}

/** Every readable journal entry (unreadable or half-written files are skipped). */
export function readJournal(): JournalEntry[] {
  let names: string[];
  try {
    names = readdirSync(JOURNAL_DIR);
  } catch {
    return [];
  }
  const out: JournalEntry[] = [];
  for (const n of names.sort()) {
    if (!n.endsWith('.json')) continue;
    try {
      const e = JSON.parse(readFileSync(join(JOURNAL_DIR, n), 'utf8')) as JournalEntry;
      if (e && e.version === 1 && typeof e.pid === 'number' && e.kind === 'apply') out.push({ ...e, id: n });
    } catch {
      // a foreign or damaged file: not ours to interpret
    }
  }
  return out;
}

/** One journal entry by id (file name), or undefined when it is gone or unreadable. */
export function readJournalEntry(id: string): JournalEntry | undefined {
  if (!/^[\w.-]+\.json$/.test(id)) return undefined;
  try {
    const e = JSON.parse(readFileSync(join(JOURNAL_DIR, id), 'utf8')) as JournalEntry;
    return e && e.version === 1 && typeof e.pid === 'number' && e.kind === 'apply' ? { ...e, id } : undefined;
  } catch {
    return undefined;
  }
}

/** Rewrite an entry read from disk (another process's: the watchdog's identity, a confirm). Best effort, atomic. */
export function rewriteJournalEntry(entry: JournalEntry): boolean {
  try {
    writeAtomic(entry.id, entry);
    return true;
  } catch {
    return false;
  }
}

/** Remove a journal entry by id (reconcile, after repairing what it describes). */
export function removeJournalEntry(id: string): void {
  try {
    unlinkSync(join(JOURNAL_DIR, id));
  } catch {
    // gone already
  }
}

/** Remove `*.tmp` files of dead writers (a crash between write and rename). */
export function removeStaleTemporaries(): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(JOURNAL_DIR);
  } catch {
    return removed;
  }
  for (const n of names) {
    const m = /^(?:apply|xdp|dpi)-(\d+)-(\d*)-\d+\.json\.tmp$/.exec(n);
    if (!m) continue;
    if (isAlive({ pid: Number(m[1]), startTime: m[2] ?? '' })) continue;
    try {
      unlinkSync(join(JOURNAL_DIR, n));
      removed.push(n);
    } catch {
      // gone
    }
  }
  return removed;
}

/** Remove every entry `pred` selects except `keepId` (e.g. older records of a blocklist that was re-attached or detached). */
export function removeJournalEntries(pred: (e: JournalEntry) => boolean, keepId?: string): void {
  for (const e of readJournal()) if (e.id !== keepId && pred(e)) removeJournalEntry(e.id);
}
