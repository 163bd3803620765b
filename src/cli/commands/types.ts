/** One `netfence` subcommand. */
export interface CliCommand {
  /** Words that select it, e.g. `['capabilities']` or `['dpi', 'classify']`. */
  path: string[];
  /** One line for `netfence --help`. */
  summary: string;
  /** Usage text shown by `netfence <command> --help`. */
  usage: string;
  /** Runs the command with the remaining argv; resolves to the exit code. */
  run(args: string[]): Promise<number>;
}
