/**
 * The executor's host actions: one plan action (exec, write, mkdir, rmdir,
 * unlink, nft-prune, xdp-*) in a namespace, and a step's `do` / `undo` lists.
 * @module
 */
import { CommandError, type NetfenceError } from '../errors.js';
import { hostFiles } from '../host/files.js';
import { run } from '../host/run.js';
import { Err, Ok, type Result } from '../result.js';
import { runXdpAction } from './actions-xdp.js';
import { faultAt } from './faults.js';
import { runNftPrune } from './nft-prune.js';
import type { Action, Step } from './types.js';

function fsError(what: string, path: string, netns: string | undefined, e: unknown): CommandError {
  return new CommandError(what, { argv: [what, path], netns, stdout: '', stderr: (e as Error)?.message ?? String(e) });
}

/** Paths whose content depends on the network namespace of the process that opens them. */
function netnsScoped(path: string): boolean {
  return path.startsWith('/proc/sys/net/') || path.startsWith('/proc/net/') || path.startsWith('/proc/self/net/');
}

/** Perform one plan action (exec, write, mkdir, rmdir, unlink) in `netns`. @internal (used by reconcile) */
export async function runAction(a: Action, netns: string | undefined): Promise<Result<void, CommandError>> {
  switch (a.kind) {
    case 'exec': {
      const what = `step \`${a.argv.join(' ')}\``;
      // stdin on a real pipe when there is input: some tools open /dev/stdin by path (nft -f -)
      const r = await run(a.argv, { netns, input: a.input, what });
      return r.ok ? Ok(undefined) : Err(r.val);
    }
    case 'write': {
      if (netns && netnsScoped(a.path)) {
        // Must be opened from inside the namespace, or it would change the machine's own.
        const r = await run(['tee', a.path], { netns, input: a.data, what: `write ${a.path}` });
        return r.ok ? Ok(undefined) : Err(r.val);
      }
      try {
        hostFiles().write(a.path, a.data);
        return Ok(undefined);
      } catch (e) {
        return Err(fsError('write', a.path, netns, e));
      }
    }
    case 'mkdir':
    case 'rmdir':
    case 'unlink': {
      try {
        // files on the current host (cgroup v2 tree, /run/netfence), so a FakeHost answers them
        if (a.kind === 'mkdir') hostFiles().mkdir(a.path);
        else if (a.kind === 'rmdir') hostFiles().rmdir(a.path);
        else hostFiles().unlink(a.path);
        return Ok(undefined);
      } catch (e) {
        return Err(fsError(a.kind, a.path, netns, e));
      }
    }
    case 'nft-prune':
      return runNftPrune(a, netns);
    default:
      return runXdpAction(a, netns);
  }
}

/** Run a step's `do` actions; returns how many succeeded and the error, if any. */
export async function runStep(step: Step, netns: string | undefined, index = 0): Promise<{ done: number; error?: CommandError }> {
  let done = 0;
  for (const a of step.do) {
    const r = faultAt(`step:${index}:${done}`) ? Err(injectedError(`step ${step.id} action ${done}`, netns)) : await runAction(a, netns);
    if (r.err && !a.ignoreFailure) return { done, error: r.val };
    done++;
  }
  return { done };
}

/** The error an injected fault produces (tests only, see faults.ts). */
export function injectedError(what: string, netns: string | undefined): CommandError {
  return new CommandError(what, { argv: ['(fault injected)'], netns, stdout: '', stderr: `fault injected at ${what}`, exitCode: 1 });
}

/** Run a step's `undo` actions in order; failures are tolerated (and reported unless `ignoreFailure`). */
export async function undoStep(step: Step, netns: string | undefined): Promise<NetfenceError[]> {
  const errs: NetfenceError[] = [];
  for (const a of step.undo) {
    const r = await runAction(a, netns);
    if (r.err && !a.ignoreFailure) errs.push(r.val);
  }
  return errs;
}
