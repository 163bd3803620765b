/** `netfence status`: not built yet (issue 15). */
import type { CliCommand } from './types.js';

export const statusCommands: CliCommand[] = [
  {
    path: ['status'],
    summary: 'not built yet',
    usage: 'usage: netfence status',
    async run() {
      console.error('netfence status: not built yet');
      return 1;
    },
  },
];
