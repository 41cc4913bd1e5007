import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Budgets for a loaded machine, not an idle one: a test that takes 20 s alone takes a minute
    // and more beside another CPU-heavy process on two cores. A budget catches a hang; a slow
    // machine must not fail a test. Heavier tests declare their own, larger budgets.
    testTimeout: 180_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // Two cores: the suite runs real git, Swift and kubectl processes beside the workers.
    maxWorkers: 2,
  },
});
