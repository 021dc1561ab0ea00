import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watch } from './watch';
import { API_ONLY, registerTenant, startHarness, type Harness } from './testing/harness';

describe('live subscriptions', () => {
  let h: Harness;
  let admin: string;

  beforeAll(async () => {
    h = await startHarness({ env: API_ONLY });
    admin = await registerTenant(h, 'live');
    await h.ok(admin, `mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
    await h.ok(admin, `mutation { registerUser(input: { userId: "u", name: "U", groupIds: ["all"], consent: { start: "2026-01-01T00:00:00Z", end: "2099-01-01T00:00:00Z" }, devices: [{ kind: SMS, address: "+821012345678" }] }) { userId } }`);
  });
  afterAll(() => h.stop());

  it("streams a notification's progress snapshot, starting with the current one", async () => {
    const sent = await h.ok<{ sendNotification: any }>(admin, `mutation { sendNotification(input: { groupId: "all", text: "hello" }) { notification { notificationId deadline } } }`);
    const id = sent.sendNotification.notification.notificationId;
    await h.app.settle();
    const it = h.ws(admin).iterate({ query: `subscription($id: ID!) { notificationProgress(notificationId: $id) { notificationId status deadline progress { total completion } } }`, variables: { id } });
    const first = await it.next();
    expect(first.value).toEqual({ data: { notificationProgress: { notificationId: id, status: 'REQUESTED', deadline: sent.sendNotification.notification.deadline, progress: { total: 0, completion: 0 } } } });
    await it.return?.();
  });

  it('streams the tenant events of one notification or one user as they are appended', async () => {
    const client = h.ws(admin);
    const byUser = client.iterate({ query: `subscription { deliveryEvents(userId: "u") { type userId position } }` });
    const all = client.iterate({ query: `subscription { deliveryEvents { type notificationId } }` });
    await new Promise((r) => setTimeout(r, 100));
    await h.ok(admin, `mutation { updateUser(input: { userId: "u", optIn: false }) { userId } }`);
    const sent = await h.ok<{ sendNotification: any }>(admin, `mutation { sendNotification(input: { groupId: "all", text: "again" }) { notification { notificationId } } }`);
    const userEvent = await byUser.next();
    expect(userEvent.value).toMatchObject({ data: { deliveryEvents: { type: 'OptInChanged', userId: 'u' } } });
    const types: string[] = [];
    for (let i = 0; i < 2; i++) types.push(((await all.next()).value as any).data.deliveryEvents.type);
    expect(types).toEqual(['OptInChanged', 'NotificationRequested']);
    await byUser.return?.();
    await all.return?.();
    expect(sent.sendNotification.notification.notificationId).toBeTruthy();
  });

  it('`notify watch` prints snapshots from the command line', async () => {
    const sent = await h.ok<{ sendNotification: any }>(admin, `mutation { sendNotification(input: { groupId: "all", text: "cli" }) { notification { notificationId } } }`);
    const id = sent.sendNotification.notification.notificationId;
    await h.app.settle();
    let out = '';
    let errors = '';
    await watch([id], { API_KEY: admin, API_URL: h.url, WATCH_TIMEOUT_MS: '1500' }, { write: (s) => (out += s) }, { write: (s) => (errors += s) });
    expect(errors).toBe('');
    const first = JSON.parse(out.trim().split('\n')[0]!);
    expect(first).toMatchObject({ notificationId: id, status: 'REQUESTED' });
  });
});
