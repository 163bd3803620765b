/**
 * The journal and lock part of {@link readStatus}: entries under
 * `/run/netfence/journal/` (owner, phase, whether the writing process is
 * alive) and lock files under `/run/netfence/lock/`, with their holder when a
 * process holds the flock now (read from `/proc/locks`, never by taking a lock).
 * @module
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { isAlive, readJournal } from '../plan/journal.js';
import { lockPath, lockSettings } from '../plan/lock.js';
import type { JournalStatus, LockStatus } from './types.js';

/** Journal entries about `netns` (undefined: the machine's own namespace). */
export function readJournalStatus(netns: string | undefined): JournalStatus[] {
  return readJournal()
    .filter((e) => (e.netns ?? undefined) === netns)
    .map((e) => ({
      id: e.id,
      kind: e.kind,
      owner: e.owner,
      netns: e.netns,
      pid: e.pid,
      alive: isAlive(e),
      phase: e.phase,
      createdAt: e.createdAt,
      tables: e.tables.map((t) => `${t.table.family} ${t.table.name}`),
      steps: e.steps.length,
      stepsStarted: e.stepsStarted,
    }));
}

/** Inodes with a FLOCK in `/proc/locks` text, with the holder's pid (pure). */
export function parseProcLocks(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+FLOCK\s+\S+\s+\S+\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
    if (m) out.set(Number(m[2]), Number(m[1]));
  }
  return out;
}

/** The lock of `netns` and the machine-wide key locks (pinned XDP blocklists), with holders. */
export function readLockStatus(netns: string | undefined): LockStatus[] {
  const dir = lockSettings().dir;
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  let held = new Map<number, number>();
  try {
    held = parseProcLocks(readFileSync('/proc/locks', 'utf8'));
  } catch {
    /* no /proc/locks: held stays unknown (false) */
  }
  const own = basename(lockPath(netns));
  const out: LockStatus[] = [];
  for (const n of names) {
    if (n !== own && !n.startsWith('key-')) continue;
    const path = join(dir, n);
    let ino: number;
    try {
      ino = statSync(path).ino;
    } catch {
      continue;
    }
    const l: LockStatus = { path, netns: n === own ? netns : undefined, held: held.has(ino) };
    if (l.held) {
      l.pid = held.get(ino);
      try {
        const j = JSON.parse(readFileSync(path, 'utf8')) as { what?: unknown; since?: unknown };
        if (typeof j.what === 'string') l.what = j.what;
        if (typeof j.since === 'string') l.since = j.since;
      } catch {
        /* being written */
      }
    }
    out.push(l);
  }
  return out;
}
