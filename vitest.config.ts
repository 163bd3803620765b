import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'kernel',
          include: ['test/kernel/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
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
