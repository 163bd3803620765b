/**
 * Every example builds its own lab and must run to the end, assert its
 * outcomes (examples/_check.ts prints ✔ or ✘) and exit with status 0: an
 * example that prints a ✘ exits with status 1, and so fails here.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/host/run.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.ts') && !f.startsWith('_'));

describe('examples', () => {
  it('has examples to run', () => {
    expect(examples.length).toBeGreaterThanOrEqual(6);
  });

  it('the examples\' check helper: a ✘ makes the process exit with status 1 (after running to the end); only ✔ exits 0', async () => {
    const script = (pass: boolean): string =>
      `const { check, checkEqual } = await import(${JSON.stringify(join(root, 'examples', '_check.ts'))});` +
      `check('first', true); checkEqual('second', ${pass ? 1 : 2}, 1); console.log('reached the end');`;
    const bad = await run([process.execPath, '--import', 'tsx', '--input-type=module', '-e', script(false)], { what: 'a failing check' });
    expect(bad.ok).toBe(false);
    if (bad.ok) throw new Error("the failing check exited 0");
    expect(bad.val.failure.exitCode).toBe(1);
    expect(bad.val.failure.stdout).toContain('✔ first');
    expect(bad.val.failure.stdout).toContain('✘ second: 2 (expected 1)');
    expect(bad.val.failure.stdout).toContain('reached the end');
    expect(bad.val.failure.stderr).toContain('1 check(s) failed');
    const good = await run([process.execPath, '--import', 'tsx', '--input-type=module', '-e', script(true)], { what: 'passing checks' });
    expect(good.ok, good.err ? good.val.message : '').toBe(true);
    if (good.ok) expect(good.val.stdout).toContain('✔ second: 1');
  });

  for (const file of examples) {
    it(`${file} runs to the end, every check ✔, exit status 0`, async () => {
      const r = await run([process.execPath, '--import', 'tsx', join(root, 'examples', file)], { timeoutMs: 240_000, what: `example ${file}` });
      const out = r.ok ? r.val.stdout : r.val.failure.stdout;
      if (r.err) console.log(out.slice(-3000), r.val.failure.stderr.slice(-3000));
      expect(r.ok ? 0 : r.val.failure.exitCode, `exit status of ${file}`).toBe(0);
      expect(out).toContain('✔');
      expect(out.split('\n').filter((l) => l.includes('✘')), `✘ lines of ${file}`).toEqual([]);
    }, 300_000);
  }
});
