import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { buildService, startServiceProcess, type ServiceProcess } from './testing/process';
import { mixedDevice, seedUsers } from './testing/seed';
import { until } from './testing/until';

const USERS = 100_000;
const IN_FLIGHT = 500;

describe(`SIGKILL during a ${USERS.toLocaleString('en')}-recipient send`, () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-crash-send-'));
  const masterKey = randomBytes(32).toString('base64');
  let sandbox: Sandbox;
  let service: ServiceProcess | null = null;
  let env: Record<string, string>;
  let admin: string;

  const gql = async (query: string, key = admin) => {
    const res = await fetch(service!.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query }) });
    const body = (await res.json()) as { data?: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const accepted = () => sandbox.instances.reduce((n, i) => n + i.stats().accepted, 0);

  beforeAll(async () => {
    buildService();
    // The sandbox lives in this process, so it outlives the service we kill.
    sandbox = await startSandbox({ faults: { latencyMs: 20 }, recording: { logLimit: 0 } });
    fs.writeFileSync(path.join(dataDir, 'sandbox.json'), JSON.stringify(sandbox.describe()));
    env = { DATA_DIR: dataDir, MASTER_KEY: masterKey, SANDBOX_FILE: path.join(dataDir, 'sandbox.json'), DELIVERY_MAX_IN_FLIGHT: String(IN_FLIGHT) };
    service = await startServiceProcess(env);
    const operator = fs.readFileSync(path.join(dataDir, 'operator.key'), 'utf8').trim();
    admin = (await gql(`mutation { registerTenant(input: { tenantId: "load", name: "Load", deliveryDeadlineMinutes: 30 }) { adminKey { token } } }`, operator)).registerTenant.adminKey.token;
    await gql(`mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
    // Users written straight into the running service's store (as its API would write them).
    const eventStore = openSqliteEventStore({ path: path.join(dataDir, 'events.db') });
    const vault = openSqliteKeyVault({ path: path.join(dataDir, 'keys.db') });
    await seedUsers({ eventStore, cipher: new PersonalDataCipher(vault, Buffer.from(masterKey, 'base64')) }, { tenantId: 'load', count: USERS, groupIds: ['all'], devices: mixedDevice });
    await Promise.all([eventStore.close(), vault.close()]);
    await until(async () => (await gql(`{ group(groupId: "all") { memberCount } }`)).group.memberCount === USERS, 180_000, 'the users read model');
  }, 400_000);

  afterAll(async () => {
    if (process.env['SHOW_SERVICE_OUTPUT']) process.stderr.write(service?.output() ?? '');
    service?.child.kill('SIGKILL');
    await sandbox?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('ends every delivery in exactly one terminal event, loses none, and duplicates only what was in flight, each marked', async () => {
    const sent = await gql(`mutation { sendNotification(input: { groupId: "all", text: "survive a crash" }) { notification { notificationId } } }`);
    const id = sent.sendNotification.notification.notificationId;
    await until(async () => {
      if (process.env['SHOW_SERVICE_OUTPUT']) process.stderr.write(`accepted ${accepted()} ${JSON.stringify((await gql(`{ notification(notificationId: "${id}") { status progress { total succeeded failed expired } } }`)).notification)}\n`);
      return accepted() >= USERS * 0.3;
    }, 180_000, '30% accepted');
    service!.child.kill('SIGKILL');
    expect(await service!.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const atKill = accepted();
    expect(atKill).toBeLessThan(USERS);

    service = await startServiceProcess(env);
    await until(async () => (await gql(`{ notification(notificationId: "${id}") { status } }`)).notification.status === 'COMPLETED', 300_000, 'completion after the restart');
    const n = (await gql(`{ notification(notificationId: "${id}") { progress { total succeeded failed expired possiblyDuplicated reachedUsers reachedUsersExact } } }`)).notification;
    expect(n.progress).toMatchObject({ total: USERS, succeeded: USERS, failed: 0, expired: 0, reachedUsers: USERS, reachedUsersExact: true });

    // Exactly one terminal entry per delivery in the log.
    const eventStore = openSqliteEventStore({ path: path.join(dataDir, 'events.db') });
    const terminal = new Map<string, number>();
    const marked = new Set<string>();
    const byAddress = new Map<string, string>();
    for (let after = 0; ; ) {
      const page = await eventStore.readAll({ after, maxCount: 2000, tenantId: 'load', types: ['DeliverySucceeded', 'DeliveryFailed', 'DeliveryExpired'] });
      for (const e of page) {
        for (const d of (e.data as unknown as { deliveries: { deliveryId: string; userId: string; possiblyDuplicate?: boolean }[] }).deliveries) {
          terminal.set(d.deliveryId, (terminal.get(d.deliveryId) ?? 0) + 1);
          if (d.possiblyDuplicate) marked.add(d.deliveryId);
          const i = Number(d.userId.slice(1));
          byAddress.set(mixedDevice(i)[0]!.address, d.deliveryId);
        }
      }
      if (page.length < 2000) break;
      after = page.at(-1)!.position;
    }
    await eventStore.close();
    expect(terminal.size).toBe(USERS);
    expect([...terminal.values()].every((c) => c === 1)).toBe(true);

    // None lost: every device got the message. Duplicates: only deliveries in flight at the kill.
    const counts = new Map<string, number>();
    for (const inst of sandbox.instances) for (const [address, c] of inst.countsByAddress()) counts.set(address, (counts.get(address) ?? 0) + c);
    expect(counts.size).toBe(USERS);
    const duplicated = [...counts].filter(([, c]) => c > 1).map(([address]) => byAddress.get(address)!);
    expect(duplicated.length).toBeLessThanOrEqual(IN_FLIGHT);
    for (const d of duplicated) expect(marked.has(d), `duplicate ${d} is marked`).toBe(true);
    expect(n.progress.possiblyDuplicated).toBe(marked.size);
    expect(marked.size).toBeLessThanOrEqual(IN_FLIGHT * 2);
  }, 600_000);
});
