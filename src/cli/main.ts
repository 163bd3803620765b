/**
 * The `netfence` command: a thin dispatcher over the public API.
 * Each subcommand lives in src/cli/commands/ and is registered in commands/index.ts.
 *
 * Exit codes (every command): 0 success, 1 the operation failed on the host,
 * 2 invalid arguments or input, 3 not confirmed (and `dpi classify`: BitTorrent found).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, fail } from './commands/common.js';
import { commands } from './commands/index.js';

/** This package's version, from the package.json above this file (src/cli or dist). */
function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      const j = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (j.name === 'netfence' && j.version) return j.version;
    }
    dir = resolve(dir, '..');
  }
  return 'unknown';
}

function help(): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length), 10);
  return [
    'usage: netfence <command> [options]        (netfence <command> --help for its options)',
    '       netfence --version [--json]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    'Every command takes --json for scripts (JSON on stdout; progress and errors on stderr).',
    'Exit codes: 0 ok · 1 failed on the host · 2 bad arguments or input · 3 not confirmed',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  if (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version') {
    console.log(json ? JSON.stringify({ name: 'netfence', version: version(), node: process.versions.node }) : `netfence ${version()}`);
    return EXIT.ok;
  }
  if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    if (json) console.log(JSON.stringify({ version: version(), commands: commands.map((c) => ({ command: c.path.join(' '), summary: c.summary })) }, null, 2));
    else console.log(help());
    return EXIT.ok;
  }
  if (argv.length === 0) {
    console.error(help());
    return EXIT.usage;
  }
  // Longest path match first.
  const sorted = [...commands].sort((a, b) => b.path.length - a.path.length);
  const cmd = sorted.find((c) => c.path.every((w, i) => argv[i] === w));
  if (!cmd) {
    const words = argv.filter((a) => !a.startsWith('-')).slice(0, 2);
    const near = commands.filter((c) => c.path[0] === words[0]).map((c) => `netfence ${c.path.join(' ')}`);
    console.error(`netfence: unknown command '${words.join(' ') || argv[0]}'.${near.length ? ` Did you mean: ${near.join(', ')}?` : ' Run `netfence --help` for the list.'}`);
    if (!near.length) console.error(`\n${help()}`);
    return EXIT.usage;
  }
  const rest = argv.slice(cmd.path.length);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return EXIT.ok;
  }
  return cmd.run(rest);
}

// exit once stdout has taken everything (a large --json document on a pipe)
const exit = (code: number) => process.stdout.write('', () => process.exit(code));

main(process.argv.slice(2)).then(
  (code) => exit(code),
  (e: unknown) => {
    // an unexpected error: one paragraph (a netfence error names its stable code) and what to do
    exit(fail(process.argv.slice(2, 4).filter((a) => !a.startsWith('-')).join(' '), e));
  },
);
