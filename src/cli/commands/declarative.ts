/** `netfence plan`: not built yet (issue 15). */
import type { CliCommand } from './types.js';

export const declarativeCommands: CliCommand[] = [
  {
    path: ['plan'],
    summary: 'not built yet',
    usage: 'usage: netfence plan',
    async run() {
      console.error('netfence plan: not built yet');
      return 1;
    },
  },
];
