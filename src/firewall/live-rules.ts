/**
 * Rules of a live table as this process last saw them (chain, handle,
 * comment), kept up to date from nft's echo of each transaction (`nft -e`:
 * the handles the kernel gave), so that a live change (remove one rule by id,
 * place a route's rules by priority) does not list the table again.
 *
 * What is kept is only a guide to build the next batch: the batch is still
 * checked by the kernel as a whole. A handle that is gone (the table changed
 * behind this process's back) fails the batch atomically; the caller then
 * forgets what it kept, lists the table, and builds the batch again.
 * @module
 */
import { ApplyError, CommandError } from '../errors.js';
import type { ListedRule } from './kernel.js';

type Body = Record<string, unknown>;

function ruleOf(c: unknown, verb: string): Body | undefined {
  const v = (c as Record<string, unknown> | null)?.[verb] as Body | undefined;
  const r = v?.rule;
  return r && typeof r === 'object' ? (r as Body) : undefined;
}

/** Whether a command can change rules of `table` in a way {@link applyEcho} does not follow. */
function unfollowable(c: unknown, table: string): boolean {
  if (!c || typeof c !== 'object') return false;
  const [verb] = Object.keys(c);
  if (verb === undefined) return false;
  const body = (c as Record<string, Body>)[verb] ?? {};
  const [kind] = Object.keys(body);
  const spec = (kind ? body[kind] : undefined) as Body | undefined;
  if (!spec || typeof spec !== 'object') return false;
  const t = kind === 'table' ? spec.name : spec.table;
  if (t !== table) return false;
  if (kind === 'rule') return verb === 'replace';
  if (kind === 'table' || kind === 'chain') return verb === 'delete' || verb === 'destroy' || verb === 'flush';
  return false;
}

/**
 * The rules of `table` after `sent` was committed, given the rules before
 * (`before`, in listing order) and nft's echo of `sent` (same length).
 * `chains` limits which chains are kept. Undefined when the echo cannot be
 * followed (wrong length, a rule without its new handle, a chain or table
 * flushed or deleted): then the caller lists again.
 */
export function applyEcho(before: readonly ListedRule[], table: string, sent: readonly unknown[], echo: readonly unknown[] | undefined, chains?: ReadonlySet<string>): ListedRule[] | undefined {
  if (!echo || echo.length !== sent.length) return undefined;
  const out = [...before];
  for (let i = 0; i < sent.length; i++) {
    const c = sent[i];
    if (unfollowable(c, table)) return undefined;
    for (const verb of ['add', 'insert', 'delete', 'destroy'] as const) {
      const r = ruleOf(c, verb);
      if (!r || r.table !== table || typeof r.chain !== 'string') continue;
      if (chains && !chains.has(r.chain)) continue;
      if (verb === 'delete' || verb === 'destroy') {
        const at = out.findIndex((x) => x.handle === r.handle);
        if (at >= 0) out.splice(at, 1);
        continue;
      }
      const handle = ruleOf(echo[i], verb)?.handle;
      if (typeof handle !== 'number') return undefined;
      const rule: ListedRule = { chain: r.chain, handle, comment: typeof r.comment === 'string' ? r.comment : undefined, packets: 0, bytes: 0 };
      const anchor = typeof r.handle === 'number' ? out.findIndex((x) => x.handle === r.handle) : -1;
      if (typeof r.handle === 'number' && anchor < 0) return undefined;
      if (verb === 'insert') out.splice(anchor >= 0 ? anchor : out.findIndex((x) => x.chain === r.chain) < 0 ? out.length : out.findIndex((x) => x.chain === r.chain), 0, rule);
      else if (anchor >= 0) out.splice(anchor + 1, 0, rule);
      else out.push(rule);
    }
  }
  return out;
}

/**
 * Whether a failed apply was refused at a rule command that names a handle
 * (`delete rule … handle`, `insert rule … handle`) because it does not exist:
 * what a kept handle that went stale looks like. Other failures (a rule the
 * kernel refuses, an injected fault) are not retried.
 */
export function failedAtStaleHandle(error: ApplyError): boolean {
  if (error.phase !== 'nft') return false;
  const cause = error.cause;
  if (!(cause instanceof CommandError)) return false;
  const c = cause.failure.failedCommand;
  const r = ruleOf(c, 'delete') ?? ruleOf(c, 'insert') ?? ruleOf(c, 'destroy');
  return r !== undefined && typeof r.handle === 'number' && /No such file or directory/.test(cause.failure.stderr);
}
