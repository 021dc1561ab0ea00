import fs from 'node:fs';
import path from 'node:path';
import { printApiSchema } from './schema';

const target = path.resolve(__dirname, '../../../schema/schema.graphql');
printApiSchema().then((sdl) => {
  fs.writeFileSync(target, sdl);
  process.stdout.write(`wrote ${path.relative(process.cwd(), target)}\n`);
});
