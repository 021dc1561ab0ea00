import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDeliveryConfig } from '#delivery/config';
import { addressOf, seedUsers } from './testing/seed';
import { registerTenant, startHarness, type Harness } from './testing/harness';
import { until } from './testing/until';

/*
 * An admission is a promise: a send estimated to fit keeps its place, and a later send whose
 * deliveries would push it past its deadline is estimated not to fit and delivered best effort,
 * behind it; a later send that leaves it enough slack goes ahead of it, earliest deadline first.
 * SMS only, at 4 deliveries a second (two integrations of 2/s, the cluster's rate set to match).
 */

const RATE = 4;
const PROMISED = 3_560; // 890 s of the 900 s a 15-minute deadline gives: 10 s (40 deliveries) to spare
const PUSHING = 100; // 25 s of work: fits its own 10 minutes, not the promised send's slack
const SMALL = 8; // 2 s of work: within the slack
const FROM = { promised: 0, pushing: 100_000, small: 200_000 } as const;

describe('admission keeps its promises: a send that would make an admitted one late is delivered best effort', () => {
  let h: Harness;
  const keys: Record<keyof typeof FROM, string> = { promised: '', pushing: '', small: '' };

  beforeAll(async () => {
    const slow = { ...defaultDeliveryConfig.policies.twilio!, ratePerSecond: RATE / 2 };
    h = await startHarness({ delivery: { clusterRatePerSecond: RATE, policies: { ...defaultDeliveryConfig.policies, twilio: slow, sns: { ...slow } } } });
    for (const [name, count, minutes] of [['promised', PROMISED, 15], ['pushing', PUSHING, 10], ['small', SMALL, 10]] as const) {
      keys[name] = await registerTenant(h, name, minutes);
      await h.ok(keys[name], `mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
      await seedUsers(h.app, { tenantId: name, count, from: FROM[name], groupIds: ['all'], devices: (i) => [{ kind: 'sms', address: addressOf('sms', i) }] });
    }
    await h.app.settle();
  }, 120_000);
  afterAll(() => h?.stop());

  const send = async (name: keyof typeof FROM) =>
    (await h.ok<any>(keys[name], `mutation { sendNotification(input: { groupId: "all", text: "from ${name}" }) { notification { notificationId } estimate { deliveries seconds deadlineSeconds ahead delays fitsDeadline } } }`)).sendNotification;
  const acceptedOf = (name: keyof typeof FROM, count: number, since: number): number => {
    const addresses = new Set(Array.from({ length: count }, (_, i) => addressOf('sms', FROM[name] + i)));
    return h.app.sandbox!.instances.flatMap((i) => i.accepted({ receivedSince: since })).filter((m) => addresses.has(m.address)).length;
  };

  it('estimates the pushing send not to fit and sends it after the promised one, while a send within the slack goes first', async () => {
    const start = Date.now();
    const promised = await send('promised');
    expect(promised.estimate).toMatchObject({ deliveries: PROMISED, delays: 0, fitsDeadline: true });
    await until(() => acceptedOf('promised', PROMISED, start) >= 8, 20_000, 'the promised send to be under way');

    const pushing = await send('pushing');
    // On its own it would fit its deadline; it does not fit the promise made before it.
    expect(pushing.estimate).toMatchObject({ deliveries: PUSHING, delays: 1, fitsDeadline: false });
    expect(pushing.estimate.seconds).toBeLessThan(pushing.estimate.deadlineSeconds);

    const smallAt = Date.now();
    const small = await send('small');
    expect(small.estimate).toMatchObject({ deliveries: SMALL, delays: 0, fitsDeadline: true });
    const promisedBefore = acceptedOf('promised', PROMISED, start);
    // Earliest deadline first: the small send, due first, goes ahead of the promised one.
    await until(() => acceptedOf('small', SMALL, smallAt) === SMALL, 15_000, 'the small send to be delivered');
    // The best-effort send waits behind the promised one, which goes on meanwhile.
    await new Promise((r) => setTimeout(r, 4_000));
    const promisedAfter = acceptedOf('promised', PROMISED, start);
    console.info(`admission: promised send ${promisedBefore} -> ${promisedAfter} accepted; best-effort send ${acceptedOf('pushing', PUSHING, start)} accepted`);
    expect(acceptedOf('pushing', PUSHING, start)).toBe(0);
    expect(promisedAfter - promisedBefore).toBeGreaterThanOrEqual(RATE * 2);
    // The promise shows in the read model too: the pushing send is recorded as not fitting.
    const recorded = (await h.ok<any>(keys.pushing, `{ notification(notificationId: "${pushing.notification.notificationId}") { estimate { delays fitsDeadline } } }`)).notification;
    expect(recorded.estimate).toEqual({ delays: 1, fitsDeadline: false });
  }, 120_000);
});
