import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultyEventStore, faultyReadStore, type Faults, type EventStoreOp, type ReadStoreOp } from '#platform/testing/faulty';
import { processHealth } from '#platform/health';
import { streams, userKeyId } from '#schema/streams';
import { loadConfig } from './config';
import { startApp, type App } from './app';

/**
 * Two processes' worth of roles on one set of files: A serves the API (with its key evictor and
 * live hub), B runs the projections, delivery and expiry. Both stores fail for a while under
 * every role; afterwards every role works again by itself: users registered during the outage
 * are shredded on time, A's cache drops a key B destroyed, and a send completes.
 */
describe('long-running roles survive store errors', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'resilience-'));
  const faults: { a?: Faults<EventStoreOp>; b?: Faults<EventStoreOp>; bRead?: Faults<ReadStoreOp> } = {};
  const shredded = new Map<string, number>();
  let a: App;
  let b: App;
  let admin: string;

  const gql = async (key: string, query: string, variables?: Record<string, unknown>) => {
    const res = await fetch(a.server!.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data?: any; errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; health: ${JSON.stringify(processHealth.report())}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const register = (userId: string, consentEndMs: number) =>
    gql(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: { userId, name: `Person ${userId}`, groupIds: ['g'], consent: { start: '2026-01-01T00:00:00Z', end: new Date(consentEndMs).toISOString() }, devices: [{ kind: 'EMAIL', address: `${userId}@resilience.example` }] },
    });

  beforeAll(async () => {
    const env = { PORT: '0', OPS_PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'silent' };
    a = await startApp(loadConfig({ ...env, ROLES: 'api' }), {
      wrapInfrastructure: (i) => {
        const eventStore = faultyEventStore(i.eventStore);
        faults.a = eventStore.faults;
        return { ...i, eventStore };
      },
    });
    b = await startApp(loadConfig({ ...env, ROLES: 'projections,delivery,expiry', SANDBOX: 'embedded', SANDBOX_LATENCY_MS: '1' }), {
      wrapInfrastructure: (i) => {
        const eventStore = faultyEventStore(i.eventStore);
        const readStore = faultyReadStore(i.readStore);
        faults.b = eventStore.faults;
        faults.bRead = readStore.faults;
        return { ...i, eventStore, readStore };
      },
      expiry: { leaseTtlMs: 600, onShredded: (users) => users.forEach((u) => shredded.set(u.userId, u.at.getTime())) },
    });
    const op = a.operatorKey!;
    admin = (await gql(op, `mutation { registerTenant(input: { tenantId: "acme", name: "Acme", deliveryDeadlineMinutes: 10 }) { adminKey { token } } }`)).registerTenant.adminKey.token;
    await gql(admin, `mutation { createGroup(input: { groupId: "g", name: "G" }) { groupId } }`);
  }, 60_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('every role restarts after store errors, reports unhealthy meanwhile, and works again', async () => {
    const t0 = Date.now();
    // Due after the roles have recovered (2-4 s here, more on a busy machine): A must read the
    // victim's key into its cache before B destroys it.
    const victimDue = t0 + 9_000;
    const lateDue = t0 + 10_000;
    await register('victim', victimDue);
    await b.settle();
    expect(processHealth.healthy()).toBe(true);

    // The stores fail under every role for a second and a half.
    faults.a!.failing('readAll', true).failing('headPosition', true);
    faults.b!.failing('readAll', true).failing('headPosition', true);
    faults.bRead!.failing('commit', true);
    const roles = ['key-evictor', 'live-hub', 'projections:audience', 'projections:progress', 'projections:timeline', 'expiry-schedule', 'planner', 'webhook-outbox'];
    await until('every role to report the failure', () => {
      const report = processHealth.report().components;
      return roles.every((r) => report[r]?.healthy === false);
    });
    expect(processHealth.healthy()).toBe(false);
    // Registered while every subscription is down (appends still work).
    await register('late', lateDue);
    await new Promise((r) => setTimeout(r, 1_500));
    faults.a!.clear();
    faults.b!.clear();
    faults.bRead!.clear();

    await until('every role to recover by itself', () => processHealth.healthy(), 20_000);
    expect(Object.entries(processHealth.report().components).filter(([, c]) => c.failures > 0).map(([name]) => name)).toEqual(expect.arrayContaining(roles));

    // A reads the victim again: its key is cached in A's memory.
    expect(await a.cipher.keyFor(userKeyId('acme', 'victim'), { create: false })).not.toBeNull();
    expect(a.cipher.cachedKeys).toBeGreaterThan(0);

    // B's expiry shreds both on time; the one registered during the outage included.
    await until('the victim and the late user to be shredded', () => shredded.has('victim') && shredded.has('late'), 15_000);
    expect(shredded.get('victim')! - victimDue).toBeLessThan(2_000);
    expect(shredded.get('late')! - lateDue).toBeLessThan(2_000);
    const types = (await b.eventStore.readStream(streams.user('acme', 'late'))).map((e) => e.type);
    expect(types).toEqual(['UserRegistered', 'ConsentExpired', 'UserDataShredded']);

    // A's evictor, restarted, drops the key B destroyed: A can no longer open the victim's data.
    await until("A's cache to drop the destroyed key", async () => (await a.cipher.keyFor(userKeyId('acme', 'victim'), { create: false })) === null, 5_000);

    // The planner, restarted, still plans: a send to a new user completes.
    await register('reader', Date.now() + 3_600_000);
    const sent = await gql(admin, `mutation { sendNotification(input: { userIds: ["reader"], text: "after the outage" }) { notification { notificationId } } }`);
    const id = sent.sendNotification.notification.notificationId;
    // The read model follows the log: until it has the notification, the query answers NOT_FOUND.
    const status = async () => (await gql(admin, `{ notification(notificationId: "${id}") { status } }`).catch((e: Error) => (/NOT_FOUND/.test(e.message) ? null : Promise.reject(e))))?.notification?.status;
    await until('the send to complete', async () => (await status()) === 'COMPLETED', 20_000);
  }, 90_000);
});
