import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#schema/events';
import type { EventStore } from '#platform/event-store/port';
import { CheckpointConflictError, type Doc, type ReadStore } from '#platform/read-store/port';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import { writeHistory, type Sim } from './history.test-support';
import { allReadModels, audienceReadModels } from './index';
import { checkpointName, readModel, type ReadModel } from './read-model';
import { rebuild, startProjections, type ProjectionDeps } from './runner';
import { getUser, listUsers } from './users/queries';
import { getGroup, listGroups } from './groups/queries';
import { listNotifications } from './notifications/queries';
import { listTimeline } from './timeline/queries';
import { getTenant, listTenants } from './tenants/queries';
import { sealed } from './read-model.test-support';
import { faultyEventStore } from '#platform/testing/faulty';
import { Health } from '#platform/health';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'projections-'));
const closers: (() => Promise<void>)[] = [];
let files = 0;
const openEventStore = (file = `events-${++files}.db`): EventStore => {
  const store = openSqliteEventStore({ path: path.join(dir, file) });
  closers.push(() => store.close());
  return store;
};
const openReadStore = (file = `read-${++files}.db`): ReadStore => {
  const store = openSqliteReadStore({ path: path.join(dir, file) });
  closers.push(() => store.close());
  return store;
};
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cleanups: (() => Promise<void>)[] = [];
const track = <T extends { stop(): Promise<void> }>(running: T): T => {
  cleanups.push(() => running.stop());
  return running;
};
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const drain = async <D>(next: (after: string | null) => Promise<{ items: readonly D[]; next: string | null }>): Promise<D[]> => {
  const all: D[] = [];
  for (let after: string | null = null; ; ) {
    const page = await next(after);
    all.push(...page.items);
    if (page.next === null) return all;
    after = page.next;
  }
};

/** Every document of every read model, read through the query helpers. */
const dump = async (store: ReadStore, sim: Sim): Promise<Record<string, readonly Doc[]>> => {
  const tenantIds = [...sim.tenants.keys()];
  const perTenant = async <D extends Doc>(list: (tenantId: string, after: string | null) => Promise<{ items: readonly D[]; next: string | null }>) =>
    (await Promise.all(tenantIds.map((t) => drain((after) => list(t, after))))).flat();
  return {
    tenants: await drain((after) => listTenants(store, { first: 3, after })),
    users: await perTenant((t, after) => listUsers(store, t, { first: 7, after })),
    groups: await perTenant((t, after) => listGroups(store, t, { first: 2, after })),
    notifications: await perTenant((t, after) => listNotifications(store, t, { first: 5, after })),
    timeline: (
      await Promise.all(
        [...sim.users.values()].map((u) => drain((after) => listTimeline(store, u.tenantId, u.userId, { first: 4, after }))),
      )
    ).flat(),
  };
};

const checkpoints = async (store: ReadStore) =>
  Object.fromEntries(await Promise.all(allReadModels.map(async (m) => [m.name, await store.checkpoint(checkpointName(m))])));

const run = (deps: Omit<ProjectionDeps, 'models'> & Partial<Pick<ProjectionDeps, 'models'>>) =>
  startProjections({ models: allReadModels, ...deps }).then(track);

describe('projections runner on the embedded adapters', () => {
  let eventStore: EventStore;
  let sim: Sim;
  let reference: Record<string, readonly Doc[]>;

  beforeAll(async () => {
    eventStore = openEventStore();
    sim = await writeHistory(eventStore, { seed: 7, usersPerTenant: 25, operations: 400 });
    const readStore = openReadStore();
    const running = await startProjections({ eventStore, readStore, models: allReadModels, batchSize: 50 });
    await running.caughtUp(sim.head);
    await running.stop();
    reference = await dump(readStore, sim);
  });

  /** Positions of the log's events that some read model handles. */
  const handledPositions = async (): Promise<number[]> => {
    const types = new Set<string>(allReadModels.flatMap((m) => m.handles));
    return (await eventStore.readAll({ after: 0, maxCount: 1_000_000 })).filter((e) => types.has(e.type)).map((e) => e.position);
  };

  it("reads only its models' types, and its stored checkpoints still reach the head past the others", async () => {
    const log = openEventStore();
    const own = await writeHistory(log, { seed: 7, usersPerTenant: 5, operations: 50 });
    // The log ends with events none of the audience's models handles.
    const metadata = { tenantId: 'operator', actor: 'system', requestId: 'tail', at: new Date().toISOString() };
    const { lastPosition: head } = await log.appendToStream('operator', [1, 2, 3].map((i) => ({ type: 'OperatorKeyIssued' as const, data: { keyId: `tail-${i}`, secretHash: 'bb'.repeat(32) }, metadata })));
    expect(head).toBe(own.head + 3);
    const readStore = openReadStore();
    const read: RecordedEvent[] = [];
    const running = await startProjections({ eventStore: log, readStore, models: audienceReadModels, batchSize: 50, onCommitted: (events) => read.push(...events) });
    await running.caughtUp(head);
    const types = new Set<string>(audienceReadModels.flatMap((m) => m.handles));
    expect(types.has('OperatorKeyIssued')).toBe(false);
    expect(read.length).toBeGreaterThan(0);
    expect(read.filter((e) => !types.has(e.type))).toEqual([]);
    // Another process waiting on the stored checkpoints sees the head too.
    for (const m of audienceReadModels) expect(await readStore.checkpoint(checkpointName(m))).toBe(head);
    await running.stop();
  });

  it('builds every read model from a realistic history', async () => {
    const readStore = openReadStore();
    const committed: number[] = [];
    const running = await run({ eventStore, readStore, batchSize: 50, onCommitted: (events) => committed.push(...events.map((e) => e.position)) });
    await running.caughtUp(sim.head);
    // Only the events some model handles are read (the subscription filters by type), each once, in order.
    expect(committed).toEqual(await handledPositions());
    expect(committed.length).toBeLessThan(sim.head);
    expect(await checkpoints(readStore)).toEqual(Object.fromEntries(allReadModels.map((m) => [m.name, sim.head])));

    const tenants = await drain((after) => listTenants(readStore, { first: 10, after }));
    expect(tenants.map((t) => [t.tenantId, t.deliveryDeadlineMinutes])).toEqual([['acme', 15], ['globex', 25]]);
    const acme = await getTenant(readStore, 'acme');
    expect(acme?.keys.map((k) => [k.keyId, k.revoked])).toEqual([['acme-k1', true], ['acme-k2', false]]);
    expect(JSON.stringify(tenants)).not.toContain('bbbb');

    for (const u of sim.users.values()) {
      const doc = await getUser(readStore, u.tenantId, u.userId);
      expect(doc, `${u.tenantId}:${u.userId}`).toMatchObject({
        id: `${u.tenantId}:${u.userId}`,
        name: sealed(u.name),
        devices: u.devices,
        consent: u.consent,
        optIn: u.optIn,
        registeredAt: u.registeredAt,
        revision: u.revision,
      });
      expect([...doc!.groupIds].sort()).toEqual([...u.groupIds].sort());
      const timeline = await drain((after) => listTimeline(readStore, u.tenantId, u.userId, { first: 50, after }));
      expect(timeline.length, `timeline of ${u.userId}`).toBe(u.steps);
      expect(timeline.map((e) => e.position)).toEqual([...timeline.map((e) => e.position)].sort((a, b) => a - b));
    }

    for (const g of sim.groups.values()) {
      const members = [...sim.users.values()].filter((u) => u.tenantId === g.tenantId && u.groupIds.includes(g.groupId));
      expect(await getGroup(readStore, g.tenantId, g.groupId)).toMatchObject({ name: g.name, memberCount: members.length });
      const listed = await drain((after) => listUsers(readStore, g.tenantId, { groupId: g.groupId, first: 4, after }));
      expect(listed.map((u) => u.userId).sort()).toEqual(members.map((u) => u.userId).sort());
    }
    expect((await listGroups(readStore, 'globex', { first: 10 })).items.map((g) => g.groupId)).toEqual(['beta', 'vip']);

    for (const tenantId of sim.tenants.keys()) {
      const listed = await drain((after) => listNotifications(readStore, tenantId, { first: 3, after }));
      const expected = sim.notifications.filter((n) => n.tenantId === tenantId).sort((a, b) => (a.requestedAt < b.requestedAt ? 1 : -1));
      expect(listed.map((n) => n.notificationId)).toEqual(expected.map((n) => n.notificationId));
      expect(listed.every((n) => n.status === 'REQUESTED' && n.progress.total === 0)).toBe(true);
    }

    const timeline = JSON.stringify((await dump(readStore, sim)).timeline);
    for (const personal of ['pd1.', 'Person', 'address-of']) expect(timeline).not.toContain(personal);
  });

  it('gives the same collections when the log is projected again from position 0', async () => {
    for (const batchSize of [1000, 7]) {
      const readStore = openReadStore();
      const running = await run({ eventStore, readStore, batchSize });
      await running.caughtUp(sim.head);
      expect(await dump(readStore, sim)).toEqual(reference);
    }
  });

  it('resumes after a stop between batches without applying anything twice', async () => {
    const readStore = openReadStore();
    let commits = 0;
    let fifth!: () => void;
    const fifthCommitted = new Promise<void>((resolve) => (fifth = resolve));
    const first = await run({ eventStore, readStore, batchSize: 13, onCommitted: () => ++commits === 5 && fifth() });
    await fifthCommitted;
    await first.stop();
    const stoppedAt = Object.values(await checkpoints(readStore));
    expect(stoppedAt.every((c) => typeof c === 'number' && c >= 65 && c < sim.head)).toBe(true);

    const second = await run({ eventStore, readStore, batchSize: 13 });
    await second.caughtUp(sim.head);
    expect(await dump(readStore, sim)).toEqual(reference);
  });

  it('recovers from a crash inside a commit: the batch is applied whole or not at all', async () => {
    const readStore = openReadStore();
    let commits = 0;
    const crashing: ReadStore = {
      ...readStore,
      commit: async (batch) => {
        if (++commits === 4) throw new Error('disk went away');
        return readStore.commit(batch);
      },
    };
    const errors: unknown[] = [];
    const first = await run({ eventStore, readStore: crashing, batchSize: 11, onError: (e) => errors.push(e), restartBackoff: { baseMs: 5_000, maxMs: 5_000 } });
    // Until the restart, nothing after the failed batch is applied...
    await new Promise((r) => setTimeout(r, 300));
    expect(errors).toHaveLength(1);
    expect(first.healthy).toBe(false);
    // Three batches of 11 handled events were committed: the checkpoints stand at the 33rd.
    const third = (await handledPositions())[32]!;
    expect(await checkpoints(readStore)).toEqual(Object.fromEntries(allReadModels.map((m) => [m.name, third])));
    await first.stop();

    const second = await run({ eventStore, readStore, batchSize: 11 });
    await second.caughtUp(sim.head);
    expect(await dump(readStore, sim)).toEqual(reference);
  });

  it('restarts by itself after a store error, from its stored checkpoints, and reports unhealthy meanwhile', async () => {
    const readStore = openReadStore();
    const flaky = faultyEventStore(eventStore);
    const errors: unknown[] = [];
    const health = new Health();
    const component = health.register('projections');
    flaky.faults.fail('readAll', 3);
    const runner = await run({ eventStore: flaky, readStore, batchSize: 11, onError: (e) => errors.push(e), health: component, restartBackoff: { baseMs: 20, maxMs: 50 } });
    // Fails, restarts (failing again twice), then catches up without anyone asking it to.
    await runner.caughtUp(sim.head);
    expect(errors.length).toBe(3);
    expect(await dump(readStore, sim)).toEqual(reference);
    const deadline = Date.now() + 5_000;
    while (!health.healthy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(health.report().components['projections']).toMatchObject({ healthy: true, failures: 3 });
  });

  it('lets two runners share the stores without applying an event twice', async () => {
    // Each runner has its own connection to the read store, as two processes would; they share
    // the log's connection only so that both hear of each append at once and race for it.
    const log = openEventStore('shared-events.db');
    const readStore = openReadStore('shared-read.db');
    const otherReadStore = openReadStore('shared-read.db');
    let conflicts = 0;
    let turn = 0;
    // Commits land after a varying delay, so either runner may lose a race and redo its batch.
    const jittered = (store: ReadStore): ReadStore => ({
      ...store,
      commit: async (batch) => {
        await new Promise((r) => setTimeout(r, turn++ % 3));
        try {
          return await store.commit(batch);
        } catch (e) {
          if (e instanceof CheckpointConflictError) conflicts += 1;
          throw e;
        }
      },
    });
    const a = await run({ eventStore: log, readStore: jittered(readStore), batchSize: 9 });
    const b = await run({ eventStore: log, readStore: jittered(otherReadStore), batchSize: 9 });
    const live = await writeHistory(log, { seed: 7, usersPerTenant: 25, operations: 400 });
    await Promise.all([a.caughtUp(live.head), b.caughtUp(live.head)]);
    expect(conflicts).toBeGreaterThan(0);
    expect(await dump(readStore, live)).toEqual(reference);
  });

  it('rebuilds chosen models while a runner is live', async () => {
    const readStore = openReadStore();
    const running = await run({ eventStore, readStore, batchSize: 40 });
    await running.caughtUp(sim.head);
    await rebuild({ readStore, models: allReadModels, modelNames: ['groups', 'timeline'], pageSize: 16 });
    const reset = await checkpoints(readStore);
    expect([reset['groups'], reset['timeline'], reset['users']]).toEqual([0, 0, sim.head]);
    await running.caughtUp(sim.head);
    expect(await dump(readStore, sim)).toEqual(reference);
  });

  it('rebuilds while events are being appended and projected', async () => {
    const log = openEventStore();
    const readStore = openReadStore();
    const running = await run({ eventStore: log, readStore, batchSize: 25 });
    const writing = writeHistory(log, { seed: 7, usersPerTenant: 25, operations: 400, paced: true });
    while ((await log.headPosition()) < 200) await new Promise((r) => setImmediate(r));
    await rebuild({ readStore, models: allReadModels, modelNames: ['users', 'groups'], pageSize: 10 });
    const headAfterRebuild = await log.headPosition();
    const live = await writing;
    expect(headAfterRebuild).toBeLessThan(live.head);
    await running.caughtUp(live.head);
    expect(await dump(readStore, live)).toEqual(reference);
  });

  it('rebuilds while stopped, and a restarted runner replays the models from 0', async () => {
    const readStore = openReadStore();
    const first = await run({ eventStore, readStore, batchSize: 100 });
    await first.caughtUp(sim.head);
    await first.stop();
    await rebuild({ readStore, models: allReadModels, modelNames: allReadModels.map((m) => m.name) });
    expect((await dump(readStore, sim)).users).toEqual([]);
    const second = await run({ eventStore, readStore, batchSize: 100 });
    await second.caughtUp(sim.head);
    expect(await dump(readStore, sim)).toEqual(reference);
  });

  it('applies purge filters before evolve, within and across batches', async () => {
    // Two toy models erase a user's documents when the user opts out, as erasure events will.
    type Entry = Readonly<{ id: string; tenantId: string; userId: string; position: number }>;
    type Counter = Readonly<{ id: string; tenantId: string; userId: string; count: number }>;
    const userOf = (e: RecordedEvent) => (e.data as { userId: string }).userId;
    const purge = (e: RecordedEvent) =>
      e.type === 'OptInChanged' && !e.data.optIn ? { tenantId: e.metadata.tenantId, userId: e.data.userId } : null;
    const handles = ['UserRegistered', 'UserRenamed', 'OptInChanged'] as const;
    const entries: ReadModel<Entry> = {
      name: 'entries',
      collection: { name: 'entries', indexes: [['tenantId', 'userId']] },
      handles,
      documentIds: (e) => [`${e.metadata.tenantId}:${userOf(e)}:${e.position}`],
      evolve: (doc, e, id) => doc ?? { id, tenantId: e.metadata.tenantId, userId: userOf(e), position: e.position },
      purge,
    };
    const counters: ReadModel<Counter> = {
      name: 'counters',
      collection: { name: 'counters', indexes: [['tenantId', 'userId']] },
      handles,
      documentIds: (e) => [`${e.metadata.tenantId}:${userOf(e)}`],
      evolve: (doc, e, id) => ({ id, tenantId: e.metadata.tenantId, userId: userOf(e), count: (doc?.count ?? 0) + 1 }),
      purge,
    };
    const log = openEventStore();
    const meta = (n: number) => ({ tenantId: 'acme', actor: 'k', requestId: `r${n}`, at: new Date(n * 1000).toISOString() });
    const user = (userId: string) => ({
      type: 'UserRegistered' as const,
      data: { userId, name: sealed(userId), devices: [], consent: { start: 'a', end: 'b' }, optIn: true, groupIds: [] },
    });
    await log.appendToStream('user-acme.u1', [
      { ...user('u1'), metadata: meta(1) },
      { type: 'UserRenamed', data: { userId: 'u1', name: sealed('x') }, metadata: meta(2) },
      { type: 'OptInChanged', data: { userId: 'u1', optIn: false }, metadata: meta(3) },
      { type: 'UserRenamed', data: { userId: 'u1', name: sealed('y') }, metadata: meta(4) },
    ]);
    await log.appendToStream('user-acme.u2', [{ ...user('u2'), metadata: meta(5) }]);
    const models = [readModel(entries), readModel(counters)];
    for (const batchSize of [1, 2, 3, 100]) {
      const readStore = openReadStore();
      const running = await run({ eventStore: log, readStore, batchSize, models });
      await running.caughtUp(5);
      const all = async (collection: string, userId: string) =>
        (await readStore.find<Doc>(collection, { tenantId: 'acme', userId }, { limit: 100 })).items;
      expect((await all('entries', 'u1')).map((d) => d['position']), `batch ${batchSize}`).toEqual([3, 4]);
      expect((await all('entries', 'u2')).map((d) => d['position'])).toEqual([5]);
      expect((await all('counters', 'u1')).map((d) => d['count']), `batch ${batchSize}`).toEqual([2]);
      expect((await all('counters', 'u2')).map((d) => d['count'])).toEqual([1]);
    }
  });

  it('refuses two models with one name', async () => {
    await expect(
      startProjections({ eventStore, readStore: openReadStore(), models: [allReadModels[0]!, allReadModels[0]!] }),
    ).rejects.toThrow(/share the name/);
  });
});
