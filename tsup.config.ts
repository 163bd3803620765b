import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      advanced: 'src/advanced.ts',
      testing: 'src/testing.ts',
      smartproxy: 'src/integrations/smartproxy.ts',
      lab: 'src/lab/index.ts',
      'nfqueue-worker': 'src/dpi/nfqueue/worker.ts',
      'dpi-handler': 'src/dpi/blocker-handler.ts',
      'confirm-watchdog': 'src/plan/watchdog-main.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    splitting: true,
    shims: true,
  },
  {
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
  },
]);
