/**
 * One nft transaction with more say than `nftApply`: with `echo`, nft echoes
 * what it committed (`nft -e -j -f -`: the batch again, command for command,
 * with the handles the kernel gave to added rules, chains, sets and objects),
 * so a caller can keep handles instead of listing a table later; with
 * `inProcess: false`, it stays off the event loop: on the libnftables thread
 * (host/libnftables.ts `runOnThread`), or in an nft process where the thread
 * cannot run it. Failures are named exactly like `nftApplyOnMachine`'s.
 * @module
 */
import { CommandError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { describeCommand, localizeFailure, nftDocument, nftStats, type NftApplyOptions } from './nft.js';
import { nftApplyPreferInProcess, runInProcess, runOnThread, type InprocResult } from './libnftables.js';
import { run } from './run.js';

/**
 * Apply `commands` as one transaction; with `echo`, return nft's echo of them
 * (the `nftables` array, same order and length as `commands`; an echo that
 * cannot be read after a successful commit gives `[]`, the commit stands).
 * A small batch runs in this process; with `inProcess: false` on the
 * libnftables thread (host/libnftables.ts); a failure is named through the nft process.
 */
export async function nftTransactOnMachine(commands: readonly unknown[], options: NftApplyOptions & { echo?: boolean; inProcess?: boolean } = {}): Promise<Result<unknown[], CommandError>> {
  if (commands.length === 0) return Ok([]);
  if (options.check || (!options.echo && options.inProcess !== false)) {
    const r = await nftApplyPreferInProcess(commands, options);
    return r.err ? Err(r.val) : Ok([]);
  }
  nftStats.applies++;
  const document = nftDocument(commands);
  // inProcess false: off the event loop — on the libnftables thread, no nft process either
  let inproc: InprocResult | undefined;
  if (options.inProcess === false) {
    inproc = await runOnThread(document, { netns: options.netns, echo: options.echo });
    if (inproc?.ok) nftStats.threadApplies++;
  } else inproc = runInProcess(document, { netns: options.netns, echo: options.echo }); // here echo is asked (see above)
  if (inproc?.ok) return Ok(options.echo ? parseEcho(inproc.stdout, commands.length) : []);
  // not run here, or refused (atomic: nothing changed): the nft process, which names the failed command
  const what = options.what ?? 'nft apply';
  const argv = options.echo ? ['nft', '-e', '-j', '-f', '-'] : ['nft', '-j', '-f', '-'];
  const r = await run(argv, { netns: options.netns, input: document, timeoutMs: options.timeoutMs, what });
  if (r.ok) return Ok(options.echo ? parseEcho(r.val.stdout, commands.length) : []);
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
