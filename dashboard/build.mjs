// Builds the dashboard into dist/dashboard (or the directory given): types from the schema
// first (codegen.mjs), then one bundle with Vite. No inline script: the page's CSP forbids it.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import { build } from 'vite';
import { generatedFile, generatedText } from './codegen.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

export const buildDashboard = async (outDir = path.join(here, '..', 'dist', 'dashboard')) => {
  const fresh = generatedText();
  if (!fs.existsSync(generatedFile) || fs.readFileSync(generatedFile, 'utf8') !== fresh) fs.writeFileSync(generatedFile, fresh);
  await build({
    root: here,
    base: '/dashboard/',
    configFile: false,
    logLevel: 'warn',
    // The page's only script is the bundle; Vite's preload polyfill would be more of it.
    build: { outDir, emptyOutDir: true, modulePreload: { polyfill: false }, assetsInlineLimit: 0, reportCompressedSize: false },
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  });
  return outDir;
};

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const out = await buildDashboard(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  process.stdout.write(`dashboard built into ${path.relative(process.cwd(), out) || '.'}\n`);
}
