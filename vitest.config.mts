import path from 'node:path';
import { defineConfig } from 'vitest/config';

// The projects' import aliases (tsconfig.base.json paths; package.json "imports" at run time) point
// at the sources in tests.
const PROJECTS = ['schema', 'platform', 'command', 'query', 'projections', 'delivery', 'expiry', 'sandbox', 'api', 'cli'];

export default defineConfig({
  resolve: {
    // One graphql instance: type-graphql and Apollo load graphql's CommonJS entry, so our code
    // must too, and graphql-query-complexity's ESM build (which names index.mjs) is inlined and
    // pointed at the same files; two instances fail with "from another module or realm".
    alias: [
      { find: /^graphql$/, replacement: 'graphql/index.js' },
      { find: /^graphql\/(.*)\.mjs$/, replacement: 'graphql/$1.js' },
      ...PROJECTS.map((p) => ({ find: new RegExp(`^#${p}/(.*)$`), replacement: path.resolve(import.meta.dirname, p, 'src') + '/$1' })),
    ],
  },
  test: {
    include: ['**/*.spec.ts'],
    exclude: ['node_modules/**', 'dist/**', 'data/**', '.local/**'],
    server: { deps: { inline: ['graphql-query-complexity'] } },
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
