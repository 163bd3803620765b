/** `netfence xdp add`: not built yet (issue 15). */
import type { CliCommand } from './types.js';

export const xdpCommands: CliCommand[] = [
  {
    path: ['xdp', 'add'],
    summary: 'not built yet',
    usage: 'usage: netfence xdp add',
    async run() {
      console.error('netfence xdp add: not built yet');
      return 1;
    },
  },
];
