import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createProviders } from '#delivery/providers';
import type { SandboxDescription } from '#sandbox/types';
import { sandboxIntegrations } from '#sandbox/integrations';
import type { OutboundMessage, Provider } from '#delivery/providers/port';
import { defaultDeliveryConfig } from '#delivery/config';
import { mixedDevice } from '#cli/testing/seed';
import { openPostgresReadStore } from '#platform/read-store/postgres';
import { listShardMembers } from '#projections/users/queries';
import { usersCollection } from '#projections/users/document';
import { SHARDS } from '#schema/sharding';
import { measureKafkaRaw } from './kafka-raw';
import { percentile } from './support';
import { busRecords, printStorage, storeSizes, STORES, type StorageFigures, type StoreBytes } from './storage';
import {
  cpuMeter, createGroup, deploy, flag, fmtN, newMasterKey, num, peakRss, readModelLag, recordResult, registerTenant, seed, send,
  sleep, startSandbox, summarizeProfiles, topologyFromFlags, waitCompleted, waitMembers, waitReadModels, type Sandbox, type Topology,
} from './lib';

/**
 * npm run bench:fanout [-- --recipients 1000000 --latency-ms 20 --baseline 100000 --ceiling 100000]
 *                      [--bus kafka --read-store postgres|mongodb --event-store postgres --workers 2 --kafka-raw 200000]
 *                      [--profile] [--reclaim-wait-s 90]
 * npm run bench:scale  [-- --recipients 100000 --ferret 10000 --ceiling 50000 --profile]   (= bench:fanout --compare)
 *
 * One send to a group with the device mix 40% Android, 30% iOS, 20% email, 10% SMS, through the
 * whole pipeline (service in its own process or processes, sandbox in another), against two
 * baselines run on the same sandbox in the same run: the raw ceiling (the same SDK calls in a
 * tight loop at the same concurrency, no pipeline) and the common design (BullMQ on Redis, one job
 * per delivery). With --read-store postgres the users are seeded through the PostgreSQL event
 * store and key vault (schema notify_keyvault) of a database made for the run.
 *
 * Prints, besides the rate: the time from the request to the first message a provider accepted
 * (the sandbox's count, polled) and to the first acceptance recorded in the log; the rate counts
 * only deliveries a provider accepted before the notification's deadline, with those accepted
 * later, expired and failed beside it; and a storage table, one line per store (log, read models
 * and the timeline among them, key vault, bus): bytes per user after registration, bytes per
 * delivery the send added by its completion, and per delivery once settled (the read models
 * caught up, the bus's records of the send reclaimed), with the records the bus still held and,
 * for SQLite, the files' sizes with their WAL. How each store is measured: bench/storage.ts.
 * All of it goes to bench/results.json (`storage`).
 *
 * --compare measures, in one run against the same sandbox: the embedded default, the cluster with
 * one delivery worker and with two (Kafka, PostgreSQL log and read store; api, projections and
 * workers as processes), and the FerretDB configuration at --ferret recipients (0: skipped).
 * --profile: each process's CPU profile, summarized as self time by category.
 */

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

type FanoutResult = Readonly<{
  describe: string;
  recipients: number;
  seedPerSecond: number;
  seconds: number;
  /** Deliveries a provider accepted before the deadline, a second (late, expired and failed ones not counted). */
  rate: number;
  accepted: number;
  sandboxAccepted: number;
  /** From the request to the first message a provider (the sandbox) accepted, and to the first recorded in the log. */
  firstAcceptanceMs: number;
  firstRecordedMs: number;
  completedAfterLastMs: number;
  expired: number;
  failed: number;
  /** Accepted by a provider after the notification's deadline: not counted in the rate. */
  late: number;
  p50: number;
  p99: number;
  rss: Record<string, number>;
  cpu: ReturnType<ReturnType<typeof cpuMeter>['end']>;
  profile: string[];
  storage: StorageFigures;
  pagedUsersPerSecond?: number;
}>;

/** Users a second one reader pages from the read store's shard index, as the slices do (PostgreSQL read store). */
const pageRate = async (postgresUrl: string, tenantId: string, groupId: string): Promise<number> => {
  const store = await openPostgresReadStore({ connectionString: postgresUrl, schema: 'notify_read' });
  await store.ensureCollections([usersCollection]);
  const t = performance.now();
  let users = 0;
  try {
    for (let shard = 0; shard < SHARDS; shard++) {
      let after: string | null = null;
      do {
        const page: { items: readonly unknown[]; next: string | null } = await listShardMembers(store, tenantId, groupId, shard, { first: 1000, ...(after ? { after } : {}) });
        users += page.items.length;
        after = page.next;
      } while (after);
    }
  } finally {
    await store.close();
  }
  return users / ((performance.now() - t) / 1000);
};

/** One deployment, one group of `recipients`, one send, until every delivery is terminal. */
const fanoutOnce = async (sandbox: Sandbox, dir: string, topology: Topology, recipients: number, inFlight: number, tag: string): Promise<FanoutResult> => {
  const masterKey = newMasterKey();
  const profileDir = flag('profile') ? path.join(dir, `profile-${tag}`) : undefined;
  const d = await deploy({ dir, masterKey, sandboxFile: sandbox.file, topology, tag, env: { DELIVERY_MAX_IN_FLIGHT: String(inFlight) }, ...(profileDir ? { profileDir } : {}) });
  console.log(`\n[${tag}] ${d.describe}`);
  try {
    const admin = await registerTenant(d, 'bench', 30);
    await createGroup(d, admin, 'all');
    const empty = await storeSizes(d);
    let t = performance.now();
    await seed(d, masterKey, { tenantId: 'bench', count: recipients, groupIds: ['all'], devices: mixedDevice });
    await waitMembers(d, admin, 'all', recipients);
    const seedSeconds = (performance.now() - t) / 1000;
    const catchUp = await waitReadModels(d);
    console.log(`seeded ${fmtN(recipients)} users in ${seedSeconds.toFixed(1)} s (the audience's read models included); the activity's caught up ${catchUp.toFixed(1)} s later`);
    const seeded = await storeSizes(d);
    const pagedUsersPerSecond = topology.kind === 'cluster' && topology.readStore === 'postgres' ? await pageRate(d.env.POSTGRES_URL!, 'bench', 'all') : undefined;
    if (pagedUsersPerSecond) console.log(`paging the group's shard index (one reader, pages of 1,000): ${fmtN(pagedUsersPerSecond)} users/s`);

    const before = await sandbox.acceptedTotal();
    const meter = cpuMeter(d, sandbox);
    const sent = await send(d, admin, 'all', 'benchmark notification');
    t = performance.now();
    const requested = Date.parse(sent.requestedAt);
    // The sandbox's own count, polled until it moves: when a provider first accepted (within ~20 ms).
    let firstAccepted = NaN;
    let sending = true;
    const watchFirst = (async () => {
      while (Number.isNaN(firstAccepted) && sending) {
        if ((await sandbox.acceptedTotal().catch(() => before)) > before) firstAccepted = Date.now();
        else await sleep(20);
      }
    })();
    let lastPrint = 0;
    // Progress lines in order, each with how far the slowest read model trails the log (the
    // timeline, on a full-speed send: it catches up after the send; COMPLETED does not wait for it).
    let printed: Promise<void> = Promise.resolve();
    let final = { total: 0, expired: 0, failed: 0 };
    await waitCompleted(d, admin, sent.id, (p) => {
      final = { total: p.total, expired: p.expired, failed: p.failed };
      const s = (performance.now() - t) / 1000;
      if (s - lastPrint >= 10) {
        lastPrint = s;
        const lag = readModelLag(d)
          .then((l) => Object.entries(l).sort((a, b) => b[1] - a[1])[0] ?? ['none', 0])
          .catch(() => ['unknown', NaN] as const);
        printed = Promise.all([lag, printed]).then(([[model, behind]]) => console.log(`  ${s.toFixed(0).padStart(4)} s  ${p.status}  succeeded ${p.succeeded}  failed ${p.failed}  expired ${p.expired}  read models behind by ${behind} events (${model})`));
      }
    });
    const elapsed = (performance.now() - t) / 1000;
    const completedAt = Date.now();
    const cpu = meter.end();
    sending = false;
    await watchFirst;
    await printed;
    const completed = await storeSizes(d);
    const accepted = (await sandbox.acceptedTotal()) - before;
    const rss = Object.fromEntries(d.processes.map((p) => [p.name, peakRss(p.child.pid!)]));
    const lat: number[] = [];
    let late = 0;
    {
      const { eventStore: store, close } = await d.openStores();
      const [request] = await store.readAll({ after: 0, maxCount: 1, tenantId: 'bench', types: ['NotificationRequested'] });
      const deadline = Date.parse((request!.data as { deadline: string }).deadline);
      for (let after = 0; ; ) {
        const page = await store.readAll({ after, maxCount: 2000, tenantId: 'bench', types: ['DeliverySucceeded'] });
        for (const e of page) {
          const at = Date.parse(e.metadata.at);
          const n = (e.data as unknown as { deliveries: unknown[] }).deliveries.length;
          // Accepted after the deadline is not a delivery that met it.
          if (at > deadline) late += n;
          else for (let k = 0; k < n; k++) lat.push(at - requested);
        }
        if (page.length < 2000) break;
        after = page.at(-1)!.position;
      }
      await close();
    }
    lat.sort((a, b) => a - b);
    const deliveries = final.total || recipients;

    // Settled: the read models caught up with the send, and the bus reclaimed its records (bounded wait).
    const reclaimStarted = performance.now();
    await waitReadModels(d);
    let busRecordsLeft = await busRecords(d);
    while (busRecordsLeft > 0 && performance.now() - reclaimStarted < num('reclaim-wait-s', 90) * 1000) {
      await sleep(1000);
      busRecordsLeft = await busRecords(d);
    }
    const reclaimSeconds = (performance.now() - reclaimStarted) / 1000;
    const reclaimed = await storeSizes(d);
    const per = (a: StoreBytes, b: StoreBytes, n: number): StoreBytes =>
      Object.fromEntries(STORES.map((k) => [k, Math.round((a[k] - b[k]) / n)])) as StoreBytes;
    const storage: StorageFigures = {
      perUser: per(seeded.bytes, empty.bytes, recipients),
      perDelivery: per(completed.bytes, seeded.bytes, deliveries),
      perDeliveryAfterReclaim: per(reclaimed.bytes, seeded.bytes, deliveries),
      busRecordsLeft,
      busBytes: { seeded: seeded.bytes.bus, completed: completed.bytes.bus, reclaimed: reclaimed.bytes.bus },
      ...(seeded.disk && completed.disk && reclaimed.disk ? { disk: { seeded: seeded.disk, completed: completed.disk, reclaimed: reclaimed.disk } } : {}),
      eventsPerDelivery: (completed.events - seeded.events) / deliveries,
      eventAppendsPerSecond: (completed.events - seeded.events) / elapsed,
    };
    printStorage(d, storage, reclaimSeconds);

    // Only deliveries a provider accepted before the deadline count; the rest are reported beside them.
    const rate = lat.length / elapsed;
    const firstMs = firstAccepted - requested;
    const firstRecordedMs = lat[0] ?? NaN;
    console.log(`first provider acceptance ${firstMs.toFixed(0)} ms after the request (first recorded in the log ${firstRecordedMs.toFixed(0)} ms); ${fmtN(lat.length)} accepted before the deadline, ${fmtN(late)} after it, ${fmtN(final.expired)} expired, ${fmtN(final.failed)} failed`);
    const tailMs = completedAt - (requested + (lat.at(-1) ?? 0));
    console.log(`COMPLETED ${(tailMs / 1000).toFixed(1)} s after the last acceptance recorded in the log (progress polled every second)`);
    console.log(`ours      ${rate.toFixed(0)} accepted deliveries/s end to end (${elapsed.toFixed(1)} s, sandbox accepted ${accepted}); request-to-accepted p50 ${(percentile(lat, 50) / 1000).toFixed(1)} s, p99 ${(percentile(lat, 99) / 1000).toFixed(1)} s; peak RSS ${Object.entries(rss).map(([k, v]) => `${k} ${(v / 1e6).toFixed(0)} MB`).join(', ')}`);
    console.log(cpu.text);
    await d.stop();
    const profile = profileDir ? summarizeProfiles(profileDir) : [];
    if (profile.length) console.log(`CPU profile, self time by category:\n${profile.join('\n')}`);
    return {
      describe: d.describe, recipients, seedPerSecond: recipients / seedSeconds, seconds: elapsed, rate, accepted: lat.length, sandboxAccepted: accepted, firstAcceptanceMs: firstMs, firstRecordedMs, completedAfterLastMs: tailMs, expired: final.expired, failed: final.failed, late,
      p50: percentile(lat, 50), p99: percentile(lat, 99), rss, cpu, profile, storage, ...(pagedUsersPerSecond ? { pagedUsersPerSecond } : {}),
    };
  } catch (e) {
    for (const p of d.processes) if (p.child.exitCode !== null) console.error(`---- ${p.name} exited ${p.child.exitCode}:\n${p.output().slice(-3000)}`);
    await d.stop();
    throw e;
  }
};

const summary = (r: FanoutResult) => ({
  topology: r.describe, recipients: r.recipients, seconds: +r.seconds.toFixed(1), deliveriesPerSecond: Math.round(r.rate), accepted: r.accepted, sandboxAccepted: r.sandboxAccepted,
  firstAcceptanceMs: Math.round(r.firstAcceptanceMs), firstRecordedMs: Math.round(r.firstRecordedMs), completedAfterLastMs: Math.round(r.completedAfterLastMs), late: r.late, expired: r.expired, failed: r.failed,
  p50Ms: Math.round(r.p50), p99Ms: Math.round(r.p99), peakRssBytes: r.rss, seedUsersPerSecond: Math.round(r.seedPerSecond),
  cpuCores: Object.fromEntries(Object.entries(r.cpu.per).map(([k, v]) => [k, +v.toFixed(2)])), machineBusyCores: +r.cpu.busy.toFixed(2),
  storage: r.storage, ...(r.pagedUsersPerSecond ? { pagedUsersPerSecond: Math.round(r.pagedUsersPerSecond) } : {}), profile: r.profile,
});

const main = async (): Promise<void> => {
  const recipients = num('recipients', flag('compare') ? 100_000 : 1_000_000);
  const latencyMs = num('latency-ms', 20);
  const inFlight = num('in-flight', defaultDeliveryConfig.maxInFlight);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-bench-fanout-'));
  console.log(`bench:fanout${flag('compare') ? ' --compare' : ''}  ${recipients.toLocaleString('en')} recipients, sandbox latency ${latencyMs} ms, ${os.cpus().length} cores, node ${process.version}`);
  const sandbox = await startSandbox(dir, latencyMs);
  try {
    if (flag('compare')) await compare(sandbox, dir, recipients, inFlight);
    else await single(sandbox, dir, recipients, inFlight);
  } finally {
    await sandbox.stop();
    if (flag('profile')) console.log(`profiles: ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
};

const compare = async (sandbox: Sandbox, dir: string, recipients: number, inFlight: number) => {
  const cluster = (workers: number, readStore: 'postgres' | 'mongodb'): Topology => ({ kind: 'cluster', workers, readStore, eventStore: 'postgres', bus: 'kafka' });
  const only = (name: string) => !process.argv.includes('--only') || process.argv[process.argv.indexOf('--only') + 1]!.split(',').includes(name);
  const embedded = only('embedded') ? await fanoutOnce(sandbox, dir, { kind: 'embedded' }, recipients, inFlight, 'embedded') : null;
  const one = only('cluster-1') ? await fanoutOnce(sandbox, dir, cluster(1, 'postgres'), recipients, inFlight, 'cluster-1') : null;
  const two = only('cluster-2') ? await fanoutOnce(sandbox, dir, cluster(2, 'postgres'), recipients, inFlight, 'cluster-2') : null;
  const ferretN = num('ferret', 10_000);
  const ferret = ferretN > 0 && only('ferretdb') ? await fanoutOnce(sandbox, dir, cluster(2, 'mongodb'), ferretN, inFlight, 'ferretdb') : null;
  const providers = createProviders(sandboxIntegrations(sandbox.description));
  const ceilingCount = num('ceiling', 50_000);
  const ceil = ceilingCount > 0 ? await ceiling(providers.all, ceilingCount, Math.ceil(inFlight / 50)) : NaN;
  await providers.close();
  let kafka: { produced: number; consumed: number } | null = null;
  const kafkaN = num('kafka-raw', 0);
  if (kafkaN > 0) {
    const r = await measureKafkaRaw({ brokers: process.env.KAFKA_BROKERS!.split(','), messages: kafkaN, partitions: 8, valueBytes: 300 });
    kafka = { produced: r.producedPerSecond, consumed: r.consumedPerSecond };
  }
  const line = (name: string, r: FanoutResult | null) =>
    r ? `${name.padEnd(22)} ${r.rate.toFixed(0).padStart(6)} deliveries/s  (${fmtN(r.recipients)} in ${r.seconds.toFixed(1)} s, p50 ${(r.p50 / 1000).toFixed(1)} s, p99 ${(r.p99 / 1000).toFixed(1)} s; seeding ${fmtN(r.seedPerSecond)} users/s)` : `${name.padEnd(22)} not run`;
  const ratio = (a: FanoutResult | null, b: FanoutResult | null) => (a && b ? a.rate / b.rate : NaN);
  console.log('\n---- bench:scale, same sandbox, same run ----');
  console.log(line('embedded default', embedded));
  console.log(line('cluster, 1 worker', one));
  console.log(line('cluster, 2 workers', two));
  if (ferretN > 0) console.log(line('FerretDB, 2 workers', ferret));
  if (!Number.isNaN(ceil)) console.log(`${'ceiling (SDKs alone)'.padEnd(22)} ${ceil.toFixed(0).padStart(6)} messages/s (${fmtN(ceilingCount)})`);
  if (kafka) console.log(`${'kafka raw'.padEnd(22)} ${kafka.produced.toFixed(0)} produced/s, ${kafka.consumed.toFixed(0)} consumed/s (${fmtN(kafkaN)} messages)`);
  console.log('\nratios (same run):');
  const met = (x: number) => (x >= 0.8 ? 'met' : 'NOT met');
  console.log(`  cluster (1 worker) / embedded  = ${ratio(one, embedded).toFixed(2)}  (target >= 0.8: ${met(ratio(one, embedded))})`);
  console.log(`  cluster (2 workers) / embedded = ${ratio(two, embedded).toFixed(2)}  (target >= 0.8: ${met(ratio(two, embedded))})`);
  console.log(`  2 workers / 1 worker           = ${ratio(two, one).toFixed(2)}`);
  if (ferret) console.log(`  FerretDB (${fmtN(ferret.recipients)}) / PostgreSQL 2 workers (${fmtN(recipients)}) = ${ratio(ferret, two).toFixed(3)}`);
  if (!Number.isNaN(ceil)) console.log(`  embedded / ceiling = ${ratio(embedded, { rate: ceil } as FanoutResult).toFixed(2)}; cluster 2 workers / ceiling = ${ratio(two, { rate: ceil } as FanoutResult).toFixed(2)}`);
  for (const [name, r] of [['cluster-1', one], ['cluster-2', two]] as const) if (r) console.log(`  ${name}: ${r.cpu.text}`);
  recordResult(flag('profile') || process.argv.includes('--only') ? 'scale-partial' : 'scale', {
    recipients, ...(embedded ? { embedded: summary(embedded) } : {}), ...(one ? { cluster1: summary(one) } : {}), ...(two ? { cluster2: summary(two) } : {}), ...(ferret ? { ferretdb: summary(ferret) } : {}),
    ceilingPerSecond: Number.isNaN(ceil) ? null : Math.round(ceil), ...(kafka ? { kafkaRaw: kafka } : {}),
    ratios: { clusterOneOverEmbedded: +ratio(one, embedded).toFixed(3), clusterTwoOverEmbedded: +ratio(two, embedded).toFixed(3), twoOverOne: +ratio(two, one).toFixed(3) },
  });
};

const single = async (sandbox: Sandbox, dir: string, recipients: number, inFlight: number) => {
  const topology = topologyFromFlags();
  const r = await fanoutOnce(sandbox, dir, topology, recipients, inFlight, topology.kind);
  const ours = r.rate;
  let kafkaRaw: { produced: number; consumed: number } | null = null;
  if (topology.kind === 'cluster' && topology.bus === 'kafka') {
    const n = num('kafka-raw', Math.min(recipients, 200_000));
    if (n > 0) {
      const k = await measureKafkaRaw({ brokers: process.env.KAFKA_BROKERS!.split(','), messages: n, partitions: 8, valueBytes: 300 });
      kafkaRaw = { produced: k.producedPerSecond, consumed: k.consumedPerSecond };
      console.log(`kafka raw ${kafkaRaw.produced.toFixed(0)} produced/s, ${kafkaRaw.consumed.toFixed(0)} consumed/s: kafkajs alone on the same broker (${n} messages of 300 bytes, 8 partitions)`);
    }
  }
  const providers = createProviders(sandboxIntegrations(sandbox.description));
  const ceilingCount = num('ceiling', Math.min(recipients, 200_000));
  const ceil = ceilingCount > 0 ? await ceiling(providers.all, ceilingCount, Math.ceil(inFlight / 50)) : NaN;
  await providers.close();
  if (ceilingCount > 0) console.log(`ceiling   ${ceil.toFixed(0)} messages/s: the same SDK calls in a tight loop (${ceilingCount} messages)`);
  let baseline = NaN;
  const baselineCount = num('baseline', Math.min(recipients, 100_000));
  if (baselineCount > 0) {
    try {
      baseline = await bullmqBaseline(sandbox.description, baselineCount);
      console.log(`baseline  ${baseline.toFixed(0)} deliveries/s: BullMQ on Redis, one job per delivery (${baselineCount} jobs)`);
    } catch (e) {
      console.log(`baseline  not run: ${(e as Error).message}`);
    }
  }
  console.log('\nratios (same run):');
  console.log(`  ours / ceiling  = ${(ours / ceil).toFixed(2)}  (target >= 0.8, issue 18)`);
  console.log(`  ours / baseline = ${(ours / baseline).toFixed(2)}  (target >= 3)`);
  if (kafkaRaw) console.log(`  ours / kafka raw consume = ${(ours / kafkaRaw.consumed).toPrecision(2)}  (the bus's share of the ceiling: jobs carry up to 200 deliveries each)`);
  recordResult(`fanout/${topology.kind === 'embedded' ? 'embedded' : `cluster-${topology.workers}-${topology.readStore}`}/${recipients}`, {
    ...summary(r), ceilingPerSecond: Number.isNaN(ceil) ? null : Math.round(ceil), baselinePerSecond: Number.isNaN(baseline) ? null : Math.round(baseline), ...(kafkaRaw ? { kafkaRaw } : {}),
  });
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
