/**
 * What iptables-nft leaves behind: it creates table `filter` and the built-in
 * chains on first use, and they outlive the steering chain. The xtables form
 * of the steering plan therefore carries one more step, first in the plan so
 * that its undo runs last: it does nothing (the xtables steps cause the
 * creation) and its undo is an `nft-prune` action per family that removes
 * what did not exist before, once unused (see src/plan/nft-prune.ts).
 *
 * Which objects existed before is a host fact, read before compiling
 * ({@link readXtablesFilter}) and passed to the pure compile
 * ({@link scaffoldingStep}).
 * @module
 */
import type { CommandError } from '../errors.js';
import { listingObjects, nftList } from '../host/nft.js';
import { isNoSuchTable } from '../plan/nft-prune.js';
import { Err, Ok, type Result } from '../result.js';
import type { Action, Step } from '../plan/types.js';

/** The built-in chains iptables-nft creates in table filter on first use. */
export const BUILTIN_CHAINS = ['INPUT', 'FORWARD', 'OUTPUT'] as const;

/** One family's iptables-nft `filter` table as found before the blocker applied its rules. */
export interface XtablesFilterFact {
  family: 'ip' | 'ip6';
  /** Whether table `filter` existed. */
  table: boolean;
  /** Built-in chains it had (empty when the table did not exist). */
  chains: string[];
}

/**
 * Read which `filter` tables and built-in chains exist (one listing per
 * family). Only "no such table" counts as absent; any other failure is an
 * error (guessing "absent" could later remove a chain that was there before).
 */
export async function readXtablesFilter(netns: string | undefined, families: readonly ('ipv4' | 'ipv6')[]): Promise<Result<XtablesFilterFact[], CommandError>> {
  const out: XtablesFilterFact[] = [];
  for (const f of families) {
    const family = f === 'ipv4' ? 'ip' : 'ip6';
    const l = await nftList(['table', family, 'filter'], { netns });
    if (l.err && !isNoSuchTable(l.val)) return Err(l.val);
    const chains = l.ok ? listingObjects(l.val).filter((o) => o.kind === 'chain').map((o) => String(o.value['name'] ?? '')) : [];
    out.push({ family, table: l.ok, chains: BUILTIN_CHAINS.filter((c) => chains.includes(c)) });
  }
  return Ok(out);
}

/**
 * The step whose undo removes what iptables-nft creates for the steering
 * rules and did not exist before (pure). Its `do` is empty on purpose: the
 * creation is a side effect of the xtables steps that follow it, and the step
 * has no inverse of its own — the undo is the cleanup. Undefined when nothing
 * can be created (every family's table and built-in chains existed).
 */
export function scaffoldingStep(before: readonly XtablesFilterFact[]): Step | undefined {
  const undo: Action[] = [];
  for (const f of before) {
    const missing = BUILTIN_CHAINS.filter((c) => !f.chains.includes(c));
    if (f.table && missing.length === 0) continue;
    undo.push({ kind: 'nft-prune', family: f.family, table: 'filter', chains: missing, deleteTable: !f.table });
  }
  if (undo.length === 0) return undefined;
  return {
    id: 'dpi:xtables-scaffolding',
    description:
      'iptables-nft creates table filter and its built-in chains on first use (the steps that follow); undone last: the ones that did not exist before are removed once unused (a chain only while empty, the table only when it holds nothing else)',
    do: [],
    undo,
  };
}
