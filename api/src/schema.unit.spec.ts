import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { printApiSchema } from './schema';

describe('schema/schema.graphql', () => {
  it('matches the schema built from the code (run `npm run schema:emit` after changing the API)', async () => {
    const checkedIn = fs.readFileSync(path.join(__dirname, '../../schema/schema.graphql'), 'utf8');
    expect(checkedIn).toBe(await printApiSchema());
  });
});
