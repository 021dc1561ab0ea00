import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { openSqliteEventStore } from './event-store/sqlite';
import { openSqliteReadStore } from './read-store/sqlite';
import { openSqliteBus } from './bus/sqlite';
import type { NewEvent } from './event-store/port';
import { manualClock } from './clock';
import { busLagMetrics, logLagMetrics } from './metrics';

const T = new Date('2026-11-24T10:00:00.000Z');
const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'metrics-'));
const ev = (at: Date): NewEvent => ({ type: 'Something', data: {}, metadata: { tenantId: 't', actor: 'a', requestId: 'r', at: at.toISOString() } }) as NewEvent;

/** The value of one series in the registry's exposition, or undefined when it is absent. */
const valueOf = async (registry: Registry, series: string): Promise<number | undefined> => {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('scrape-time metrics read from the stores', () => {
  it('projection lag: positions and seconds behind the head move with the checkpoint', async () => {
    const d = dir();
    const eventStore = openSqliteEventStore({ path: path.join(d, 'events.db') });
    const readStore = openSqliteReadStore({ path: path.join(d, 'read.db') });
    const clock = manualClock(T);
    const registry = new Registry();
    logLagMetrics(registry, { eventStore, readStore, clock }, { name: 'notify_projection', label: 'read_model', what: 'read model' }, [{ label: 'users', checkpoint: 'projection:users' }]);
    const positions = 'notify_projection_lag_positions{read_model="users"}';
    const seconds = 'notify_projection_lag_seconds{read_model="users"}';
    expect(await valueOf(registry, positions)).toBe(0);

    // Five events the model has not consumed, the oldest decided 90 s ago.
    for (let i = 0; i < 5; i++) await eventStore.appendToStream(`s-${i}`, [ev(new Date(T.getTime() - 90_000 + i * 1000))], { expectedRevision: 'any' });
    expect(await valueOf(registry, positions)).toBe(5);
    expect(await valueOf(registry, seconds)).toBe(90);
    clock.advance(10_000);
    expect(await valueOf(registry, seconds)).toBe(100);

    // It consumes three: two behind, the oldest left 3 s younger.
    await readStore.commit({ checkpoints: [{ name: 'projection:users', expected: null, next: 3 }], changes: [] });
    expect(await valueOf(registry, positions)).toBe(2);
    expect(await valueOf(registry, seconds)).toBe(97);
    await readStore.commit({ checkpoints: [{ name: 'projection:users', expected: 3, next: 5 }], changes: [] });
    expect(await valueOf(registry, positions)).toBe(0);
    expect(await valueOf(registry, seconds)).toBe(0);
    await eventStore.close();
  });

  it('a store that does not answer costs the reading, counted, not the scrape', async () => {
    const d = dir();
    const eventStore = openSqliteEventStore({ path: path.join(d, 'events.db') });
    const readStore = openSqliteReadStore({ path: path.join(d, 'read.db') });
    const registry = new Registry();
    const broken = { ...eventStore, headPosition: () => Promise.reject(new Error('gone')) };
    logLagMetrics(registry, { eventStore: broken, readStore, clock: manualClock(T) }, { name: 'notify_planner', label: 'planner', what: 'planner' }, [{ label: 'slices', checkpoint: 'planner' }]);
    // The scrape answers (the failure shows from the next scrape on: counters are read alongside).
    expect(await valueOf(registry, 'notify_planner_lag_positions{planner="slices"}')).toBeUndefined();
    expect(await valueOf(registry, 'notify_metrics_collect_errors_total{collector="notify_planner"}')).toBeGreaterThanOrEqual(1);
    await eventStore.close();
  });

  it('bus consumer lag per partition moves with publishes and commits', async () => {
    const bus = openSqliteBus({ path: path.join(dir(), 'bus.db') });
    await bus.ensureTopic('jobs', 2);
    const registry = new Registry();
    busLagMetrics(registry, bus, [{ topic: 'jobs', group: 'workers' }]);
    const series = (p: number) => `notify_bus_consumer_lag{topic="jobs",group="workers",partition="${p}"}`;
    await bus.publish('jobs', [0, 0, 1].map((partition, i) => ({ partition, key: `k${i}`, value: {} })));
    expect(await valueOf(registry, series(0))).toBe(2);
    expect(await valueOf(registry, series(1))).toBe(1);
    const consumer = await bus.consume({ topic: 'jobs', group: 'workers', handler: async () => undefined });
    await consumer.commit(0, 1);
    expect(await valueOf(registry, series(0))).toBe(0);
    expect(await valueOf(registry, series(1))).toBe(1);
    await consumer.stop();
    await bus.close();
  });
});
