/**
 * Small helpers of XdpBlocklist: its not-attached error, entry de-duplication
 * and the first line of a tool's complaint for a short reason.
 * @module
 */
import { NetfenceError } from '../errors.js';
import type { BlockEntry } from './entries.js';

/** The error of a data-plane call on a blocklist that was never applied. */
export function notAttached(name: string): NetfenceError {
  return new NetfenceError('NOT_ATTACHED', `blocklist ${name} is not attached (no pinned maps, no nft table)`, { hint: 'call apply() first' });
}

/** Entries without repeats (by their normalized text), first occurrence kept. */
export function uniq(list: BlockEntry[]): BlockEntry[] {
  const seen = new Set<string>();
  return list.filter((e) => (seen.has(e.text) ? false : (seen.add(e.text), true)));
}

/** The tool's own complaint (the `tool said:` line) or the first line, at most 300 characters. */
export function firstLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  const said = lines.find((l) => l.startsWith('tool said:'));
  return (said ? `${lines[0]?.split(':')[0]}: ${said.slice(10).trim()}` : (lines[0] ?? s)).slice(0, 300);
}
