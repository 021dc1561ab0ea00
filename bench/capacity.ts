import fs from 'node:fs';
import { SHARDS } from '#schema/sharding';
import { RESULTS, arg, num } from './lib';

/**
 * npm run capacity [-- --results bench/results.json] [--worker-rate 2500 --events-per-delivery 0.008 ...]
 *
 * The capacity plan's table (docs/design.md §5) from measured per-core figures: read from the
 * JSON the benchmarks write (bench/results.json: bench:scale's cluster runs), each overridable by
 * a flag. Computes, for the traffic model's worst hour (ten tenants sending to everyone: 10^9
 * deliveries, all due within 10 minutes, or with deadlines of 10/15/20/30 minutes spread over the
 * tenants), how many processes of each role, how many partitions, what the log and read store
 * must take, the storage a day adds, and where the first bottleneck falls. Prints markdown.
 */
type Run = {
  deliveriesPerSecond: number;
  cpuCores: Record<string, number>;
  storage?: { perUser: Record<string, number>; perDelivery: Record<string, number>; eventsPerDelivery: number };
  pagedUsersPerSecond?: number;
  seedUsersPerSecond?: number;
};

const results = (() => {
  const file = arg('results', RESULTS);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
  } catch {
    return {};
  }
})();
const scale = results.scale as { date: string; cluster1?: Run; cluster2?: Run; kafkaRaw?: { produced: number; consumed: number } } | undefined;
const c1 = scale?.cluster1;
const c2 = scale?.cluster2;
const sum = (r: Run | undefined, re: RegExp) => (r ? Object.entries(r.cpuCores).filter(([k]) => re.test(k)).reduce((n, [, v]) => n + v, 0) : NaN);
const pick = (name: string, measured: number, fallback: number): { value: number; source: string } => {
  if (process.argv.includes(`--${name}`)) return { value: num(name, fallback), source: 'flag' };
  if (Number.isFinite(measured) && measured > 0) return { value: measured, source: `bench:scale ${scale?.date ?? ''}`.trim() };
  return { value: fallback, source: 'default (docs/benchmarks.md)' };
};

// ---- inputs --------------------------------------------------------------------------------------
const best = c2 ?? c1;
const inputs = {
  /** Deliveries a second per delivery-worker core (the workers' CPU, all of it: planning slices, sending, recording). */
  workerRate: pick('worker-rate', best ? best.deliveriesPerSecond / sum(best, /^delivery-/) : NaN, 3000),
  /** Deliveries a second one worker process reached alone (cluster with one worker). */
  workerProcessRate: pick('worker-process-rate', c1?.deliveriesPerSecond ?? NaN, 2000),
  /** Users a second one reader pages from the users' shard index (what a slice plans with). */
  plannedUsersPerSecond: pick('planned-users', best?.pagedUsersPerSecond ?? NaN, 100_000),
  /** Log events per delivery (outcomes batched per flush) and the log's append ceiling, events/s (serialized appends). */
  eventsPerDelivery: pick('events-per-delivery', best?.storage?.eventsPerDelivery ?? NaN, 0.01),
  logEventsPerSecond: pick('log-events', NaN, 16_000),
  /** Deliveries a second per projections core and per PostgreSQL core (read models, log and vault together). */
  projectionRate: pick('projection-rate', best ? best.deliveriesPerSecond / sum(best, /^projections$/) : NaN, 20_000),
  postgresRate: pick('postgres-rate', best ? best.deliveriesPerSecond / sum(best, /^postgres$/) : NaN, 7_000),
  /** Kafka: messages per send (one slice job per partition) and the broker's consumed messages/s. */
  kafkaConsumed: pick('kafka-consumed', scale?.kafkaRaw?.consumed ?? NaN, 270_000),
  /** Bytes per delivery: log, timeline read model, other read models; bytes per user: log, read models, vault. */
  eventBytesPerDelivery: pick('event-bytes', best?.storage?.perDelivery.events ?? NaN, 160),
  timelineBytesPerDelivery: pick('timeline-bytes', best?.storage?.perDelivery.timeline ?? NaN, 1400),
  readBytesPerDelivery: pick('read-bytes', best?.storage?.perDelivery.read ?? NaN, 20),
  eventBytesPerUser: pick('event-bytes-user', best?.storage?.perUser.events ?? NaN, 960),
  readBytesPerUser: pick('read-bytes-user', (best?.storage?.perUser.read ?? NaN) + (best?.storage?.perUser.timeline ?? 0), 1850),
  vaultBytesPerUser: pick('vault-bytes-user', best?.storage?.perUser.vault ?? NaN, 160),
};
const v = Object.fromEntries(Object.entries(inputs).map(([k, x]) => [k, x.value])) as Record<keyof typeof inputs, number>;

// ---- the traffic model ---------------------------------------------------------------------------
const TENANTS = num('tenants', 10);
const DELIVERIES_PER_TENANT = num('deliveries-per-tenant', 1e8); // 50M users x 2 devices
const USERS = TENANTS * (DELIVERIES_PER_TENANT / 2);
const SENDS_PER_DAY = num('sends-per-day', 30);
/** How long the timeline keeps delivery steps (the tenant setting deliveryHistoryDays; 90 by default). */
const HISTORY_DAYS = num('history-days', 90);
const REGISTRATIONS_PER_DAY = TENANTS * 100_000;
const MIX = [10, 15, 20, 30];

/** The peak rate EDF needs: the largest (deliveries due by d) / d over the deadlines d. */
const edfRate = (deadlinesMinutes: readonly number[]): number => {
  const sorted = [...deadlinesMinutes].sort((a, b) => a - b);
  let due = 0;
  let rate = 0;
  for (const d of sorted) {
    due += DELIVERIES_PER_TENANT;
    rate = Math.max(rate, due / (d * 60));
  }
  return rate;
};
const scenarios = [
  { name: 'all ten at 10 min', rate: edfRate(Array(TENANTS).fill(10)) },
  { name: 'deadlines 10/15/20/30 spread', rate: edfRate(Array.from({ length: TENANTS }, (_, i) => MIX[i % MIX.length]!)) },
];

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en') : n >= 10 ? n.toFixed(1) : n.toPrecision(2));
const bytes = (n: number) => {
  const u = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(n >= 100 ? 0 : 1)} ${u[i]}`;
};

console.log(`## Capacity plan (computed by \`npm run capacity\` from ${fs.existsSync(arg('results', RESULTS)) ? arg('results', RESULTS).replace(/.*\/bench\//, 'bench/') : 'defaults'})\n`);
console.log('### Measured inputs (per core, this machine)\n');
console.log('| input | value | source |\n| --- | --- | --- |');
const labels: Record<keyof typeof inputs, string> = {
  workerRate: 'deliveries/s per delivery-worker core',
  workerProcessRate: 'deliveries/s of one worker process (cluster, 1 worker)',
  plannedUsersPerSecond: 'planned users/s (one reader paging the shard index)',
  eventsPerDelivery: 'log events per delivery (batched outcomes)',
  logEventsPerSecond: 'log appends, events/s (one PostgreSQL, serialized)',
  projectionRate: 'deliveries/s per projections core (timeline, progress)',
  postgresRate: 'deliveries/s per PostgreSQL core (log + read store)',
  kafkaConsumed: 'Kafka consumed messages/s (one broker, raw)',
  eventBytesPerDelivery: 'log bytes per delivery',
  timelineBytesPerDelivery: 'timeline read-model bytes per delivery',
  readBytesPerDelivery: 'other read-model bytes per delivery',
  eventBytesPerUser: 'log bytes per user',
  readBytesPerUser: 'read-model bytes per user',
  vaultBytesPerUser: 'key vault bytes per user',
};
for (const [k, x] of Object.entries(inputs)) console.log(`| ${labels[k as keyof typeof inputs]} | ${fmt(x.value)} | ${x.source} |`);

console.log('\n### The worst hour: 10^9 deliveries (ten tenants, everyone)\n');
console.log(`| need | ${scenarios.map((s) => s.name).join(' | ')} |\n| --- | ${scenarios.map(() => '---').join(' | ')} |`);
const rows: [string, (rate: number) => string][] = [
  ['deliveries/s (EDF peak)', (r) => fmt(r)],
  ['delivery worker processes (1 core each)', (r) => fmt(Math.ceil(r / v.workerRate))],
  ['bus partitions (power of two, at most the 256 shards)', (r) => { const w = Math.ceil(r / v.workerRate); return w > SHARDS ? `${SHARDS} (needs ${fmt(nextPow2(w))}: over the cap)` : fmt(nextPow2(w)); }],
  ['planned users/s (2 devices a user)', (r) => fmt(r / 2)],
  ['shard-index readers at the measured page rate', (r) => fmt(Math.ceil(r / 2 / v.plannedUsersPerSecond))],
  ['log events appended/s', (r) => `${fmt(r * v.eventsPerDelivery)} (${((r * v.eventsPerDelivery) / v.logEventsPerSecond * 100).toFixed(0)}% of one log)`],
  ['log bytes/s', (r) => `${bytes(r * v.eventBytesPerDelivery)}/s`],
  ['projections cores', (r) => fmt(Math.ceil(r / v.projectionRate))],
  ['PostgreSQL cores (log + read store)', (r) => fmt(Math.ceil(r / v.postgresRate))],
  ['timeline writes/s (bytes)', (r) => `${bytes(r * v.timelineBytesPerDelivery)}/s`],
  ['Kafka messages/s (slice jobs: one per partition per send)', () => `${TENANTS * Math.min(SHARDS, 256)} in the hour's first seconds, then none`],
];
for (const [name, f] of rows) console.log(`| ${name} | ${scenarios.map((s) => f(s.rate)).join(' | ')} |`);

const day = SENDS_PER_DAY * DELIVERIES_PER_TENANT;
console.log('\n### Storage a day (30 sends of 100M deliveries, the model\'s maximum) and standing\n');
console.log('| store | per day | note |\n| --- | --- | --- |');
console.log(`| log: delivery events | ${bytes(day * v.eventBytesPerDelivery)} | ${fmt(v.eventBytesPerDelivery)} B per delivery |`);
console.log(`| read store: timeline entries | ${bytes(day * v.timelineBytesPerDelivery)} | ${fmt(v.timelineBytesPerDelivery)} B per delivery; ${HISTORY_DAYS} days kept (the tenants' deliveryHistoryDays): ${bytes(HISTORY_DAYS * day * v.timelineBytesPerDelivery)} |`);
console.log(`| read store: other | ${bytes(day * v.readBytesPerDelivery)} | ${fmt(v.readBytesPerDelivery)} B per delivery |`);
console.log(`| log: registrations | ${bytes(REGISTRATIONS_PER_DAY * v.eventBytesPerUser)} | ${fmt(v.eventBytesPerUser)} B per user (one device seeded) |`);
console.log(`| standing: users (${fmt(USERS / 1e6)}M) | log ${bytes(USERS * v.eventBytesPerUser)}, read store ${bytes(USERS * v.readBytesPerUser)}, vault ${bytes(USERS * v.vaultBytesPerUser)} | |`);

// ---- the first bottleneck ------------------------------------------------------------------------
const ceilings: [string, number][] = [
  [`delivery workers, capped by ${SHARDS} partitions`, SHARDS * v.workerRate],
  ['one PostgreSQL log (serialized appends)', v.logEventsPerSecond / v.eventsPerDelivery],
  ['one projections process (one core)', v.projectionRate],
  ['one PostgreSQL server for log + read store (say 64 cores)', 64 * v.postgresRate],
];
ceilings.sort((a, b) => a[1] - b[1]);
const need = Math.max(...scenarios.map((s) => s.rate));
console.log('\n### Where the first bottleneck falls\n');
console.log('| component as built today | deliveries/s it allows | worst hour needs |\n| --- | --- | --- |');
for (const [name, cap] of ceilings) console.log(`| ${name} | ${fmt(cap)} | ${fmt(need)} (${(need / cap).toFixed(1)}x) |`);
console.log(`\nFirst bottleneck: **${ceilings[0]![0]}** at ${fmt(ceilings[0]![1])} deliveries/s, ${(need / ceilings[0]![1]).toFixed(0)}x short of the worst hour.`);
