import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import { manualClock } from '#platform/clock';
import { expiryMetrics } from './metrics';
import { SCHEDULE, scheduleCollection, scheduleDocId } from './schedule';

const T = new Date('2026-11-24T10:00:00.000Z');

const valueOf = async (registry: Registry, series: string): Promise<number | undefined> => {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('expiry metrics', () => {
  it('backlog and the oldest unshredded age rise when consents end unshredded and fall when they are shredded', async () => {
    const readStore = openSqliteReadStore({ path: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'expiry-metrics-')), 'read.db') });
    await readStore.ensureCollections([scheduleCollection]);
    const clock = manualClock(T);
    const registry = new Registry();
    expiryMetrics(registry, { readStore, clock });
    const put = (userId: string, dueAt: Date) => ({ op: 'put' as const, collection: SCHEDULE, doc: { id: scheduleDocId('t', userId), tenantId: 't', userId, dueAt: dueAt.toISOString() } });
    // One consent ended 2 minutes ago, one 30 s ago, one ends tomorrow.
    await readStore.commit({ checkpoints: [], changes: [put('u1', new Date(T.getTime() - 120_000)), put('u2', new Date(T.getTime() - 30_000)), put('u3', new Date(T.getTime() + 86_400_000))] });
    expect(await valueOf(registry, 'notify_expiry_backlog')).toBe(2);
    expect(await valueOf(registry, 'notify_expiry_oldest_unshredded_seconds')).toBe(120);
    clock.advance(60_000);
    expect(await valueOf(registry, 'notify_expiry_oldest_unshredded_seconds')).toBe(180);
    await readStore.commit({ checkpoints: [], changes: [{ op: 'delete', collection: SCHEDULE, id: scheduleDocId('t', 'u1') }] });
    expect(await valueOf(registry, 'notify_expiry_backlog')).toBe(1);
    expect(await valueOf(registry, 'notify_expiry_oldest_unshredded_seconds')).toBe(90);
    await readStore.commit({ checkpoints: [], changes: [{ op: 'delete', collection: SCHEDULE, id: scheduleDocId('t', 'u2') }] });
    expect(await valueOf(registry, 'notify_expiry_backlog')).toBe(0);
    expect(await valueOf(registry, 'notify_expiry_oldest_unshredded_seconds')).toBe(0);
  });
});
