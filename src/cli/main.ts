/**
 * The `netfence` command: a thin dispatcher over the public API.
 * Each subcommand lives in src/cli/commands/ and is registered in commands/index.ts.
 */
import { NetfenceError } from '../errors.js';
import { commands } from './commands/index.js';

function help(): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length), 10);
  return ['usage: netfence <command> [options]', '', 'commands:', ...commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(help());
    return argv.length === 0 ? 1 : 0;
  }
  // Longest path match first.
  const sorted = [...commands].sort((a, b) => b.path.length - a.path.length);
  const cmd = sorted.find((c) => c.path.every((w, i) => argv[i] === w));
  if (!cmd) {
    console.error(`netfence: unknown command '${argv.join(' ')}'\n\n${help()}`);
    return 2;
  }
  const rest = argv.slice(cmd.path.length);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    // a netfence error names its stable code (NetfenceErrorCode); its message says the rest
    console.error(e instanceof NetfenceError ? `netfence: ${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
