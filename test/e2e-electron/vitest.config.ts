// `npm run test:electron`: the Playwright _electron suite. Not part of
// `npm test` (the Electron binary cannot be downloaded on our build machines);
// it skips itself, saying so, where no binary is installed.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: `${import.meta.dirname}/../..`,
    include: ['test/e2e-electron/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
