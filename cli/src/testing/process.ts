import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The clone's root, whether this runs from the sources (tests) or from dist/ (benchmarks). */
const root = ((): string => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${__dirname}`);
  }
})();

/** Compiles the service (incremental: fast when nothing changed), for tests that run it as a process. */
export const buildService = (): void => {
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
};

export type ServiceProcess = Readonly<{ child: ChildProcess; url: string; /** The ops port's base URL (/readyz, /metrics). */ opsUrl: string; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }>;

/** Resolves once the process printed its roles (everything started); `url` is empty without the API role. */

/**
 * `notify start` as a real process on the given data directory and a free port (`nodeArgs`:
 * --cpu-prof, say); `nice` starts it through nice(1), so that every thread it makes has that priority.
 */
export const startServiceProcess = async (env: Record<string, string>, nodeArgs: readonly string[] = [], nice = 0): Promise<ServiceProcess> => {
  const command = [process.execPath, ...nodeArgs, path.join(root, 'dist/cli/src/main.js'), 'start'];
  const child = spawn(nice === 0 ? command[0]! : 'nice', nice === 0 ? command.slice(1) : ['-n', String(nice), ...command], {
    env: { ...process.env, PORT: '0', OPS_PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      if (!/Roles:\s+/.test(out)) return;
      clearInterval(timer);
      resolve(/GraphQL API:\s+(\S+)/.exec(out)?.[1] ?? '');
    }, 20);
    void exited.then(() => {
      clearInterval(timer);
      reject(new Error(`service exited before it started:\n${out}`));
    });
  });
  const opsUrl = /Ops:\s+(http:\/\/\S+?)\/readyz/.exec(out)?.[1] ?? '';
  return { child, url, opsUrl, output: () => out, exited };
};

export type SandboxProcess = Readonly<{
  descriptionFile: string;
  control: string;
  /** GET /control/<instance>/accepted with the given query. */
  accepted: (instance: string, query?: Record<string, string | number>) => Promise<{ count: number; messages: { at: number; address: string; deliveryId?: string }[] }>;
  stats: (instance: string) => Promise<{ accepted: number; requests: number }>;
  setFaults: (instance: string, faults: Record<string, unknown>) => Promise<void>;
  stop: () => Promise<void>;
}>;

/** The provider sandbox in its own process (built first), so its event loop and timestamps are its own. */
export const startSandboxProcess = async (dir: string, args: readonly string[] = []): Promise<SandboxProcess> => {
  const child = spawn(process.execPath, [path.join(root, 'dist/sandbox/src/main.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`sandbox exited with ${code}`)));
  });
  const description = JSON.parse(line) as { control: string };
  const descriptionFile = path.join(dir, 'sandbox.json');
  (await import('node:fs')).writeFileSync(descriptionFile, line);
  const json = async (url: string, init?: RequestInit) => {
    const res = await fetch(url, init);
    if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<any>;
  };
  return {
    descriptionFile,
    control: description.control,
    accepted: (instance, query = {}) => json(`${description.control}/${instance}/accepted?${new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))}`),
    stats: async (instance) => (await json(`${description.control}/${instance}`)).stats,
    setFaults: async (instance, faults) => {
      await json(`${description.control}/${instance}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(faults) });
    },
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
};
