/**
 * Every example builds its own lab and must run to the end (exit 0), so the
 * examples in the repository keep working as the library changes.
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
  for (const file of examples) {
    it(`${file} runs to the end`, async () => {
      const r = await run([process.execPath, '--import', 'tsx', join(root, 'examples', file)], { timeoutMs: 240_000, what: `example ${file}` });
      if (r.err) console.log(r.val.failure.stdout.slice(-3000), r.val.failure.stderr.slice(-3000));
      expect(r.ok).toBe(true);
    }, 300_000);
  }
});
