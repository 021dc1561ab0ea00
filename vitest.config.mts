import { defineConfig } from 'vitest/config';

export default defineConfig({
  // type-graphql is CommonJS; without this alias vitest can load graphql twice (ESM and CJS).
  resolve: { alias: { graphql: 'graphql/index.js' } },
  test: {
    include: ['**/*.spec.ts'],
    exclude: ['node_modules/**', 'dist/**', 'data/**'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
