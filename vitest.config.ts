import { defineConfig } from 'vitest/config';

// Two cores on the build machines: keep parallelism modest so real-process
// tests (agent child processes, sandboxes, browsers) are not starved.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    exclude: ['test/e2e-electron/**', 'node_modules/**'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
