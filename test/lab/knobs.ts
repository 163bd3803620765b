/**
 * Size knobs of the test suites (environment variables that set how many
 * cases or trials a suite runs). A knob may make a suite larger, never smaller
 * than its stated size: a value below it (0, a typo, a negative number) throws
 * when the test file loads, so the file fails loudly instead of passing with
 * an emptied loop.
 */

/**
 * The value of the size knob `name` (an integer environment variable), or
 * `stated` when it is unset or empty. Throws when the value is not an
 * integer or is below `stated`.
 */
export function sizeKnob(name: string, stated: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return stated;
  const v = Number(raw);
  if (!Number.isInteger(v)) throw new Error(`${name}=${JSON.stringify(raw)} is not a whole number (the suite's stated size is ${stated}; a larger value runs more)`);
  if (v < stated) throw new Error(`${name}=${v} is below the suite's stated size of ${stated}: a knob may raise it, never shrink it (unset ${name} to run ${stated})`);
  return v;
}
