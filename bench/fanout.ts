import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { createProviders } from '#delivery/providers';
import type { SandboxDescription } from '#sandbox/types';
import { sandboxIntegrations } from '#sandbox/integrations';
import type { OutboundMessage, Provider } from '#delivery/providers/port';
import { defaultDeliveryConfig } from '#delivery/config';
import { mixedDevice, seedUsers } from '#cli/testing/seed';
import { startServiceProcess } from '#cli/testing/process';
import pg from 'pg';
import { openPostgresEventStore } from '#platform/event-store/postgres';
import { openMongoKeyVault } from '#platform/key-vault/mongodb';
import { measureKafkaRaw } from './kafka-raw';
import { graphql, percentile } from './support';

/**
 * npm run bench:fanout [-- --recipients 1000000 --latency-ms 20 --baseline 100000 --ceiling 100000]
 *                      [--bus kafka --read-store mongodb --event-store postgres --kafka-raw 200000]
 *
 * One send to a group with the device mix 40% Android, 30% iOS, 20% email, 10% SMS, through the
 * whole pipeline (service in its own process, sandbox in another), against two baselines run on
 * the same sandbox in the same run: the raw ceiling (the same SDK calls in a tight loop at the same
 * concurrency, no pipeline) and the common design (BullMQ on Redis, one job per delivery).
 */
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const num = (name: string, fallback: number) => Number(arg(name, String(fallback)));
const root = path.resolve(__dirname, '../..');

const spawnJson = async (args: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcess; line: string }> => {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (c) => reject(new Error(`exited ${c}`)));
  });
  return { child, line };
};

const peakRss = (pid: number): number => {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
};

const stop = async (child: ChildProcess) => {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
};

/** The sandbox's first integration of each channel: where the service sends while nothing fails. */
const FIRST_OF_CHANNEL = { ios: 'apns', android: 'fcm-primary', email: 'sendgrid', sms: 'twilio' } as const;

const messagesFor = (count: number, from: number): { provider: string; message: OutboundMessage }[] =>
  Array.from({ length: count }, (_, k) => {
    const i = from + k;
    const d = mixedDevice(i)[0]!;
    const provider = FIRST_OF_CHANNEL[d.kind];
    return { provider, message: { deliveryId: `c${i}`, address: d.address, text: 'benchmark', expiresAt: Date.now() + 30 * 60_000 } };
  });

/** The same SDK calls, same batching, same concurrency, straight from a loop. */
const ceiling = async (providers: readonly Provider[], count: number, inFlight: number): Promise<number> => {
  const byName = new Map(providers.map((p) => [p.name, p]));
  const work = messagesFor(count, 10_000_000);
  const groups = new Map<string, OutboundMessage[]>();
  for (const w of work) groups.set(w.provider, [...(groups.get(w.provider) ?? []), w.message]);
  const calls: { provider: Provider; batch: OutboundMessage[] }[] = [];
  for (const [name, messages] of groups) {
    const p = byName.get(name)!;
    for (let i = 0; i < messages.length; i += p.maxBatch) calls.push({ provider: p, batch: messages.slice(i, i + p.maxBatch) });
  }
  calls.sort(() => Math.random() - 0.5);
  let next = 0;
  let accepted = 0;
  let outstanding = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, calls.length) }, async () => {
      for (;;) {
        const call = calls[next++];
        if (!call) return;
        outstanding += call.batch.length;
        const outcomes = await call.provider.send(call.batch).catch(() => []);
        outstanding -= call.batch.length;
        accepted += outcomes.filter((o) => o.outcome === 'accepted').length;
      }
    }),
  );
  void outstanding;
  return accepted / ((performance.now() - started) / 1000);
};

const main = async (): Promise<void> => {
  const recipients = num('recipients', 1_000_000);
  const latencyMs = num('latency-ms', 20);
  const inFlight = num('in-flight', defaultDeliveryConfig.maxInFlight);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-bench-fanout-'));
  const masterKey = randomBytes(32).toString('base64');
  console.log(`bench:fanout  ${recipients.toLocaleString('en')} recipients, sandbox latency ${latencyMs} ms, ${os.cpus().length} cores, node ${process.version}\n`);

  const sandbox = await spawnJson([path.join(root, 'dist/sandbox/src/main.js'), '--latency-ms', String(latencyMs)]);
  const description = JSON.parse(sandbox.line) as SandboxDescription;
  const sandboxFile = path.join(dir, 'sandbox.json');
  fs.writeFileSync(sandboxFile, sandbox.line);
  const control = async (p: string) => (await fetch(`${description.control}${p}`)).json() as Promise<any>;
  const acceptedTotal = async () => ((await control('')).instances as { stats: { accepted: number } }[]).reduce((n, i) => n + i.stats.accepted, 0);

  // ---- ours -------------------------------------------------------------------------------
  const setup = await deployment(dir, masterKey, sandboxFile, inFlight);
  console.log(`deployment: ${setup.describe}`);
  const url = setup.url;
  const gql = graphql(url);
  const operator = fs.readFileSync(path.join(setup.apiDataDir, 'operator.key'), 'utf8').trim();
  const admin: string = (await gql<any>(operator, `mutation { registerTenant(input: { tenantId: "bench", name: "Bench", deliveryDeadlineMinutes: 30 }) { adminKey { token } } }`)).data.registerTenant.adminKey.token;
  await gql(admin, `mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
  let t = performance.now();
  {
    const { eventStore, vault, close } = await setup.openStores();
    await seedUsers({ eventStore, cipher: new PersonalDataCipher(vault, Buffer.from(masterKey, 'base64')) }, { tenantId: 'bench', count: recipients, groupIds: ['all'], devices: mixedDevice });
    await close();
  }
  for (;;) {
    const g = await gql<any>(admin, `{ group(groupId: "all") { memberCount } }`);
    if (g.data?.group.memberCount === recipients) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log(`seeded ${recipients.toLocaleString('en')} users in ${((performance.now() - t) / 1000).toFixed(1)} s (read models included)`);

  const before = await acceptedTotal();
  const sent = await gql<any>(admin, `mutation { sendNotification(input: { groupId: "all", text: "benchmark notification" }) { notification { notificationId requestedAt } estimate { seconds fitsDeadline } } }`);
  const { notificationId, requestedAt } = sent.data.sendNotification.notification;
  t = performance.now();
  let last = '';
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const n = await gql<any>(admin, `{ notification(notificationId: "${notificationId}") { status progress { succeeded failed expired } } }`);
    // On the cluster the read models are another process: the notification appears a moment later.
    if (!n.data?.notification) continue;
    const p = n.data.notification.progress;
    const line = `  ${((performance.now() - t) / 1000).toFixed(0).padStart(4)} s  ${n.data.notification.status}  succeeded ${p.succeeded}  failed ${p.failed}  expired ${p.expired}`;
    if (line !== last && Math.round((performance.now() - t) / 1000) % 10 === 0) console.log(line);
    last = line;
    if (n.data.notification.status === 'COMPLETED') break;
  }
  const elapsed = (performance.now() - t) / 1000;
  const accepted = (await acceptedTotal()) - before;
  const rss = setup.processes.map((p) => `${p.name} ${(peakRss(p.child.pid!) / 1e6).toFixed(0)} MB`).join(', ');
  // Request-to-accepted: each succeeded delivery's outcome time against the request time.
  const lat: number[] = [];
  const requested = Date.parse(requestedAt);
  {
    const { eventStore: store, close } = await setup.openStores();
    for (let after = 0; ; ) {
      const page = await store.readAll({ after, maxCount: 2000, tenantId: 'bench', types: ['DeliverySucceeded'] });
      for (const e of page) {
        const ms = Date.parse(e.metadata.at) - requested;
        for (let k = 0; k < (e.data as unknown as { deliveries: unknown[] }).deliveries.length; k++) lat.push(ms);
      }
      if (page.length < 2000) break;
      after = page.at(-1)!.position;
    }
    await close();
  }
  lat.sort((a, b) => a - b);
  await setup.stop();
  const ours = recipients / elapsed;
  console.log(`ours      ${ours.toFixed(0)} deliveries/s end to end (${elapsed.toFixed(1)} s, sandbox accepted ${accepted}); request-to-accepted p50 ${(percentile(lat, 50) / 1000).toFixed(1)} s, p99 ${(percentile(lat, 99) / 1000).toFixed(1)} s; peak RSS ${rss}`);

  // ---- Kafka's own rate on the same broker ------------------------------------------------
  let kafkaRaw: { produced: number; consumed: number } | null = null;
  if (setup.bus === 'kafka') {
    const n = num('kafka-raw', Math.min(recipients, 200_000));
    const r = await measureKafkaRaw({ brokers: kafkaBrokers(), messages: n, partitions: 8, valueBytes: 300 });
    kafkaRaw = { produced: r.producedPerSecond, consumed: r.consumedPerSecond };
    console.log(`kafka raw ${kafkaRaw.produced.toFixed(0)} produced/s, ${kafkaRaw.consumed.toFixed(0)} consumed/s: kafkajs alone on the same broker (${n} messages of 300 bytes, 8 partitions)`);
  }

  // ---- ceiling -----------------------------------------------------------------------------
  const providers = createProviders(sandboxIntegrations(description));
  const ceilingCount = num('ceiling', Math.min(recipients, 200_000));
  const ceil = await ceiling(providers.all, ceilingCount, Math.ceil(inFlight / 50));
  await providers.close();
  console.log(`ceiling   ${ceil.toFixed(0)} messages/s: the same SDK calls in a tight loop (${ceilingCount} messages)`);

  // ---- baseline: BullMQ --------------------------------------------------------------------
  let baseline = NaN;
  const baselineCount = num('baseline', Math.min(recipients, 100_000));
  try {
    baseline = await bullmqBaseline(description, baselineCount);
    console.log(`baseline  ${baseline.toFixed(0)} deliveries/s: BullMQ on Redis, one job per delivery (${baselineCount} jobs)`);
  } catch (e) {
    console.log(`baseline  not run: ${(e as Error).message}`);
  }
  await stop(sandbox.child);
  if (process.argv.includes('--profile')) console.log(`profile: ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });

  console.log('\nratios (same run):');
  console.log(`  ours / ceiling  = ${(ours / ceil).toFixed(2)}  (target >= 0.7)`);
  console.log(`  ours / baseline = ${(ours / baseline).toFixed(2)}  (target >= 3)`);
  if (kafkaRaw) console.log(`  ours / kafka raw consume = ${(ours / kafkaRaw.consumed).toPrecision(2)}  (the bus's share of the ceiling: jobs carry up to 200 deliveries each)`);
};

const kafkaBrokers = (): string[] => {
  const b = process.env.KAFKA_BROKERS;
  if (!b) throw new Error('--bus kafka needs KAFKA_BROKERS (npm run servers:up prints it)');
  return b.split(',');
};

type Running = Readonly<{ name: string; child: ChildProcess }>;

/**
 * Where the service runs. The default: one process on the embedded SQLite adapters. With
 * `--bus kafka`, `--read-store mongodb` or `--event-store postgres`: the cluster, each role its
 * own process (api, projections, two delivery workers), on a fresh database, read-store database
 * and topic prefix of its own on the servers `npm run servers:up` started.
 */
const deployment = async (dir: string, masterKey: string, sandboxFile: string, inFlight: number) => {
  const bus = arg('bus', 'sqlite');
  const readStore = arg('read-store', 'sqlite');
  const cluster = bus !== 'sqlite' || readStore !== 'sqlite' || arg('event-store', 'sqlite') !== 'sqlite';
  const eventStore = arg('event-store', cluster && process.env.POSTGRES_URL ? 'postgres' : 'sqlite');
  const run = `bench${randomBytes(4).toString('hex')}`;
  const dataDir = path.join(dir, 'data');
  const env: Record<string, string> = { DATA_DIR: dataDir, MASTER_KEY: masterKey, SANDBOX_FILE: sandboxFile, LOG_LEVEL: 'warn', PORT: '0', DELIVERY_MAX_IN_FLIGHT: String(inFlight), EVENT_STORE: eventStore, READ_STORE: readStore, BUS: bus };
  if (eventStore === 'postgres') {
    const base = process.env.POSTGRES_URL;
    if (!base) throw new Error('--event-store postgres needs POSTGRES_URL (npm run servers:up prints it)');
    const client = new pg.Client({ connectionString: base });
    await client.connect();
    await client.query(`CREATE DATABASE ${run}`);
    await client.end();
    const u = new URL(base);
    u.pathname = `/${run}`;
    env.POSTGRES_URL = u.toString();
  }
  if (readStore === 'mongodb') {
    if (!process.env.MONGODB_URL) throw new Error('--read-store mongodb needs MONGODB_URL (npm run servers:up prints it)');
    env.MONGODB_URL = process.env.MONGODB_URL;
    env.MONGODB_DATABASE = run;
  }
  if (bus === 'kafka') {
    env.KAFKA_BROKERS = kafkaBrokers().join(',');
    env.KAFKA_PREFIX = run;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const processes: Running[] = [];
  const start = async (name: string, extra: Record<string, string>) => {
    const profile = process.argv.includes('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, name)}`] : [];
    const p = await startServiceProcess({ ...env, ...extra }, profile);
    processes.push({ name, child: p.child });
    return p;
  };
  let url: string;
  if (cluster) {
    url = (await start('api', { ROLES: 'command,query' })).url;
    await Promise.all([start('projections', { ROLES: 'projections' }), start('delivery-1', { ROLES: 'delivery' }), start('delivery-2', { ROLES: 'delivery', DELIVERY_PLAN: 'false' })]);
  } else {
    url = (await start('service', {})).url;
  }

  const openStores = async () => {
    const es =
      eventStore === 'postgres'
        ? await openPostgresEventStore({ connectionString: env.POSTGRES_URL! })
        : openSqliteEventStore({ path: path.join(dataDir, 'events.db') });
    const vault =
      readStore === 'mongodb'
        ? await openMongoKeyVault({ url: env.MONGODB_URL!, database: `${run}_keyvault` })
        : openSqliteKeyVault({ path: path.join(dataDir, 'keys.db') });
    return { eventStore: es, vault, close: async () => void (await Promise.all([es.close(), vault.close()])) };
  };

  return {
    url,
    bus,
    apiDataDir: dataDir,
    processes,
    describe: cluster
      ? `cluster: api, projections, 2 delivery workers as processes; event store ${eventStore}, read store ${readStore}, bus ${bus}`
      : 'one process, all roles, embedded SQLite',
    openStores,
    stop: async () => void (await Promise.all(processes.map((p) => stop(p.child)))),
  };
};

/** The common design: a Redis-backed queue, one job per delivery, a worker calling the provider per job. */
const bullmqBaseline = async (description: SandboxDescription, count: number): Promise<number> => {
  const redisPort = 6390 + Math.floor(Math.random() * 100);
  const redisBin = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => fs.existsSync(p));
  if (!redisBin) throw new Error('redis-server is not installed (apt-get install -y redis-server)');
  const redis = spawn(redisBin, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const { Queue, Worker } = await import('bullmq');
  const connection = { host: '127.0.0.1', port: redisPort };
  const queue = new Queue('deliveries', { connection });
  const providers = createProviders(sandboxIntegrations(description));
  const byName = new Map(providers.all.map((p) => [p.name, p]));
  try {
    const jobs = messagesFor(count, 20_000_000);
    for (let i = 0; i < jobs.length; i += 1000) {
      await queue.addBulk(jobs.slice(i, i + 1000).map((j) => ({ name: 'send', data: j, opts: { removeOnComplete: true, removeOnFail: true } })));
    }
    let done = 0;
    const started = performance.now();
    const worker = new Worker(
      'deliveries',
      async (job) => {
        const { provider, message } = job.data as { provider: string; message: OutboundMessage };
        await byName.get(provider)!.send([message]);
        done++;
      },
      { connection, concurrency: 200 },
    );
    while (done < count) await new Promise((r) => setTimeout(r, 200));
    const rate = count / ((performance.now() - started) / 1000);
    await worker.close();
    await queue.close();
    return rate;
  } finally {
    await providers.close();
    redis.kill('SIGTERM');
  }
};

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
