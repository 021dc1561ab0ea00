import { describe, expect, it } from 'vitest';
import type { ReadStore } from '#platform/read-store/port';
import { initialProgress, type NotificationDocument } from '#projections/notifications/document';
import type { UserDocument } from '#projections/users/document';
import { cachedPerKey, cachedSendsUnderWay, estimateAdmission, type SendsUnderWay } from './admission';
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
    // Past the period: answered with what is known, a read starts behind it.
    t = 100;
    fail = true;
    await cached();
    expect(reads).toBe(2);
    await new Promise((r) => setTimeout(r, 0));
    // The failed read kept nothing: the next call reads again.
    fail = false;
    await cached();
    expect(reads).toBe(3);
  });

  it('answers from the last list while a fresher one is read, and uses the fresher one once read', async () => {
    let t = 0;
    const lists: NotificationDocument[][] = [[], [{ notificationId: 'n1' } as NotificationDocument]];
    let release: (() => void) | null = null;
    let reads = 0;
    const source: SendsUnderWay = () => {
      const list = lists[reads++]!;
      // The second read is slow: the store is busy.
      return reads === 1 ? Promise.resolve(list) : new Promise((resolve) => (release = () => resolve(list)));
    };
    const cached = cachedSendsUnderWay(source, 100, () => t);
    expect(await cached()).toEqual([]);
    t = 150;
    // Not held up by the slow read, and only one read runs for many calls.
    expect(await Promise.all([cached(), cached(), cached()])).toEqual([[], [], []]);
    expect(reads).toBe(2);
    release!();
    await new Promise((r) => setTimeout(r, 0));
    expect((await cached()).map((n) => n.notificationId)).toEqual(['n1']);
    expect(reads).toBe(2);
  });

  it('waits for a fresh list when the one it knows is older than two periods', async () => {
    let t = 0;
    let reads = 0;
    const source: SendsUnderWay = async () => [{ notificationId: `n${++reads}` } as NotificationDocument];
    const cached = cachedSendsUnderWay(source, 100, () => t);
    await cached();
    // A send after a quiet while is estimated against the sends accepted meanwhile, not the old list.
    t = 200;
    expect((await cached()).map((n) => n.notificationId)).toEqual(['n2']);
    t = 399;
    expect((await cached()).map((n) => n.notificationId)).toEqual(['n2']);
  });

  it('reads a list that takes long to read no more than a tenth of the time', async () => {
    let t = 0;
    let reads = 0;
    // Each read takes 50 ms of the clock.
    const source: SendsUnderWay = async () => {
      reads++;
      t += 50;
      return [];
    };
    const cached = cachedSendsUnderWay(source, 100, () => t);
    await cached();
    t = 400;
    await cached();
    expect(reads).toBe(1);
    t = 500;
    await cached();
    expect(reads).toBe(2);
  });
});

describe('cachedPerKey', () => {
  it('reads each key at most once per period, and again after a failed read', async () => {
    let t = 0;
    const reads: string[] = [];
    let fail = false;
    const cached = cachedPerKey(async (key: string) => {
      reads.push(key);
      if (fail) throw new Error('store down');
      return key.length;
    }, 1_000, () => t);
    expect(await Promise.all([cached('acme'), cached('acme'), cached('platform')])).toEqual([4, 4, 8]);
    t = 999;
    await cached('acme');
    expect(reads).toEqual(['acme', 'platform']);
    t = 1_000;
    fail = true;
    await expect(cached('acme')).rejects.toThrow('store down');
    fail = false;
    expect(await cached('acme')).toBe(4);
    expect(reads).toEqual(['acme', 'platform', 'acme', 'acme']);
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
