import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ONLY, registerTenant, startHarness, type Harness } from './testing/harness';

const CONSENT = '{ start: "2026-01-01T00:00:00Z", end: "2099-01-01T00:00:00Z" }';

describe('authentication, scopes and tenant isolation', () => {
  let h: Harness;
  let adminA: string;
  let adminB: string;
  let notificationA: string;
  let deviceA: string;
  let keyIdA: string;

  beforeAll(async () => {
    h = await startHarness({ env: API_ONLY });
    adminA = await registerTenant(h, 'tenant-a');
    adminB = await registerTenant(h, 'tenant-b');
    await h.ok(adminA, `mutation { createGroup(input: { groupId: "g", name: "A group" }) { groupId } }`);
    const user = await h.ok<{ registerUser: any }>(adminA, `mutation { registerUser(input: { userId: "u", name: "Alice", groupIds: ["g"], consent: ${CONSENT}, devices: [{ kind: EMAIL, address: "alice@a.example" }] }) { devices { deviceId } } }`);
    deviceA = user.registerUser.devices[0].deviceId;
    const sent = await h.ok<{ sendNotification: any }>(adminA, `mutation { sendNotification(input: { groupId: "g", text: "for A only" }) { notification { notificationId } } }`);
    notificationA = sent.sendNotification.notification.notificationId;
    const key = await h.ok<{ issueApiKey: any }>(adminA, `mutation { issueApiKey(input: { name: "reader", scopes: [READ] }) { keyId } }`);
    keyIdA = key.issueApiKey.keyId;
    await h.app.settle();
  });
  afterAll(() => h.stop());

  it('refuses requests without a valid key with 401 UNAUTHENTICATED', async () => {
    for (const key of [null, 'garbage', 'ntf.tenant-a.kdoesnotexist.secret', adminA.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))]) {
      const r = await h.gql(key, `{ me { keyId } }`);
      expect(r.status, String(key)).toBe(401);
      expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
  });

  it('stops accepting a key the moment it is revoked', async () => {
    const issued = await h.ok<{ issueApiKey: any }>(adminA, `mutation { issueApiKey(input: { name: "temp", scopes: [READ] }) { keyId token } }`);
    expect((await h.gql(issued.issueApiKey.token, `{ me { keyId scopes } }`)).data).toEqual({ me: { keyId: issued.issueApiKey.keyId, scopes: ['READ'] } });
    await h.ok(adminA, `mutation($k: ID!) { revokeApiKey(keyId: $k) { tenantId } }`, { k: issued.issueApiKey.keyId });
    const r = await h.gql(issued.issueApiKey.token, `{ me { keyId } }`);
    expect(r.status).toBe(401);
  });

  it('enforces scopes', async () => {
    const reader = await h.ok<{ issueApiKey: any }>(adminA, `mutation { issueApiKey(input: { name: "r", scopes: [READ] }) { token } }`);
    const denied = await h.gql(reader.issueApiKey.token, `mutation { sendNotification(input: { groupId: "g", text: "x" }) { duplicate } }`);
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(denied.errors?.[0]?.message).toContain('notifications:send');
    const writer = await h.ok<{ issueApiKey: any }>(adminA, `mutation { issueApiKey(input: { name: "w", scopes: [USERS_WRITE] }) { token } }`);
    expect((await h.gql(writer.issueApiKey.token, `{ user(userId: "u") { userId } }`)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await h.gql(writer.issueApiKey.token, `mutation { issueApiKey(input: { name: "x", scopes: [ADMIN] }) { token } }`)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // The operator manages tenants but reads no tenant data.
    expect((await h.gql(h.operatorKey, `{ user(userId: "u") { userId } }`)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // Tenants cannot register tenants.
    expect((await h.gql(adminA, `mutation { registerTenant(input: { name: "x", deliveryDeadlineMinutes: 10 }) { tenant { tenantId } } }`)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  // Ids are known only after beforeAll, so each query is a function of them.
  type Ids = Readonly<{ notificationA: string; deviceA: string; keyIdA: string }>;
  const other = (code: 'FORBIDDEN' | 'NOT_FOUND', query: (ids: Ids) => string): [string, 'FORBIDDEN' | 'NOT_FOUND', (ids: Ids) => string] => [
    query({ notificationA: '<notification>', deviceA: '<device>', keyIdA: '<key>' }).slice(0, 90),
    code,
    query,
  ];
  const operations: [string, 'FORBIDDEN' | 'NOT_FOUND', (ids: Ids) => string][] = [
    other('FORBIDDEN', (ids) => `{ tenant(tenantId: "tenant-a") { name } }`),
    other('FORBIDDEN', (ids) => `mutation { changeDeliveryDeadline(tenantId: "tenant-a", minutes: 20) { tenantId } }`),
    other('FORBIDDEN', (ids) => `mutation { changeDeliveryHistory(tenantId: "tenant-a", days: 20) { tenantId } }`),
    other('FORBIDDEN', (ids) => `mutation { issueApiKey(input: { tenantId: "tenant-a", name: "x", scopes: [READ] }) { token } }`),
    other('FORBIDDEN', (ids) => `mutation { revokeApiKey(tenantId: "tenant-a", keyId: "${ids.keyIdA}") { tenantId } }`),
    other('NOT_FOUND', (ids) => `mutation { revokeApiKey(keyId: "${ids.keyIdA}") { tenantId } }`),
    other('NOT_FOUND', (ids) => `{ user(userId: "u") { name } }`),
    other('NOT_FOUND', (ids) => `{ users(groupId: "g") { nodes { name } } }`),
    other('NOT_FOUND', (ids) => `{ group(groupId: "g") { name } }`),
    other('NOT_FOUND', (ids) => `{ notification(notificationId: "${ids.notificationA}") { text } }`),
    other('NOT_FOUND', (ids) => `{ timeline(userId: "u") { nodes { type } } }`),
    other('NOT_FOUND', (ids) => `mutation { updateUser(input: { userId: "u", optIn: false }) { userId } }`),
    other('NOT_FOUND', (ids) => `mutation { addDevice(userId: "u", device: { kind: SMS, address: "+821012345678" }) { userId } }`),
    other('NOT_FOUND', (ids) => `mutation { changeDevice(userId: "u", deviceId: "${ids.deviceA}", device: { kind: SMS, address: "+821012345678" }) { userId } }`),
    other('NOT_FOUND', (ids) => `mutation { removeDevice(userId: "u", deviceId: "${ids.deviceA}") { userId } }`),
    other('NOT_FOUND', (ids) => `mutation { renameGroup(groupId: "g", name: "taken over") { name } }`),
    other('NOT_FOUND', (ids) => `mutation { addGroupMembers(groupId: "g", userIds: ["u"]) { changed } }`),
    other('NOT_FOUND', (ids) => `mutation { removeGroupMembers(groupId: "g", userIds: ["u"]) { changed } }`),
    other('NOT_FOUND', (ids) => `mutation { sendNotification(input: { groupId: "g", text: "hijack" }) { duplicate } }`),
    other('NOT_FOUND', (ids) => `mutation { sendNotification(input: { userIds: ["u"], text: "hijack" }) { duplicate } }`),
  ];

  it.each(operations)('another tenant gets FORBIDDEN or NOT_FOUND: %s', async (_name, code, query) => {
    const head = await h.app.eventStore.headPosition();
    const r = await h.gql(adminB, query({ notificationA, deviceA, keyIdA }));
    expect(r.errors?.[0]?.extensions?.code).toBe(code);
    expect(r.data ?? null).toBeNull();
    expect(JSON.stringify(r)).not.toContain('Alice');
    expect(await h.app.eventStore.headPosition()).toBe(head);
  });

  it("lists only the caller's own data", async () => {
    await h.ok(adminB, `mutation { createGroup(input: { groupId: "g", name: "B group" }) { groupId } }`);
    await h.app.settle();
    const b = await h.ok<any>(adminB, `{ users { nodes { userId } } groups { nodes { name } } notifications { nodes { text } } tenant { tenantId apiKeys { name } } }`);
    expect(b).toEqual({ users: { nodes: [] }, groups: { nodes: [{ name: 'B group' }] }, notifications: { nodes: [] }, tenant: { tenantId: 'tenant-b', apiKeys: [{ name: 'admin' }] } });
  });

  it("never streams another tenant's events or progress", async () => {
    const clientB = h.ws(adminB);
    const seen: unknown[] = [];
    const events = clientB.iterate({ query: `subscription { deliveryEvents { type notificationId } }` });
    const reading = (async () => {
      for await (const e of events) seen.push(e);
    })();
    const progress = clientB.iterate({ query: `subscription { notificationProgress(notificationId: "${notificationA}") { text } }` });
    const first = await progress.next();
    expect((first.value as any).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    await new Promise((r) => setTimeout(r, 100));
    await h.ok(adminA, `mutation { sendNotification(input: { groupId: "g", text: "A again" }) { duplicate } }`);
    await h.ok(adminB, `mutation { sendNotification(input: { groupId: "g", text: "B's own" }) { duplicate } }`);
    for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    await events.return?.();
    await reading;
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ data: { deliveryEvents: { type: 'NotificationRequested' } } });
  });

  it('refuses a WebSocket connection without a valid key', async () => {
    const client = h.ws('ntf.tenant-a.knope.nope');
    const it = client.iterate({ query: `subscription { deliveryEvents { type } }` });
    await expect(it.next()).rejects.toMatchObject({ code: 4403 });
  });
});
