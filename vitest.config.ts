import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * One run covers unit tests next to the code (`packages/* /src/**`), end-to-end tests against real
 * servers (`test/**`) and the client's type tests (`*.test-d.ts`, checked by tsc).
 * Tests import built packages (`npm test` builds first), because child processes need real JS.
 */
export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    pool: 'forks',
    // Most of a test file's time waits on child processes, servers and disks, not on this CPU: two files
    // at a time even on a 2-core machine, where Vitest's default (cores − 1) ran one (the whole suite
    // 1,051 s one at a time, 760 s two at a time, 2026-11-28).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 60_000,
    hookTimeout: 120_000,
    allowOnly: false,
    typecheck: {
      enabled: true,
      include: ['packages/*/src/**/*.test-d.ts'],
      tsconfig: './tsconfig.typecheck.json',
    },
    reporters: ['default'],
  },
});
