/**
 * The examples' assertions: each outcome an example shows is checked, printed
 * with ✔ or ✘, and any ✘ makes the example exit with status 1 (after it has
 * run to the end and removed its lab). Not an example itself: files whose name
 * starts with `_` are not run by test/kernel/examples.test.ts.
 */
import { isDeepStrictEqual } from 'node:util';

let failed = 0;

/** Print `✔ what` when `pass`, else `✘ what` and make the process exit with 1. Returns `pass`. */
export function check(what: string, pass: boolean, detail = ''): boolean {
  console.log(`${pass ? '✔' : '✘'} ${what}${detail ? `: ${detail}` : ''}`);
  if (!pass) {
    failed++;
    process.exitCode = 1;
  }
  return pass;
}

/** {@link check} that `got` deep-equals `want`, printing what was seen (and what was expected on a ✘). */
export function checkEqual(what: string, got: unknown, want: unknown): boolean {
  const pass = isDeepStrictEqual(got, want);
  return check(what, pass, `${JSON.stringify(got)}${pass ? '' : ` (expected ${JSON.stringify(want)})`}`);
}

process.on('exit', () => {
  if (failed > 0) {
    console.error(`${failed} check(s) failed (✘): exit status 1`);
    process.exitCode = 1;
  }
});
