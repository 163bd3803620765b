/**
 * The real host: this machine. Processes through execa / node:child_process
 * (host/run.ts, host/spawn.ts), nft through host/nft.ts, files through
 * node:fs (host/files.ts), bpf(2) through the native boundary (host/bpf.ts over host/libc.ts).
 * @module
 */
import { realBpf } from './bpf-real.js';
import { realFiles } from './files.js';
import type { Host } from './host.js';
import { countSetElementsOnMachine } from './nft-elements.js';
import { nftTransactOnMachine } from './nft-echo.js';
import { nftApplyPreferInProcess } from './libnftables.js';
import { probeObjectOnMachine } from './nft-object.js';
import { nftListManyOnMachine, nftListOnMachine } from './nft.js';
import { runOnMachine, runSyncOnMachine } from './run.js';
import { spawnOnMachine } from './spawn.js';

/** This machine. Every member is called lazily, so module cycles never see an uninitialised binding. */
export const realHost: Host = {
  name: 'real',
  run: (argv, options) => runOnMachine(argv, options),
  runSync: (argv, options) => runSyncOnMachine(argv, options),
  spawn: (argv, options) => spawnOnMachine(argv, options),
  nft: {
    apply: (commands, options) => nftApplyPreferInProcess(commands, options),
    list: (target, options) => nftListOnMachine(target, options),
    listMany: (commands, options) => nftListManyOnMachine(commands, options),
    countElements: (family, table, set, options) => countSetElementsOnMachine(family, table, set, options?.netns, options),
    transact: (commands, options) => nftTransactOnMachine(commands, options),
    probeObject: (family, table, type, name, options) => probeObjectOnMachine(family, table, type, name, options?.netns),
  },
  get files() {
    return realFiles;
  },
  get bpf() {
    return realBpf;
  },
};
