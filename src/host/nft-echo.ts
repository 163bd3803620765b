/**
 * One nft transaction that also says what it committed: `nft -e -j -f -`
 * (echo), whose output is the batch again, command for command, with the
 * handles the kernel gave to added rules, chains, sets and objects. Lets a
 * caller keep handles instead of listing a table later. Failures are named
 * exactly like {@link nftApplyOnMachine}'s.
 * @module
 */
import { CommandError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { describeCommand, localizeFailure, nftDocument, nftStats, type NftApplyOptions } from './nft.js';
import { run } from './run.js';

/**
 * Apply `commands` as one transaction and return nft's echo of them (the
 * `nftables` array, same order and length as `commands`). An echo that cannot
 * be read after a successful commit gives `[]` (the commit stands).
 */
export async function nftApplyEchoOnMachine(commands: readonly unknown[], options: Omit<NftApplyOptions, 'check'> = {}): Promise<Result<unknown[], CommandError>> {
  if (commands.length === 0) return Ok([]);
  nftStats.applies++;
  const what = options.what ?? 'nft apply';
  const r = await run(['nft', '-e', '-j', '-f', '-'], { netns: options.netns, input: nftDocument(commands), timeoutMs: options.timeoutMs, what });
  if (r.ok) return Ok(parseEcho(r.val.stdout, commands.length));
  const failure = r.val.failure;
  if (options.noLocalize || failure.timedOut || failure.exitCode === undefined || failure.exitCode === 127) return Err(r.val);
  const idx = await localizeFailure(commands, failure.stderr, options);
  if (idx === undefined) return Err(r.val);
  const failedCommand = commands[idx];
  return Err(new CommandError(what, { ...failure, failedIndex: idx, failedCommand, failedText: describeCommand(failedCommand, options.render) }, r.val.hint ? { hint: r.val.hint } : {}));
}

/** The echoed commands, or `[]` when the output is not one `{"nftables": [...]}` of `n` commands. */
export function parseEcho(stdout: string, n: number): unknown[] {
  try {
    const doc = JSON.parse(stdout) as { nftables?: unknown };
    return Array.isArray(doc.nftables) && doc.nftables.length === n ? doc.nftables : [];
  } catch {
    return [];
  }
}
