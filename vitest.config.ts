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
