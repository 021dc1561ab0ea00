import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { AnyEvent, DeviceKind } from '#schema/events';
import { streams } from '#schema/streams';
import { manualClock } from '#platform/clock';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import type { EventStore } from '#platform/event-store/port';
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import { openPostgresReadStore } from '#platform/read-store/postgres';
import { openMongoReadStore } from '#platform/read-store/mongodb';
import type { ReadStore } from '#platform/read-store/port';
import { allReadModels } from '#projections/index';
import { rebuild, startProjections, type RunningProjections } from '#projections/runner';
import { NOTIFICATIONS, type NotificationDocument } from '#projections/notifications/document';
import { TIMELINE, type TimelineEntryDocument } from '#projections/timeline/document';
import { DeliveryHistorySweeper } from './history';

const T = Date.parse('2026-06-01T12:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();
const logger = pino({ level: 'silent' });

type Recipient = Readonly<{ userId: string; deviceId: string; channel: DeviceKind }>;

/** A fresh read store on each adapter whose server is there, and how to throw it away. */
type Opened = Readonly<{ store: ReadStore; drop: () => Promise<void> }>;
const { POSTGRES_URL, MONGODB_URL } = process.env;
if (!POSTGRES_URL || !MONGODB_URL) console.warn('delivery history sweep: PostgreSQL and MongoDB runs need POSTGRES_URL and MONGODB_URL (npm run servers:up)');
const adapters: readonly (readonly [string, ((dir: string) => Promise<Opened>) | null])[] = [
  ['sqlite', async (dir) => ({ store: openSqliteReadStore({ path: path.join(dir, 'read.db') }), drop: async () => undefined })],
  ['postgres', POSTGRES_URL ? async () => {
    const schema = `hist_${randomBytes(5).toString('hex')}`;
    return {
      store: await openPostgresReadStore({ connectionString: POSTGRES_URL, schema }),
      drop: async () => {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      },
    };
  } : null],
  ['mongodb', MONGODB_URL ? async () => {
    const database = `hist_${randomBytes(5).toString('hex')}`;
    return {
      store: await openMongoReadStore({ url: MONGODB_URL, database }),
      drop: async () => {
        const client = await new MongoClient(MONGODB_URL).connect();
        await client.db(database).dropDatabase();
        await client.close();
      },
    };
  } : null],
];

const setupOn = async (open: (dir: string) => Promise<Opened>) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'history-'));
  const eventStore: EventStore = openSqliteEventStore({ path: path.join(dir, 'events.db') });
  const { store: readStore, drop } = await open(dir);
  const runner: RunningProjections = await startProjections({ eventStore, readStore, models: allReadModels });
  const clock = manualClock(new Date(T));

  const append = async (tenantId: string, stream: string, events: readonly AnyEvent[], at = clock.now().toISOString()) => {
    const r = await eventStore.appendToStream(stream, events.map((e) => ({ ...e, metadata: { tenantId, actor: 'system', requestId: 'test', at } })), { expectedRevision: 'any' });
    return r.lastPosition;
  };
  const tenant = async (tenantId: string, historyDays?: number) => {
    await append(tenantId, streams.tenant(tenantId), [
      { type: 'TenantRegistered', data: { tenantId, name: tenantId, deliveryDeadlineMinutes: 10 } },
      ...(historyDays ? [{ type: 'DeliveryHistoryChanged', data: { tenantId, deliveryHistoryDays: historyDays } } as const] : []),
    ]);
  };
  const user = (tenantId: string, userId: string, devices: readonly Recipient[]) =>
    append(tenantId, streams.user(tenantId, userId), [{
      type: 'UserRegistered',
      data: { userId, name: 'pd1.x' as never, devices: devices.map((d) => ({ deviceId: d.deviceId, kind: d.channel, address: 'pd1.y' as never })), consent: { start: iso(T - DAY), end: iso(T + 1000 * DAY) }, optIn: true, groupIds: [] },
    }]);
  /** A send to `to`, requested at `at`: planned, one attempt and one outcome each, completed unless told. */
  const send = async (tenantId: string, notificationId: string, at: number, to: readonly Recipient[], options: Readonly<{ complete?: boolean }> = {}) => {
    const requestedAt = iso(at);
    const userIds = [...new Set(to.map((r) => r.userId))];
    const stream = streams.notification(tenantId, notificationId);
    const requestedPosition = await append(tenantId, stream, [{
      type: 'NotificationRequested',
      data: { notificationId, text: 'hello', target: { kind: 'users', userIds }, idempotencyKey: null, requestHash: 'h', requestedAt, deadline: iso(at + 10 * 60_000) },
    }], requestedAt);
    await append(tenantId, stream, [{ type: 'NotificationPlanned', data: { notificationId, recipients: userIds.length, deliveries: to.length, byChannel: {}, skipped: {} } }], requestedAt);
    const refs = to.map((r, i) => ({ ...r, deliveryId: `${notificationId}-${i}` }));
    const batch = { notificationId, requestedPosition, requestedAt };
    const failed = refs.filter((_, i) => i % 3 === 2);
    const succeeded = refs.filter((_, i) => i % 3 !== 2);
    await append(tenantId, streams.deliveries(tenantId, notificationId, 0), [
      { type: 'DeliveryAttempted', data: { ...batch, deliveries: refs.map((r) => ({ ...r, provider: 'sandbox', latencyMs: 5, outcome: 'accepted' })) } },
      { type: 'DeliverySucceeded', data: { ...batch, deliveries: succeeded.map((r) => ({ ...r, provider: 'sandbox' })) } },
      ...(failed.length ? [{ type: 'DeliveryFailed', data: { ...batch, deliveries: failed.map((r) => ({ ...r, provider: 'sandbox', reason: 'rejected' })) } } as const] : []),
    ], requestedAt);
    if (options.complete !== false) {
      await append(tenantId, stream, [{ type: 'NotificationCompleted', data: { notificationId, succeeded: succeeded.length, failed: failed.length, expired: 0, reachedUsers: new Set(succeeded.map((r) => r.userId)).size } }], requestedAt);
    }
  };
  const settle = async () => runner.caughtUp(await eventStore.headPosition());
  const entries = async (tenantId: string, userId: string): Promise<TimelineEntryDocument[]> => {
    const out: TimelineEntryDocument[] = [];
    let after: string | undefined;
    do {
      const page = await readStore.find<TimelineEntryDocument>(TIMELINE, { tenantId, userId }, { limit: 100, ...(after ? { after } : {}) });
      out.push(...page.items);
      after = page.next ?? undefined;
    } while (after);
    return out;
  };
  const deliveriesOf = async (tenantId: string, userId: string) => (await entries(tenantId, userId)).filter((e) => e.type === 'Delivery').map((e) => `${e.notificationId}/${e.deviceId}`);
  const notifications = async () => (await readStore.find<NotificationDocument>(NOTIFICATIONS, {}, { limit: 100 })).items;
  const close = async () => {
    await runner.stop();
    await Promise.all([eventStore.close(), readStore.close()]);
    await drop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { eventStore, readStore, runner, clock, append, tenant, user, send, settle, entries, deliveriesOf, notifications, close };
};

const devices = (userId: string, n: number): Recipient[] =>
  Array.from({ length: n }, (_, i) => ({ userId, deviceId: `${userId}-d${i}`, channel: (['email', 'sms', 'ios'] as const)[i % 3]! }));

const available = adapters.flatMap(([name, open]) => (open ? [[name, open] as const] : []));

describe.each(available)('delivery history sweep (injected clock), read store %s', (_name, open) => {
  const setup = () => setupOn(open);
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  it('removes the delivery steps past each tenant history, keeps recent ones, the counts, the users entries and the log', async () => {
    const s = await setup();
    closers.push(s.close);
    await s.tenant('acme', 2);
    await s.tenant('globex');
    const [u1, u2, g1] = [devices('u1', 2), devices('u2', 1), devices('g1', 2)];
    await s.user('acme', 'u1', u1);
    await s.user('acme', 'u2', u2);
    await s.user('globex', 'g1', g1);
    await s.send('acme', 'old', T, [...u1, ...u2]);
    await s.send('acme', 'running', T, u1, { complete: false });
    await s.send('acme', 'recent', T + 36 * HOUR, [...u1, ...u2]);
    await s.send('globex', 'old', T, g1);
    await s.settle();
    const counts = await s.notifications();
    expect(counts.filter((n) => n.status === 'COMPLETED')).toHaveLength(3);
    const before = { u1: await s.entries('acme', 'u1'), u2: await s.entries('acme', 'u2'), g1: await s.entries('globex', 'g1') };
    expect(await s.deliveriesOf('acme', 'u1')).toEqual(['old/u1-d0', 'old/u1-d1', 'running/u1-d0', 'running/u1-d1', 'recent/u1-d0', 'recent/u1-d1']);
    const log = await s.eventStore.readAll({ after: 0, maxCount: 10_000 });
    // Page size 1: every page is a commit of its own, and paging goes past what stays.
    const sweeper = new DeliveryHistorySweeper({ readStore: s.readStore, clock: s.clock, logger, pageSize: 1 });

    s.clock.set(new Date(T + 2 * DAY - 1));
    expect(await sweeper.sweep()).toBe(0);

    s.clock.set(new Date(T + 2 * DAY + 1));
    expect(await sweeper.sweep()).toBe(3);
    // Steps of the old send are gone; the running send's stay (its reach is counted from them), and so do the recent ones.
    expect(await s.deliveriesOf('acme', 'u1')).toEqual(['running/u1-d0', 'running/u1-d1', 'recent/u1-d0', 'recent/u1-d1']);
    expect(await s.deliveriesOf('acme', 'u2')).toEqual(['recent/u2-d0']);
    expect(await s.entries('globex', 'g1')).toEqual(before.g1);
    // Everything that is not a delivery stays as it was: registrations, requests.
    const notDeliveries = (list: readonly TimelineEntryDocument[]) => list.filter((e) => e.type !== 'Delivery');
    expect(notDeliveries(await s.entries('acme', 'u1'))).toEqual(notDeliveries(before.u1));
    expect(notDeliveries(await s.entries('acme', 'u2'))).toEqual(notDeliveries(before.u2));
    expect(notDeliveries(before.u1).map((e) => e.type)).toEqual(['UserRegistered', 'NotificationRequested', 'NotificationRequested', 'NotificationRequested']);
    // The counts per notification, and the log, are untouched.
    expect(await s.notifications()).toEqual(counts);
    expect(await s.eventStore.readAll({ after: 0, maxCount: 10_000 })).toEqual(log);
    // Idempotent.
    expect(await sweeper.sweep()).toBe(0);

    // Past globex's 90 days (the default) and acme's recent send's 2 days.
    s.clock.set(new Date(T + 90 * DAY + 1));
    expect(await sweeper.sweep()).toBe(5);
    expect(await s.deliveriesOf('globex', 'g1')).toEqual([]);
    expect(await s.deliveriesOf('acme', 'u1')).toEqual(['running/u1-d0', 'running/u1-d1']);
    expect(await s.deliveriesOf('acme', 'u2')).toEqual([]);
    expect(await s.notifications()).toEqual(counts);
  });

  it('sweeps again what a rebuild brings back, and leaves the users entries alone', async () => {
    const s = await setup();
    closers.push(s.close);
    await s.tenant('acme', 1);
    const u1 = devices('u1', 3);
    await s.user('acme', 'u1', u1);
    await s.send('acme', 'n1', T, u1);
    await s.settle();
    const sweeper = new DeliveryHistorySweeper({ readStore: s.readStore, clock: s.clock, logger });
    s.clock.set(new Date(T + 2 * DAY));
    expect(await sweeper.sweep()).toBe(3);
    expect(await s.deliveriesOf('acme', 'u1')).toEqual([]);
    await rebuild({ readStore: s.readStore, models: allReadModels, modelNames: ['timeline'] });
    await s.settle();
    expect(await s.deliveriesOf('acme', 'u1')).toHaveLength(3);
    expect(await sweeper.sweep()).toBe(3);
    expect((await s.entries('acme', 'u1')).map((e) => e.type)).toEqual(['UserRegistered', 'NotificationRequested']);
  });

  it('sweeps page by page while the projection writes deliveries of a new send, losing none of them', async () => {
    const s = await setup();
    closers.push(s.close);
    await s.tenant('acme', 1);
    const many = Array.from({ length: 40 }, (_, i) => devices(`m${String(i).padStart(2, '0')}`, 5)).flat();
    for (const id of new Set(many.map((r) => r.userId))) await s.user('acme', id, many.filter((r) => r.userId === id));
    await s.send('acme', 'old', T, many);
    await s.settle();
    s.clock.set(new Date(T + 3 * DAY));
    const sweeper = new DeliveryHistorySweeper({ readStore: s.readStore, clock: s.clock, logger, pageSize: 7 });
    // The runner folds the new send's events while the sweep deletes the old one's.
    const [removed] = await Promise.all([sweeper.sweep(), s.send('acme', 'new', T + 3 * DAY, many).then(s.settle)]);
    expect(removed).toBe(200);
    const left = (await Promise.all([...new Set(many.map((r) => r.userId))].map((u) => s.deliveriesOf('acme', u)))).flat();
    expect(left.sort()).toEqual(many.map((r) => `new/${r.deviceId}`).sort());
    expect(await sweeper.sweep()).toBe(0);
  });
});
