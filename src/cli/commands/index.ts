import type { CliCommand } from './types.js';

/** Every subcommand; each lives in its own file and is registered here with one line. */
export const commands: CliCommand[] = [
];
