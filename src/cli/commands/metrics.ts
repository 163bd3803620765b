/** `netfence metrics`: not built yet (issue 15). */
import type { CliCommand } from './types.js';

export const metricsCommands: CliCommand[] = [
  {
    path: ['metrics'],
    summary: 'not built yet',
    usage: 'usage: netfence metrics',
    async run() {
      console.error('netfence metrics: not built yet');
      return 1;
    },
  },
];
