import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { streams } from '#schema/streams';
import { buildService, startServiceProcess, type ServiceProcess } from './testing/process';
import { until } from './testing/until';

const gql = async (url: string, key: string, query: string, variables?: object) => {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: any; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
};

const userEvents = async (dataDir: string) => {
  const store = openSqliteEventStore({ path: path.join(dataDir, 'events.db') });
  try {
    return (await store.readStream(streams.user('crash', 'victim'))).map((e) => e.type);
  } finally {
    await store.close();
  }
};
const keyExists = async (dataDir: string) => {
  const vault = openSqliteKeyVault({ path: path.join(dataDir, 'keys.db') });
  try {
    return (await vault.get('crash:victim')) !== null;
  } finally {
    await vault.close();
  }
};

describe('a crash between ConsentExpired and the key destruction', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-crash-'));
  let service: ServiceProcess | null = null;

  beforeAll(() => buildService(), 180_000);
  afterAll(async () => {
    service?.child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('is finished by the next start: no user stays readable past their consent end', async () => {
    service = await startServiceProcess({ DATA_DIR: dataDir, FAILPOINTS: 'shred:after-decision' });
    const operator = fs.readFileSync(path.join(dataDir, 'operator.key'), 'utf8').trim();
    const tenant = await gql(service.url, operator, `mutation { registerTenant(input: { tenantId: "crash", name: "Crash", deliveryDeadlineMinutes: 10 }) { adminKey { token } } }`);
    const admin = tenant.registerTenant.adminKey.token;
    const end = new Date(Date.now() + 1500).toISOString();
    await gql(service.url, admin, `mutation($end: DateTimeISO!) { registerUser(input: { userId: "victim", name: "Victim", consent: { start: "2026-01-01T00:00:00Z", end: $end }, devices: [{ kind: SMS, address: "+821055556666" }] }) { userId } }`, { end });

    const died = await Promise.race([service.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    expect(died).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await userEvents(dataDir)).toEqual(['UserRegistered', 'ConsentExpired']);
    expect(await keyExists(dataDir)).toBe(true);

    service = await startServiceProcess({ DATA_DIR: dataDir });
    await until(async () => (await userEvents(dataDir)).includes('UserDataShredded'), 10_000);
    expect(await userEvents(dataDir)).toEqual(['UserRegistered', 'ConsentExpired', 'UserDataShredded']);
    expect(await keyExists(dataDir)).toBe(false);
    const after = await gql(service.url, admin, `{ users { nodes { userId } } }`);
    expect(after.users.nodes).toEqual([]);
    service.child.kill('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    service = null;
  }, 60_000);
});
