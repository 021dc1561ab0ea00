import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { openPostgresEventStore } from '#platform/event-store/postgres';
import { openPostgresKeyVault } from '#platform/key-vault/postgres';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { mixedDevice, seedUsers } from './testing/seed';
import { registerTenant, startHarness, type Harness } from './testing/harness';
import { createDatabase } from './testing/postgres';
import { buildService, startServiceProcess, type ServiceProcess } from './testing/process';
import { until } from './testing/until';

const BIG = 50_000;
const SMALL = 50;
/** Small-tenant users get addresses of their own: their messages are told apart at the sandbox. */
const SMALL_FROM = 5_000_000;

describe('a small send with a tighter deadline does not wait behind a large one', () => {
  let h: Harness;
  let big: string;
  let small: string;

  beforeAll(async () => {
    h = await startHarness({ env: { SANDBOX_LATENCY_MS: '20' } });
    big = await registerTenant(h, 'big-sender', 30);
    small = await registerTenant(h, 'small-sender', 10);
    for (const [key, tenant, count, from] of [[big, 'big-sender', BIG, 0], [small, 'small-sender', SMALL, SMALL_FROM]] as const) {
      await h.ok(key, `mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
      await seedUsers(h.app, { tenantId: tenant, count, from, groupIds: ['all'], devices: mixedDevice });
    }
    await h.app.settle();
  }, 180_000);
  afterAll(() => h?.stop());

  it('starts within 2 s and completes within 10 s while 50,000 deliveries of another tenant are under way', async () => {
    const sandbox = h.app.sandbox!;
    const accepted = () => sandbox.instances.reduce((n, i) => n + i.stats().accepted, 0);
    const first = await h.ok<any>(big, `mutation { sendNotification(input: { groupId: "all", text: "the large send" }) { notification { notificationId } } }`);
    await until(() => accepted() >= 5_000, 60_000, 'the large send to be under way');
    const requestedAt = Date.now();
    const sent = await h.ok<any>(small, `mutation { sendNotification(input: { groupId: "all", text: "the small send" }) { notification { notificationId } } }`);
    const id = sent.sendNotification.notification.notificationId;
    const smallAddresses = new Set(Array.from({ length: SMALL }, (_, i) => mixedDevice(SMALL_FROM + i)[0]!.address));
    const smallAccepted = () => sandbox.instances.flatMap((i) => i.accepted({ receivedSince: requestedAt })).filter((m) => smallAddresses.has(m.address));
    await until(() => smallAccepted().length > 0, 5_000, "the small send's first delivery");
    const firstAt = Math.min(...smallAccepted().map((m) => m.receivedAt));
    await until(async () => (await h.ok<any>(small, `{ notification(notificationId: "${id}") { status } }`)).notification.status === 'COMPLETED', 20_000, 'the small send to complete');
    const completedAfter = Date.now() - requestedAt;
    const bigProgress = (await h.ok<any>(big, `{ notification(notificationId: "${first.sendNotification.notification.notificationId}") { status progress { succeeded total } } }`)).notification;
    // The large send is still under way: the small one went ahead of it, not after it.
    expect(bigProgress.status).not.toBe('COMPLETED');
    expect(smallAccepted()).toHaveLength(SMALL);
    console.info(`head of line: first delivery ${firstAt - requestedAt} ms after the request, completed after ${completedAfter} ms; the large send at ${bigProgress.progress.succeeded} of ${bigProgress.progress.total}`);
    expect(firstAt - requestedAt).toBeLessThanOrEqual(2_000);
    expect(completedAfter).toBeLessThanOrEqual(10_000);
  }, 180_000);
});

const { POSTGRES_URL, KAFKA_BROKERS } = process.env;
const clusterReady = Boolean(POSTGRES_URL && KAFKA_BROKERS);
if (!clusterReady) console.warn('head-of-line cluster e2e skipped: POSTGRES_URL and KAFKA_BROKERS are not both set (npm run servers:up starts the servers and prints them)');

/**
 * The same on the cluster: Kafka, PostgreSQL for the log and the read models, the api, the
 * projections and two delivery workers as processes, all but the api at nice 10 (as
 * bench:head-of-line runs them).
 */
describe.skipIf(!clusterReady)('on the cluster, a small send with a tighter deadline does not wait behind a large one', () => {
  const run = `hol${randomBytes(4).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-hol-'));
  const masterKey = randomBytes(32).toString('base64');
  const procs: ServiceProcess[] = [];
  let database: Awaited<ReturnType<typeof createDatabase>> | undefined;
  let sandbox: Sandbox;
  let api: string;
  let big: string;
  let small: string;

  const gql = async (key: string, query: string) => {
    const res = await fetch(api, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query }) });
    const body = (await res.json()) as { data?: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };

  beforeAll(async () => {
    buildService();
    database = await createDatabase(POSTGRES_URL!, run);
    sandbox = await startSandbox({ faults: { latencyMs: 20 } });
    fs.writeFileSync(path.join(dir, 'sandbox.json'), JSON.stringify(sandbox.describe()));
    const env = {
      MASTER_KEY: masterKey, SANDBOX_FILE: path.join(dir, 'sandbox.json'),
      EVENT_STORE: 'postgres', READ_STORE: 'postgres', POSTGRES_URL: database.url,
      BUS: 'kafka', KAFKA_BROKERS: KAFKA_BROKERS!, KAFKA_PREFIX: run, LOG_LEVEL: 'error',
    };
    const start = async (name: string, extra: Record<string, string>, nice = 10) => {
      const p = await startServiceProcess({ ...env, DATA_DIR: path.join(dir, name), ...extra }, [], nice);
      procs.push(p);
      return p;
    };
    api = (await start('api', { ROLES: 'command,query', WRITE_OPERATOR_KEY_FILE: 'true' }, 0)).url;
    await Promise.all([
      start('projections', { ROLES: 'projections' }),
      start('delivery-1', { ROLES: 'delivery' }),
      start('delivery-2', { ROLES: 'delivery', DELIVERY_PLAN: 'false' }),
    ]);
    const operator = fs.readFileSync(path.join(dir, 'api', 'operator.key'), 'utf8').trim();
    const tenant = async (id: string, minutes: number) =>
      (await gql(operator, `mutation { registerTenant(input: { tenantId: "${id}", name: "${id}", deliveryDeadlineMinutes: ${minutes} }) { adminKey { token } } }`)).registerTenant.adminKey.token as string;
    big = await tenant('big-sender', 30);
    small = await tenant('small-sender', 10);
    const eventStore = await openPostgresEventStore({ connectionString: database.url });
    const vault = await openPostgresKeyVault({ connectionString: database.url, schema: 'notify_keyvault', poolSize: 6 });
    try {
      for (const [key, tenantId, count, from] of [[big, 'big-sender', BIG, 0], [small, 'small-sender', SMALL, SMALL_FROM]] as const) {
        await gql(key, `mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
        // In four ranges at once: the PostgreSQL vault is a round trip per key.
        const ranges = count > 1000 ? 4 : 1;
        await Promise.all(Array.from({ length: ranges }, (_, k) => {
          const cipher = new PersonalDataCipher(vault, Buffer.from(masterKey, 'base64'), { cacheSize: 0 });
          return seedUsers({ eventStore, cipher }, { tenantId, count: count / ranges, from: from + (k * count) / ranges, groupIds: ['all'], devices: mixedDevice });
        }));
      }
    } finally {
      await eventStore.close();
      await vault.close();
    }
    for (const [key, count] of [[big, BIG], [small, SMALL]] as const) {
      await until(async () => (await gql(key, '{ group(groupId: "all") { memberCount } }')).group.memberCount === count, 240_000, 'the group in the read models');
    }
  }, 420_000);

  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await sandbox?.close();
    await database?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('starts within 2 s and completes within 10 s while 50,000 deliveries of another tenant are under way', async () => {
    const accepted = () => sandbox.instances.reduce((n, i) => n + i.stats().accepted, 0);
    const first = await gql(big, `mutation { sendNotification(input: { groupId: "all", text: "the large send" }) { notification { notificationId } } }`);
    await until(() => accepted() >= 5_000, 120_000, 'the large send to be under way');
    const requestedAt = Date.now();
    const sent = await gql(small, `mutation { sendNotification(input: { groupId: "all", text: "the small send" }) { notification { notificationId } } }`);
    const id = sent.sendNotification.notification.notificationId;
    const smallAddresses = new Set(Array.from({ length: SMALL }, (_, i) => mixedDevice(SMALL_FROM + i)[0]!.address));
    const smallAccepted = () => sandbox.instances.flatMap((i) => i.accepted({ receivedSince: requestedAt })).filter((m) => smallAddresses.has(m.address));
    await until(() => smallAccepted().length > 0, 10_000, "the small send's first delivery");
    const firstAt = Math.min(...smallAccepted().map((m) => m.receivedAt));
    await until(async () => (await gql(small, `{ notification(notificationId: "${id}") { status } }`)).notification.status === 'COMPLETED', 30_000, 'the small send to complete');
    const completedAfter = Date.now() - requestedAt;
    const bigProgress = (await gql(big, `{ notification(notificationId: "${first.sendNotification.notification.notificationId}") { status progress { succeeded total } } }`)).notification;
    expect(bigProgress.status).not.toBe('COMPLETED');
    expect(smallAccepted()).toHaveLength(SMALL);
    console.info(`head of line (cluster): first delivery ${firstAt - requestedAt} ms after the request, completed after ${completedAfter} ms; the large send at ${bigProgress.progress.succeeded} of ${bigProgress.progress.total}`);
    expect(firstAt - requestedAt).toBeLessThanOrEqual(2_000);
    expect(completedAfter).toBeLessThanOrEqual(10_000);
  }, 180_000);
});
