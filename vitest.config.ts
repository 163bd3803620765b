import { defineConfig } from 'vitest/config';

// Inside the matrix's qemu VM (software emulation, NETFENCE_VM=1) everything runs
// 2-4x slower: timeouts stretch with it. They are limits, never assertions.
// The same factor as test/lab/scale.ts (timeScale), which tests use for their waiting windows.
const scale = Number(process.env.NETFENCE_TIMEOUT_SCALE ?? (process.env.NETFENCE_VM ? 4 : 1));

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 60_000 * scale,
        },
      },
      {
        test: {
          name: 'kernel',
          include: ['test/kernel/**/*.test.ts'],
          testTimeout: 300_000 * scale,
          hookTimeout: 120_000 * scale,
          // Only in the emulated Debian kernel column (qemu TCG): a failed test runs once more, because
          // the emulator has killed node itself there (SIGILL once, a bogus wasm bounds trap once).
          // A test that fails twice still fails; on real CPUs nothing is retried.
          retry: process.env.NETFENCE_VM ? 1 : 0,
          // Kernel tests share one machine: run files one at a time so that
          // throughput measurements and namespace churn do not disturb each other.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          globalSetup: ['test/lab/global-setup.ts'],
        },
      },
    ],
  },
});
