import type { CliCommand } from './types.js';
import { capabilitiesCommand } from './capabilities.js';
import { throttleBackendsCommand } from './throttle.js';
import { dpiClassifyCommand } from './dpi-classify.js';
import { reconcileCommand } from './reconcile.js';

/** Every subcommand; each lives in its own file and is registered here with one line. */
export const commands: CliCommand[] = [
  capabilitiesCommand,
  throttleBackendsCommand,
  dpiClassifyCommand,
  reconcileCommand,
];
