/**
 * What a declarative file applied last, per owner and namespace: a small JSON
 * file under `/run/netfence/declare/` (tmpfs, like the kernel state it
 * describes, so both vanish at reboot). It is written by a step of the same
 * transaction that changes the kernel, so a rollback (or a confirm timeout)
 * puts the previous record back with the previous state. `plan` reads it to
 * know which limits and blocklists the file made and what their rules said.
 * @module
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { hostFiles } from '../host/files.js';
import type { Step } from '../plan/types.js';
import type { ObjectRecord } from './objects.js';

/** Directory of the records (`$NETFENCE_DECLARE_DIR` or `/run/netfence/declare`). */
export const DECLARE_DIR = process.env.NETFENCE_DECLARE_DIR ?? '/run/netfence/declare';

/** The record of a file's objects in one namespace. */
export interface DeclareState {
  version: 1;
  owner: string;
  netns?: string | undefined;
  objects: Record<string, ObjectRecord>;
}

/** Path of the record of `owner` in `netns`. */
export function statePath(owner: string, netns: string | undefined): string {
  const ns = (netns ?? 'host').replace(/[^A-Za-z0-9_.-]/g, '_');
  return join(DECLARE_DIR, `${ns}-${createHash('sha256').update(owner).digest('hex').slice(0, 16)}.json`);
}

/** The record, or undefined when there is none (or it cannot be read: then `plan` relies on the kernel alone). */
export function readState(owner: string, netns: string | undefined): { state: DeclareState | undefined; text: string | undefined } {
  const path = statePath(owner, netns);
  try {
    if (!hostFiles().exists(path)) return { state: undefined, text: undefined };
    const text = hostFiles().read(path);
    const s = JSON.parse(text) as DeclareState;
    if (s?.version !== 1 || s.owner !== owner || typeof s.objects !== 'object' || s.objects === null) return { state: undefined, text };
    return { state: s, text };
  } catch {
    return { state: undefined, text: undefined };
  }
}

/** Make sure the records' directory exists (outside any plan: an empty directory on tmpfs). */
export function ensureStateDir(): void {
  if (!hostFiles().exists(DECLARE_DIR)) hostFiles().mkdir(DECLARE_DIR, { recursive: true });
}

/** The step that writes `next` (or removes the record when undefined); its undo puts `previousText` back. */
export function stateStep(owner: string, netns: string | undefined, next: DeclareState | undefined, previousText: string | undefined): Step {
  const path = statePath(owner, netns);
  return {
    id: 'declare:state',
    description: `record what the file ${owner} applied (${path})`,
    do: next ? [{ kind: 'write', path, data: `${JSON.stringify(next)}\n` }] : [{ kind: 'unlink', path, ignoreFailure: true }],
    undo: previousText !== undefined ? [{ kind: 'write', path, data: previousText }] : [{ kind: 'unlink', path, ignoreFailure: true }],
  };
}
