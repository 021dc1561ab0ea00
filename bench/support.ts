import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

export type LoadResult = Readonly<{ name: string; requests: number; errors: number; seconds: number; p50: number; p99: number; max: number; rps: number }>;

/** `clients` loops, each sending one request at a time for `seconds`; latencies in ms. */
export const load = async (name: string, clients: number, seconds: number, request: (client: number, i: number) => Promise<boolean>): Promise<LoadResult> => {
  const latencies: number[] = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; Date.now() < end; i++) {
        const t = performance.now();
        const ok = await request(client, i).catch(() => false);
        latencies.push(performance.now() - t);
        if (!ok) errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { name, requests: latencies.length, errors, seconds: elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] ?? NaN, rps: latencies.length / elapsed };
};

export const fmt = (r: LoadResult): string =>
  `${r.name.padEnd(28)} ${String(r.requests).padStart(7)} req  ${r.rps.toFixed(0).padStart(6)}/s  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(6)} ms  max ${r.max.toFixed(1).padStart(6)} ms  errors ${r.errors}`;

export type Service = Readonly<{ url: string; operatorKey: string; dataDir: string; process: ChildProcess; stop: () => Promise<void> }>;

/** Starts the built service (`npm run build` first) as its own process on a fresh data directory. */
export const startService = async (env: Record<string, string> = {}): Promise<Service> => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-bench-'));
  const main = path.resolve(__dirname, '../cli/src/main.js');
  const child = spawn(process.execPath, [main, 'start'], {
    env: { ...process.env, PORT: '0', OPS_PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /GraphQL API:\s+(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`service exited with ${code}: ${out}`)));
  });
  const operatorKey = fs.readFileSync(path.join(dataDir, 'operator.key'), 'utf8').trim();
  return {
    url,
    operatorKey,
    dataDir,
    process: child,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
};

/** A lean keep-alive client (node:http): fetch costs the shared CPU several times more per request. */
export const graphql = (url: string) => {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const once = <T = any>(key: string, query: string, variables?: object): Promise<{ data?: T; errors?: unknown[] }> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ query, variables });
      const req = http.request(
        { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
            } catch (e) {
              reject(e);
            }
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  // A keep-alive socket the server closed while idle fails the next request: retry it once.
  return async <T = any>(key: string, query: string, variables?: object) => {
    try {
      return await once<T>(key, query, variables);
    } catch (e) {
      if (!['ECONNRESET', 'EPIPE'].includes((e as { code?: string }).code ?? '')) throw e;
      return once<T>(key, query, variables);
    }
  };
};

/**
 * Open loop: requests start at a fixed total rate whatever the latency, spread over `clients`
 * connections; latency is measured from the scheduled start, so queueing counts.
 */
export const paced = async (name: string, clients: number, rate: number, seconds: number, request: (i: number) => Promise<boolean>): Promise<LoadResult> => {
  const latencies: number[] = [];
  let errors = 0;
  const total = Math.round(rate * seconds);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const due = started + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const ok = await request(i).catch(() => false);
        latencies.push(performance.now() - due);
        if (!ok) errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { name, requests: latencies.length, errors, seconds: elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] ?? NaN, rps: latencies.length / elapsed };
};
