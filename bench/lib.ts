import os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { openPostgresEventStore } from '#platform/event-store/postgres';
import { openPostgresKeyVault } from '#platform/key-vault/postgres';
import { openMongoKeyVault } from '#platform/key-vault/mongodb';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import { openPostgresReadStore } from '#platform/read-store/postgres';
import { openMongoReadStore } from '#platform/read-store/mongodb';
import { allReadModels, checkpointName } from '#projections/index';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { EventStore } from '#platform/event-store/port';
import type { KeyVault } from '#platform/key-vault/port';
import type { SandboxDescription } from '#sandbox/types';
import { seedUsers, type SeedDevice } from '#cli/testing/seed';
import { createDatabase } from '#cli/testing/postgres';
import { startServiceProcess } from '#cli/testing/process';
import { graphql } from './support';

/**
 * What the benchmarks share: flags, the provider sandbox as a process, the service deployed
 * embedded or as a cluster (each role a process) on a database of its own per run, seeding
 * through the deployment's own event store and key vault, CPU accounting and profiles, and
 * bench/results.json (the capacity plan's input).
 */

// ---- flags ------------------------------------------------------------------------------------
export const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
export const num = (name: string, fallback: number): number => Number(arg(name, String(fallback)));
export const flag = (name: string): boolean => process.argv.includes(`--${name}`);
export const root = path.resolve(__dirname, '../..');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const fmtN = (n: number) => Math.round(n).toLocaleString('en');

// ---- processes ---------------------------------------------------------------------------------
/** Every child this benchmark started: killed when it exits, however it exits. */
const children = new Set<ChildProcess>();
const track = (c: ChildProcess) => {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
};
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
export const spawnJson = async (args: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcess; line: string }> => {
  const child = track(spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] }));
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

export const peakRss = (pid: number): number => {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return NaN;
  }
};

const TICK = 100; // USER_HZ on Linux
/** CPU seconds (user + system) a process has used so far. */
export const cpuSeconds = (pid: number): number => {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICK;
  } catch {
    return NaN;
  }
};
/** CPU seconds of every process whose command name is `comm` (postgres backends, say). */
export const cpuSecondsOf = (comm: RegExp): number => {
  let total = 0;
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (comm.test(fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim())) total += cpuSeconds(Number(p));
    } catch {
      /* gone */
    }
  }
  return total;
};
/** The machine's busy and total CPU seconds (all cores) so far, from /proc/stat. */
export const machineCpu = (): { busy: number; total: number } => {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3]! + (f[4] ?? 0);
  return { busy: (total - idle) / TICK, total: total / TICK };
};

export const stopChild = async (child: ChildProcess) => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
};

// ---- the sandbox -------------------------------------------------------------------------------
export type AcceptedRecord = Readonly<{ id: string; instance: string; address: string; receivedAt: number; deliveryId?: string }>;

export type Sandbox = Awaited<ReturnType<typeof startSandbox>>;
/**
 * `nice`: the sandbox's scheduling priority (0 by default). It stands in for providers that run
 * on their own machines; a benchmark of request latency lowers it so that, on this machine's two
 * cores, the stand-in does not take the client's or the service's turn.
 */
export const startSandbox = async (dir: string, latencyMs: number, nice = 0) => {
  const s = await spawnJson([path.join(root, 'dist/sandbox/src/main.js'), '--latency-ms', String(latencyMs)]);
  if (nice !== 0) os.setPriority(s.child.pid!, nice);
  const description = JSON.parse(s.line) as SandboxDescription;
  const file = path.join(dir, 'sandbox.json');
  fs.writeFileSync(file, s.line);
  const control = async (p: string) => (await fetch(`${description.control}${p}`)).json() as Promise<any>;
  const instances = async (): Promise<{ name: string; stats: { accepted: number } }[]> => (await control('')).instances;
  return {
    description,
    file,
    child: s.child,
    instances,
    acceptedTotal: async () => (await instances()).reduce((n, i) => n + i.stats.accepted, 0),
    /** The instance's logged accepted messages (its last 10,000), received at or after `since` (epoch ms). */
    accepted: async (instance: string, since: number): Promise<AcceptedRecord[]> =>
      (await control(`/${instance}/accepted?receivedSince=${since}&limit=1000000`)).messages,
    stop: () => stopChild(s.child),
  };
};

/**
 * Collects an instance's accepted records as they come (the sandbox logs the last 10,000 per
 * instance): polls every `everyMs` from the last receivedAt seen, de-duplicated by message id.
 */
export const collectAccepted = (sandbox: Sandbox, instances: readonly string[], since: number, everyMs = 250) => {
  const seen = new Map<string, AcceptedRecord>();
  const last = new Map(instances.map((i) => [i, since]));
  let stopped = false;
  const pollOnce = async () => {
    for (const inst of instances) {
      const recs = await sandbox.accepted(inst, last.get(inst)!);
      for (const r of recs) {
        if (!seen.has(`${inst}/${r.id}`)) seen.set(`${inst}/${r.id}`, r);
        if (r.receivedAt > last.get(inst)!) last.set(inst, r.receivedAt);
      }
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await pollOnce().catch(() => undefined);
      await sleep(everyMs);
    }
    await pollOnce().catch(() => undefined);
  })();
  return {
    records: () => [...seen.values()],
    poll: pollOnce,
    stop: async () => {
      stopped = true;
      await loop;
      return [...seen.values()];
    },
  };
};

// ---- deployments -------------------------------------------------------------------------------
export type Topology =
  | Readonly<{ kind: 'embedded' }>
  | Readonly<{ kind: 'cluster'; workers: number; readStore: 'postgres' | 'mongodb'; eventStore: 'postgres' | 'sqlite'; bus: 'kafka' | 'sqlite'; expiry?: boolean; /** The nice value of every process but the api's (0 unless given). */ pipelineNice?: number }>;

export const describeTopology = (t: Topology): string =>
  t.kind === 'embedded'
    ? 'embedded default: one process, all roles, SQLite'
    : `cluster: api, projections, ${t.workers} delivery worker${t.workers > 1 ? 's' : ''}${t.expiry ? ', expiry' : ''} as processes${t.pipelineNice ? ` (all but the api at nice ${t.pipelineNice})` : ''}; event store ${t.eventStore}, read store ${t.readStore}, bus ${t.bus}`;

/** The topology the common flags name: --cluster, or --bus/--read-store/--event-store as bench:fanout always had. */
export const topologyFromFlags = (defaults: { workers?: number } = {}): Topology => {
  const bus = arg('bus', flag('cluster') ? 'kafka' : 'sqlite') as 'kafka' | 'sqlite';
  const readStore = arg('read-store', flag('cluster') ? 'postgres' : 'sqlite');
  const eventStore = arg('event-store', flag('cluster') || bus !== 'sqlite' || readStore !== 'sqlite' ? 'postgres' : 'sqlite');
  if (bus === 'sqlite' && readStore === 'sqlite' && eventStore === 'sqlite') return { kind: 'embedded' };
  if (readStore === 'sqlite') throw new Error('a cluster needs --read-store postgres or mongodb');
  return { kind: 'cluster', workers: num('workers', defaults.workers ?? 2), readStore: readStore as 'postgres' | 'mongodb', eventStore: eventStore as 'postgres', bus, pipelineNice: num('pipeline-nice', 10) };
};

export type Running = Readonly<{ name: string; child: ChildProcess; output: () => string }>;
export type Deployment = Awaited<ReturnType<typeof deploy>>;

const kafkaBrokers = (): string => {
  const b = process.env.KAFKA_BROKERS;
  if (!b) throw new Error('the cluster needs KAFKA_BROKERS (eval "$(npm run -s servers:up | grep ^export)")');
  return b;
};

/**
 * Starts the service: embedded (one process) or a cluster (api, projections, `workers` delivery
 * workers, each a process) on a fresh PostgreSQL database, FerretDB database and Kafka topic
 * prefix of its own. `env` adds settings to every process; `profileDir` turns on --cpu-prof.
 */
export const deploy = async (options: Readonly<{ dir: string; masterKey: string; sandboxFile: string; topology: Topology; env?: Record<string, string>; profileDir?: string; tag?: string }>) => {
  const { topology } = options;
  const run = `bench${randomBytes(4).toString('hex')}`;
  const dataDir = path.join(options.dir, `data-${options.tag ?? run}`);
  fs.mkdirSync(dataDir, { recursive: true });
  const env: Record<string, string> = { DATA_DIR: dataDir, MASTER_KEY: options.masterKey, SANDBOX_FILE: options.sandboxFile, LOG_LEVEL: 'warn', PORT: '0', OPS_PORT: '0', WRITE_OPERATOR_KEY_FILE: 'true',
    // The API's per-tenant and per-key request limits are off: the benchmarks measure capacity, not the limits.
    RATE_LIMIT_TENANT_REQUESTS: '0', RATE_LIMIT_KEY_REQUESTS: '0', RATE_LIMIT_TENANT_SENDS: '0', RATE_LIMIT_KEY_SENDS: '0',
    ...(options.env ?? {}) };
  let database: Awaited<ReturnType<typeof createDatabase>> | undefined;
  let pgUrl: string | undefined;
  if (topology.kind === 'cluster') {
    Object.assign(env, { EVENT_STORE: topology.eventStore, READ_STORE: topology.readStore, BUS: topology.bus });
    if (topology.eventStore === 'postgres' || topology.readStore === 'postgres') {
      const base = process.env.POSTGRES_URL;
      if (!base) throw new Error('PostgreSQL needs POSTGRES_URL (eval "$(npm run -s servers:up | grep ^export)")');
      database = await createDatabase(base, run);
      pgUrl = env.POSTGRES_URL = database.url;
    }
    if (topology.readStore === 'mongodb') {
      if (!process.env.MONGODB_URL) throw new Error('--read-store mongodb needs MONGODB_URL');
      env.MONGODB_URL = process.env.MONGODB_URL;
      env.MONGODB_DATABASE = run;
    }
    if (topology.bus === 'kafka') {
      env.KAFKA_BROKERS = kafkaBrokers();
      env.KAFKA_PREFIX = run;
    }
  }
  const processes: Running[] = [];
  const start = async (name: string, extra: Record<string, string>, nice = 0) => {
    const prof = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(options.profileDir, name)}`] : [];
    // Each process names its PostgreSQL sessions (pg_stat_activity shows which role waits on what).
    const p = await startServiceProcess({ ...env, PGAPPNAME: `notify-${name}`, ...extra }, prof, nice);
    track(p.child);
    processes.push({ name, child: p.child, output: p.output });
    return p;
  };
  let url: string;
  let operatorKey: string;
  try {
    if (topology.kind === 'cluster') {
      url = (await start('api', { ROLES: 'command,query' })).url;
      // The roles behind the API run at a lower priority, as the embedded default's pipeline thread
      // does (PIPELINE_NICE): here they share the API's two cores, in a deployment they would not.
      const nice = topology.pipelineNice ?? 0;
      const rest: Promise<unknown>[] = [start('projections', { ROLES: 'projections' }, nice)];
      for (let w = 1; w <= topology.workers; w++) {
        rest.push(start(`delivery-${w}`, { ROLES: 'delivery', ...(w > 1 ? { DELIVERY_PLAN: 'false' } : {}) }, nice));
      }
      if (topology.expiry) rest.push(start('expiry', { ROLES: 'expiry' }, nice));
      await Promise.all(rest);
    } else {
      url = (await start('service', {})).url;
    }
    operatorKey = fs.readFileSync(path.join(dataDir, 'operator.key'), 'utf8').trim();
  } catch (e) {
    // A process that started must not outlive a deployment that failed.
    await Promise.all(processes.map((p) => stopChild(p.child)));
    throw e;
  }

  const openStores = async (poolSize = 4): Promise<{ eventStore: EventStore; vault: KeyVault; close: () => Promise<void> }> => {
    const es = topology.kind === 'cluster' && topology.eventStore === 'postgres'
      ? await openPostgresEventStore({ connectionString: pgUrl!, poolSize })
      : openSqliteEventStore({ path: path.join(dataDir, 'events.db') });
    const vault = topology.kind === 'embedded'
      ? openSqliteKeyVault({ path: path.join(dataDir, 'keys.db') })
      : topology.readStore === 'postgres'
        ? await openPostgresKeyVault({ connectionString: pgUrl!, schema: 'notify_keyvault', poolSize })
        : await openMongoKeyVault({ url: env.MONGODB_URL!, database: `${run}_keyvault` });
    return { eventStore: es, vault, close: async () => void (await Promise.all([es.close(), vault.close()])) };
  };

  const openReadStore = async () =>
    topology.kind === 'embedded'
      ? openSqliteReadStore({ path: path.join(dataDir, 'read.db') })
      : topology.readStore === 'postgres'
        ? await openPostgresReadStore({ connectionString: pgUrl!, schema: 'notify_read', poolSize: 1 })
        : await openMongoReadStore({ url: env.MONGODB_URL!, database: run });

  return {
    url,
    run,
    topology,
    /** The SQLite files' directory, and the settings every process got (the servers' addresses, the run's names). */
    dataDir,
    env: env as Readonly<Record<string, string>>,
    openReadStore,
    operatorKey,
    processes,
    describe: describeTopology(topology),
    gql: graphql(url),
    openStores,
    process: (name: string) => processes.find((p) => p.name === name),
    stop: async () => {
      await Promise.all(processes.map((p) => stopChild(p.child)));
      if (database && !flag('keep-data')) await database.drop().catch(() => undefined);
      if (!flag('keep-data')) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
};

/** Registers a tenant (deadline in minutes) and returns its admin key. */
export const registerTenant = async (d: Deployment, tenantId: string, deadlineMinutes: number): Promise<string> => {
  const r = await d.gql<any>(d.operatorKey, `mutation { registerTenant(input: { tenantId: "${tenantId}", name: "${tenantId}", deliveryDeadlineMinutes: ${deadlineMinutes} }) { adminKey { token } } }`);
  if (!r.data) throw new Error(`registerTenant ${tenantId}: ${JSON.stringify(r.errors)}`);
  return r.data.registerTenant.adminKey.token;
};

export const createGroup = async (d: Deployment, key: string, groupId: string) => {
  const r = await d.gql<any>(key, `mutation { createGroup(input: { groupId: "${groupId}", name: "${groupId}" }) { groupId } }`);
  if (r.errors) throw new Error(`createGroup: ${JSON.stringify(r.errors)}`);
};

/**
 * Seeds users the way bench:fanout always has (seedUsers: a data key each in the deployment's
 * vault, sealed personal data, batches of 1,000 per append), in `parallel` ranges at once (the
 * PostgreSQL vault is a round trip per key). Returns users per second.
 */
export const seed = async (
  d: Deployment,
  masterKey: string,
  o: Readonly<{ tenantId: string; count: number; from?: number; groupIds: readonly string[]; devices: (i: number) => readonly SeedDevice[]; consentEnd?: string; prefix?: string; parallel?: number }>,
): Promise<number> => {
  const parallel = o.parallel ?? (d.topology.kind === 'embedded' ? 1 : 6);
  const { eventStore, vault, close } = await d.openStores(parallel + 2);
  const t = performance.now();
  try {
    const from = o.from ?? 0;
    const chunk = Math.ceil(o.count / parallel / 1000) * 1000;
    await Promise.all(
      Array.from({ length: parallel }, async (_, k) => {
        const start = from + k * chunk;
        const count = Math.min(chunk, from + o.count - start);
        if (count <= 0) return;
        const cipher = new PersonalDataCipher(vault, Buffer.from(masterKey, 'base64'), { cacheSize: 0 });
        await seedUsers({ eventStore, cipher }, { tenantId: o.tenantId, count, from: start, groupIds: o.groupIds, devices: o.devices, ...(o.consentEnd ? { consentEnd: o.consentEnd } : {}), ...(o.prefix ? { prefix: o.prefix } : {}) });
      }),
    );
  } finally {
    await close();
  }
  return o.count / ((performance.now() - t) / 1000);
};

/**
 * Waits until every read model (the activity's too: the timeline of every seeded registration)
 * has caught up with the log's head, so a measurement does not share the machine with the
 * projections' backlog of the seeding. Returns the seconds it waited.
 */
export const waitReadModels = async (d: Deployment, timeoutMs = 3_600_000): Promise<number> => {
  const t = performance.now();
  const { eventStore, close } = await d.openStores(1);
  const head = await eventStore.headPosition();
  await close();
  const store = await d.openReadStore();
  try {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const cps = await Promise.all(allReadModels.map((m) => store.checkpoint(checkpointName(m))));
      if (cps.every((c) => c !== null && c >= head)) break;
      if (Date.now() > end) throw new Error(`read models behind the log head ${head} after ${timeoutMs} ms: ${cps.join(', ')}`);
      await sleep(500);
    }
  } finally {
    await store.close();
  }
  return (performance.now() - t) / 1000;
};

/** How far each read model's checkpoint is behind the log's head, in log positions (events). */
export const readModelLag = async (d: Deployment): Promise<Record<string, number>> => {
  const { eventStore, close } = await d.openStores(1);
  const head = await eventStore.headPosition();
  await close();
  const store = await d.openReadStore();
  try {
    const cps = await Promise.all(allReadModels.map((m) => store.checkpoint(checkpointName(m))));
    return Object.fromEntries(allReadModels.map((m, i) => [m.name, head - (cps[i] ?? 0)]));
  } finally {
    await store.close();
  }
};

/** Waits until the group's read model counts `count` members (the projections caught up). */
export const waitMembers = async (d: Deployment, key: string, groupId: string, count: number, timeoutMs = 3_600_000) => {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const g = await d.gql<any>(key, `{ group(groupId: "${groupId}") { memberCount } }`);
    if ((g.data?.group?.memberCount ?? 0) >= count) return;
    if (Date.now() > end) throw new Error(`group ${groupId} has ${g.data?.group?.memberCount} of ${count} members after ${timeoutMs} ms`);
    await sleep(500);
  }
};

export type Progress = Readonly<{ status: string; total: number; succeeded: number; failed: number; expired: number }>;
export const progressOf = async (d: Deployment, key: string, id: string): Promise<Progress | null> => {
  const n = await d.gql<any>(key, `{ notification(notificationId: "${id}") { status progress { total succeeded failed expired } } }`);
  const x = n.data?.notification;
  return x ? { status: x.status, ...x.progress } : null;
};

export const SEND_FIELDS = `notification { notificationId requestedAt } estimate { recipients deliveries ahead delays seconds deadlineSeconds fitsDeadline }`;
export type Estimate = Readonly<{ recipients: number; deliveries: number; ahead: number; delays: number; seconds: number; deadlineSeconds: number; fitsDeadline: boolean }>;
export const send = async (d: Deployment, key: string, groupId: string, text: string): Promise<{ id: string; requestedAt: string; estimate: Estimate | null; at: number }> => {
  const at = Date.now();
  const r = await d.gql<any>(key, `mutation { sendNotification(input: { groupId: "${groupId}", text: "${text}" }) { ${SEND_FIELDS} } }`);
  if (!r.data) throw new Error(`sendNotification: ${JSON.stringify(r.errors)}`);
  const s = r.data.sendNotification;
  return { id: s.notification.notificationId, requestedAt: s.notification.requestedAt, estimate: s.estimate, at };
};

/** Polls until COMPLETED; `each` sees every poll. Returns the completion time (epoch ms). */
export const waitCompleted = async (d: Deployment, key: string, id: string, each?: (p: Progress) => void, everyMs = 1000, timeoutMs = 4 * 3_600_000): Promise<number> => {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const p = await progressOf(d, key, id);
    if (p) each?.(p);
    if (p?.status === 'COMPLETED') return Date.now();
    if (Date.now() > end) throw new Error(`notification ${id} not completed after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
};

// ---- CPU accounting and profiles ---------------------------------------------------------------
/** CPU seconds used by each of the deployment's processes, the sandbox, the servers and the machine, between start() and end(). */
export const cpuMeter = (d: Deployment, sandbox: Sandbox) => {
  const read = () => {
    const m: Record<string, number> = {};
    for (const p of d.processes) m[p.name] = cpuSeconds(p.child.pid!);
    m.sandbox = cpuSeconds(sandbox.child.pid!);
    m.bench = process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6;
    if (d.topology.kind === 'cluster') {
      m.postgres = cpuSecondsOf(/^postgres$/);
      m.kafka = cpuSecondsOf(/^java$/);
      if (d.topology.readStore === 'mongodb') m.ferretdb = cpuSecondsOf(/^ferretdb$/);
    }
    return { m, machine: machineCpu(), at: performance.now() };
  };
  const start = read();
  return {
    end: () => {
      const e = read();
      const wall = (e.at - start.at) / 1000;
      const cores = (e.machine.total - start.machine.total) / wall;
      const per = Object.fromEntries(Object.keys(e.m).map((k) => [k, (e.m[k]! - start.m[k]!) / wall]));
      const busy = (e.machine.busy - start.machine.busy) / wall;
      return { wall, cores, busy, per, text: `CPU (cores busy on average over ${wall.toFixed(0)} s): ${Object.entries(per).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}; machine ${busy.toFixed(2)} of ${cores.toFixed(0)}` };
    },
  };
};

type ProfileNode = { id: number; callFrame: { functionName: string; url: string }; children?: number[] };
/** Time by category (a package of node_modules, a project of ours, GC, idle) of one .cpuprofile; node's internals charged to their caller unless `inclusive` is false. */
export const profileCategories = (file: string, inclusive = true): { total: number; categories: [string, number][] } => {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const cat = new Map<number, string>();
  for (const n of p.nodes) {
    const { url, functionName } = n.callFrame;
    let c: string;
    if (!url) c = functionName.startsWith('(') ? functionName : `native ${functionName || '(anonymous)'}`;
    else if (url.includes('node_modules/')) {
      const rest = url.slice(url.lastIndexOf('node_modules/') + 13).split('/');
      c = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    } else if (url.startsWith('node:internal/')) c = `node:internal/${url.slice(14).split('/')[0]!.replace(/\.js$/, '')}`;
    else if (url.startsWith('node:')) c = `node:${url.slice(5).split('/')[0]}`;
    else {
      const m = /\/dist\/([^/]+)\/src\/(.+)\.js$/.exec(url);
      c = m ? `${m[1]}/${m[2]!.split('/').slice(0, 2).join('/')}` : url;
    }
    cat.set(n.id, c);
  }
  // Node's internals and native code are charged to the nearest caller that is a package or a
  // project of ours (TLS framing under an SDK's request counts as that SDK's), GC and idle as such.
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const owner = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const known = owner.get(id);
    if (known !== undefined) return known;
    const c = cat.get(id)!;
    let o = c;
    if (c.startsWith('node:') || c.startsWith('native ')) {
      const up = parent.get(id);
      const po = up === undefined ? c : ownerOf(up);
      o = po === '(root)' || po.startsWith('node:') || po.startsWith('native ') ? c.replace(/^native .*/, 'native') : po;
    }
    owner.set(id, o);
    return o;
  };
  const by = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const c = inclusive ? ownerOf(id) : cat.get(id)!;
    by.set(c, (by.get(c) ?? 0) + dt);
  });
  return { total, categories: [...by].sort((a, b) => b[1] - a[1]) };
};

/** Inclusive time of the project's own functions (each counted once per sample it is on the stack of), the top `n`. */
export const ourFunctions = (file: string, n = 10): [string, number][] => {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const node of p.nodes) {
    byId.set(node.id, node);
    for (const c of node.children ?? []) parent.set(c, node.id);
  }
  const label = (node: ProfileNode): string | null => {
    const m = /\/dist\/([^/]+)\/src\/(.+)\.js$/.exec(node.callFrame.url);
    return m ? `${m[1]}/${m[2]}:${node.callFrame.functionName || '(anonymous)'}` : null;
  };
  const by = new Map<string, number>();
  let busy = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    if (byId.get(id)?.callFrame.functionName === '(idle)') return;
    busy += dt;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (l && !seen.has(l)) {
        seen.add(l);
        by.set(l, (by.get(l) ?? 0) + dt);
      }
    }
  });
  return [...by].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, t]) => [k, t / busy]);
};

/** The top categories of each process's profile under `dir/<process>/`. */
export const summarizeProfiles = (dir: string, top = 8): string[] => {
  const lines: string[] = [];
  if (!fs.existsSync(dir)) return lines;
  for (const name of fs.readdirSync(dir).sort()) {
    const sub = path.join(dir, name);
    if (!fs.statSync(sub).isDirectory()) continue;
    for (const f of fs.readdirSync(sub).filter((x) => x.endsWith('.cpuprofile'))) {
      const { total, categories } = profileCategories(path.join(sub, f));
      const busy = categories.filter(([c]) => c !== '(idle)').reduce((n, [, t]) => n + t, 0);
      const shown = categories.filter(([c]) => c !== '(idle)').slice(0, top);
      lines.push(`  ${name.padEnd(12)} busy ${((busy / total) * 100).toFixed(0)}% of ${(total / 1e6).toFixed(0)} s: ${shown.map(([c, t]) => `${c} ${((t / busy) * 100).toFixed(0)}%`).join(', ')}`);
      if (flag('profile-functions')) lines.push(`               our functions, inclusive: ${ourFunctions(path.join(sub, f), 12).map(([k, x]) => `${k} ${(x * 100).toFixed(0)}%`).join(', ')}`);
    }
  }
  return lines;
};

// ---- results.json ------------------------------------------------------------------------------
export const RESULTS = path.join(root, 'bench/results.json');
/** Merges `data` under `key` into bench/results.json, with the date and the command line. */
export const recordResult = (key: string, data: Record<string, unknown>) => {
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(fs.readFileSync(RESULTS, 'utf8'));
  } catch {
    /* first result */
  }
  all[key] = { date: new Date().toISOString().slice(0, 10), command: `node ${path.relative(root, process.argv[1]!)} ${process.argv.slice(2).join(' ')}`.trim(), ...data };
  fs.writeFileSync(RESULTS, JSON.stringify(all, null, 2) + '\n');
};

export const newMasterKey = () => randomBytes(32).toString('base64');
