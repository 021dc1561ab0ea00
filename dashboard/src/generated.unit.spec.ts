import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const codegen = path.resolve(__dirname, '..', 'codegen.mjs');

describe("the dashboard's operation types", () => {
  it('are current with schema/schema.graphql and src/operations.graphql (node dashboard/codegen.mjs writes them)', () => {
    expect(() => execFileSync(process.execPath, [codegen, '--check'], { stdio: 'pipe' })).not.toThrow();
  });
});
