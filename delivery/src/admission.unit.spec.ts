import { describe, expect, it } from 'vitest';
import type { ReadStore } from '#platform/read-store/port';
import { initialProgress, type NotificationDocument } from '#projections/notifications/document';
import type { UserDocument } from '#projections/users/document';
import { cachedSendsUnderWay, estimateAdmission, type SendsUnderWay } from './admission';
import { rankOf } from './job';

describe('cachedSendsUnderWay', () => {
  it('reads the sends under way at most once per period, and again after a failed read', async () => {
    let t = 0;
    let reads = 0;
    let fail = false;
    const source: SendsUnderWay = async () => {
      reads++;
      if (fail) throw new Error('store down');
      return [];
    };
    const cached = cachedSendsUnderWay(source, 100, () => t);
    await Promise.all(Array.from({ length: 50 }, () => cached()));
    expect(reads).toBe(1);
    t = 99;
    await cached();
    expect(reads).toBe(1);
    t = 100;
    fail = true;
    await expect(cached()).rejects.toThrow('store down');
    expect(reads).toBe(2);
    fail = false;
    await cached();
    expect(reads).toBe(3);
  });
});

describe('estimateAdmission: an admission is a promise to the sends admitted before', () => {
  const now = new Date('2026-12-05T00:00:00.000Z');
  const inMinutes = (m: number) => new Date(now.getTime() + m * 60_000).toISOString();
  // One user with one SMS device: the estimate's sample.
  const user = {
    id: 't1:u1', tenantId: 't1', userId: 'u1', name: 'sealed', optIn: true, groupIds: [], registeredAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', revision: 1, shard: 0,
    consent: { start: '2026-01-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' },
    devices: [{ deviceId: 'd1', kind: 'sms', address: 'sealed' }],
  } as unknown as UserDocument;
  const readStore = { getMany: async () => [user] } as unknown as ReadStore;
  /** A send under way of another tenant: `left` deliveries, none done yet. */
  const underWay = (tenantId: string, minutes: number, left: number, fits = true): NotificationDocument =>
    ({
      tenantId,
      deadline: inMinutes(minutes),
      progress: { ...initialProgress, total: left },
      admission: { recipients: left, deliveries: left, byChannel: [], seconds: 0, deadlineSeconds: minutes * 60, fitsDeadline: fits },
    }) as unknown as NotificationDocument;
  // 100 deliveries/s for the whole cluster; the tenant's SMS chain takes 1,000/s.
  const estimate = (sends: NotificationDocument[], recipients: number, minutes: number) =>
    estimateAdmission(readStore, () => 1_000, 100, 't1', { kind: 'users', userIds: Array.from({ length: recipients }, (_, i) => `u${i}`) }, minutes, now, Math.random, async () => sends);

  it('fits when the sends due after it keep their deadlines', async () => {
    // 30 min = 180,000 deliveries at 100/s; 100,000 are queued for then, 50 more do not matter.
    const e = await estimate([underWay('t2', 30, 100_000)], 50, 10);
    expect(e).toMatchObject({ deliveries: 50, ahead: 0, delays: 0, fitsDeadline: true });
  });

  it('does not fit when its deliveries would push an admitted send due later past its deadline', async () => {
    // The 30-minute send needs 179,990 of its 180,000 s-worth: 20 more ahead of it make it miss.
    const e = await estimate([underWay('t2', 30, 179_990)], 20, 10);
    expect(e).toMatchObject({ deliveries: 20, ahead: 0, delays: 1, fitsDeadline: false });
    expect(e.seconds).toBeLessThan(e.deadlineSeconds);
  });

  it('does not blame the newcomer for a send that would miss anyway', async () => {
    const e = await estimate([underWay('t2', 30, 200_000)], 20, 10);
    expect(e).toMatchObject({ delays: 0, fitsDeadline: true });
  });

  it('counts no best-effort send ahead of it, and protects none behind it', async () => {
    // A best-effort send due first is not ahead (the workers rank it last), nor one due later protected.
    const e = await estimate([underWay('t2', 5, 1_000_000, false), underWay('t3', 30, 179_990, false)], 20, 10);
    expect(e).toMatchObject({ ahead: 0, delays: 0, fitsDeadline: true });
    // The same sends admitted as fitting: one is ahead, the other pushed past its deadline.
    const f = await estimate([underWay('t2', 5, 1_000, true), underWay('t3', 30, 179_000, true)], 20, 10);
    expect(f).toMatchObject({ ahead: 1_000, delays: 1, fitsDeadline: false });
  });
});

describe('rankOf', () => {
  it('ranks by deadline, and a best-effort send after every send that fit', () => {
    const soon = rankOf({ deadline: '2026-12-05T00:10:00.000Z' });
    const later = rankOf({ deadline: '2026-12-06T00:00:00.000Z' });
    const bestEffortSoon = rankOf({ deadline: '2026-12-05T00:05:00.000Z', bestEffort: true });
    const bestEffortLater = rankOf({ deadline: '2026-12-05T00:20:00.000Z', bestEffort: true });
    expect(soon).toBeLessThan(later);
    expect(later).toBeLessThan(bestEffortSoon);
    expect(bestEffortSoon).toBeLessThan(bestEffortLater);
  });
});
