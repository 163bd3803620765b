import type { CliCommand } from './types.js';
import { capabilitiesCommand } from './capabilities.js';
import { throttleBackendsCommand } from './throttle.js';
import { dpiClassifyCommand } from './dpi-classify.js';
import { reconcileCommand } from './reconcile.js';
import { statusCommands } from './status.js';
import { metricsCommands } from './metrics.js';
import { declarativeCommands } from './declarative.js';
import { confirmCommands } from './confirm.js';
import { xdpCommands } from './xdp.js';

/** Every subcommand; each file exports its command(s) and is registered here with one line. */
export const commands: CliCommand[] = [
  capabilitiesCommand,
  throttleBackendsCommand,
  dpiClassifyCommand,
  reconcileCommand,
  ...statusCommands,
  ...metricsCommands,
  ...declarativeCommands,
  ...confirmCommands,
  ...xdpCommands,
];
