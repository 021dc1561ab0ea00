#!/usr/bin/env node
// Makes `npm start` and `npm test` work on a fresh clone: installs dependencies when they are
// missing or older than the lockfile, and (unless --deps-only) compiles the TypeScript.
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit', env: process.env });
const mtime = (f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0);

const installed = path.join(root, 'node_modules', '.package-lock.json');
if (mtime(installed) < mtime(path.join(root, 'package-lock.json'))) {
  process.stderr.write('Installing dependencies (npm ci; better-sqlite3 compiles from source, about a minute)...\n');
  run('npm ci --no-audit --no-fund');
}
if (!process.argv.includes('--deps-only')) run('npx tsc -p tsconfig.build.json');
