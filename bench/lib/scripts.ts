/**
 * Which files of bench/ are benches, for `npm run bench` (bench/run.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The bench scripts in `dir` (bench/), sorted: its *.ts files except the runner, scratch
 * files (`_name.ts`) and helper scripts, i.e. files that another bench starts by path
 * (`'./xdp-sender.ts'`): those take argv and are not benches.
 */
export function benchScripts(dir: string, runner = 'run.ts'): string[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== runner && !f.endsWith('.d.ts') && !f.startsWith('_')).sort();
  const texts = new Map(files.map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
  const started = (f: string): boolean => {
    const quoted = new RegExp(`['"\`]\\./${f.replace(/[.]/g, '\\.')}['"\`]`);
    return files.some((other) => other !== f && quoted.test(texts.get(other) ?? ''));
  };
  return files.filter((f) => !started(f));
}
