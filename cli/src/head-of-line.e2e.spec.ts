import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mixedDevice, seedUsers } from './testing/seed';
import { registerTenant, startHarness, type Harness } from './testing/harness';

const BIG = 50_000;
const SMALL = 50;
/** Small-tenant users get addresses of their own: their messages are told apart at the sandbox. */
const SMALL_FROM = 5_000_000;

const until = async (check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

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
