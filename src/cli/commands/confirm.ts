/** `netfence confirm`: not built yet (issue 15). */
import type { CliCommand } from './types.js';

export const confirmCommands: CliCommand[] = [
  {
    path: ['confirm'],
    summary: 'not built yet',
    usage: 'usage: netfence confirm',
    async run() {
      console.error('netfence confirm: not built yet');
      return 1;
    },
  },
];
