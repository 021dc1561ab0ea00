import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from './testing/postgres';
import { buildService, startServiceProcess, type ServiceProcess } from './testing/process';
import { until } from './testing/until';

/**
 * Every role as its own process on PostgreSQL (log, read models, keys, leases) and Kafka, each
 * answering /readyz on its ops port; PostgreSQL "stops" (a proxy in front of it refuses and cuts
 * every connection, since the servers are shared) and every role turns not ready, then ready
 * again once it is back.
 */
const { POSTGRES_URL, KAFKA_BROKERS } = process.env;
const ready = Boolean(POSTGRES_URL && KAFKA_BROKERS);
if (!ready) console.warn('cluster readiness e2e skipped: POSTGRES_URL and KAFKA_BROKERS are not both set (npm run servers:up starts the servers and prints them)');

/** A TCP proxy the test can switch off (refusing and cutting connections) and on again, on the same port. */
const startProxy = async (target: { host: string; port: number }) => {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    down: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
    up: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
};

describe.skipIf(!ready)('readiness of the cluster\'s processes follows PostgreSQL', () => {
  const run = `ready${randomBytes(4).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-readiness-'));
  const procs = new Map<string, ServiceProcess>();
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let database: Awaited<ReturnType<typeof createDatabase>> | undefined;
  const status = async (p: ServiceProcess) => (await fetch(`${p.opsUrl}/readyz`, { signal: AbortSignal.timeout(5_000) })).status;
  const all = async (want: number) => (await Promise.all([...procs.values()].map((p) => status(p).catch(() => 0)))).every((s) => s === want);

  beforeAll(async () => {
    buildService();
    database = await createDatabase(POSTGRES_URL!, run);
    const real = new URL(POSTGRES_URL!);
    proxy = await startProxy({ host: real.hostname, port: Number(real.port || 5432) });
    const viaProxy = new URL(POSTGRES_URL!);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    viaProxy.pathname = `/${run}`;
    const env = {
      MASTER_KEY: randomBytes(32).toString('base64'),
      EVENT_STORE: 'postgres', READ_STORE: 'postgres', POSTGRES_URL: viaProxy.toString(),
      BUS: 'kafka', KAFKA_BROKERS: KAFKA_BROKERS!, KAFKA_PREFIX: run,
      READINESS_TIMEOUT_MS: '1000', LOG_LEVEL: 'error',
    };
    const start = async (name: string, roles: string) => procs.set(name, await startServiceProcess({ ...env, ROLES: roles, DATA_DIR: path.join(dir, name) }));
    await start('api', 'api');
    await Promise.all([start('projections', 'projections'), start('delivery', 'delivery'), start('expiry', 'expiry')]);
  }, 180_000);

  afterAll(async () => {
    for (const p of procs.values()) p.child.kill('SIGKILL');
    proxy?.close();
    await database?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('every process answers /readyz on its own ops port; without PostgreSQL each turns not ready within seconds, and ready again after it returns', async () => {
    expect(new Set([...procs.values()].map((p) => p.opsUrl)).size).toBe(4);
    await until(() => all(200), 30_000, 'every process ready');
    for (const p of procs.values()) {
      expect((await fetch(`${p.opsUrl}/livez`)).status).toBe(200);
      expect(await (await fetch(`${p.opsUrl}/metrics`)).text()).toContain('notify_process_cpu_seconds_total');
    }
    await proxy.down();
    const notReadyMs = await until(() => all(503), 15_000, 'every process not ready').catch(async (e) => {
      for (const [name, p] of procs) { console.log(name, await (await fetch(`${p.opsUrl}/readyz`).catch(() => null))?.text(), p.child.exitCode); if (process.env["DUMP_DIR"]) fs.writeFileSync(path.join(process.env["DUMP_DIR"], `${name}.log`), p.output()); }
      throw e;
    });
    // Not wedged: liveness keeps answering, so nothing restarts them for a store outage.
    for (const p of procs.values()) expect((await fetch(`${p.opsUrl}/livez`)).status).toBe(200);
    // Long enough for the long-running parts (runners, planner, lease) to fail and back off too.
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await all(503)).toBe(true);
    await proxy.up();
    const readyMs = await until(() => all(200), 90_000, 'every process ready again');
    console.log(`cluster readiness: not ready ${notReadyMs} ms after PostgreSQL went away, ready ${readyMs} ms after it returned`);
    expect(notReadyMs).toBeLessThan(15_000);
  }, 180_000);
});
