import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native addons are safest in child processes; tests that spawn builds need time.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
