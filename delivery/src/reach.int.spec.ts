import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import type { NewEvent } from '#platform/event-store/port';
import { streams } from '#schema/streams';
import { partitionOf } from '#schema/sharding';
import { countReachedUsers, passOf } from './reach';

const meta = { tenantId: 't', actor: 'system', requestId: 'r', at: '2026-12-05T10:00:00.000Z' };
const batch = (type: 'DeliverySucceeded' | 'DeliveryFailed', users: readonly string[], device: string): NewEvent =>
  ({
    type,
    data: {
      notificationId: 'n', requestedPosition: 1, requestedAt: meta.at,
      deliveries: users.map((u) => ({ deliveryId: `${u}-${device}`, userId: u, deviceId: device, channel: 'android', provider: 'fcm', ...(type === 'DeliveryFailed' ? { reason: 'rejected' } : {}) })),
    },
    metadata: meta,
  }) as NewEvent;

describe('countReachedUsers', () => {
  it('counts each user with a success once, exactly, in bounded passes and pages', async () => {
    const store = openSqliteEventStore({ path: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'reach-')), 'events.db') });
    // Partition 0: 40 users with two devices, both succeeded in different batches (counted once);
    // 10 more whose every delivery failed. Partition 1: 25 users, one device each, succeeded twice
    // (a retry recorded again).
    const p0 = Array.from({ length: 40 }, (_, i) => `u${i}`);
    const failedOnly = Array.from({ length: 10 }, (_, i) => `f${i}`);
    const p1 = Array.from({ length: 25 }, (_, i) => `v${i}`);
    const s0 = streams.deliveries('t', 'n', 0);
    for (let i = 0; i < p0.length; i += 7) {
      await store.appendToStream(s0, [batch('DeliverySucceeded', p0.slice(i, i + 7), 'a'), batch('DeliveryFailed', failedOnly.slice(0, 3), 'a')], { expectedRevision: 'any' });
    }
    await store.appendToStream(s0, [batch('DeliverySucceeded', [...p0].reverse(), 'b'), batch('DeliveryFailed', failedOnly, 'b')], { expectedRevision: 'any' });
    const s1 = streams.deliveries('t', 'n', 1);
    await store.appendToStream(s1, [batch('DeliverySucceeded', p1, 'a'), batch('DeliverySucceeded', p1.slice(5), 'a')], { expectedRevision: 'any' });

    const send = { tenantId: 't', notificationId: 'n', partitions: 2, deliveries: 40 * 2 + 10 * 2 + 25 };
    expect(await countReachedUsers(store, send)).toBe(65);
    // 63 deliveries a partition at most 4 users a pass: 16 passes, pages of 2 events.
    expect(await countReachedUsers(store, send, { usersPerPass: 4, pageSize: 2, sliceMs: 0 })).toBe(65);
    expect(await countReachedUsers(store, send, { usersPerPass: 1, pageSize: 1, sliceMs: 0 })).toBe(65);
    // A partition with no stream (no user of the send in it) counts nobody.
    expect(await countReachedUsers(store, { ...send, partitions: 3 }, { usersPerPass: 4, pageSize: 3, sliceMs: 0 })).toBe(65);

    // It reads each success once a pass and nothing else: the failures between them stay in the store.
    const read: string[] = [];
    const counting: typeof store = {
      ...store,
      readStream: async (name, o) => {
        const page = await store.readStream(name, o);
        read.push(...page.map((e) => `${name}@${e.revision}:${e.type}`));
        return page;
      },
    };
    expect(await countReachedUsers(counting, send, { usersPerPass: 1_000, pageSize: 2, sliceMs: 0 })).toBe(65);
    expect(read.filter((r) => !r.endsWith(':DeliverySucceeded'))).toEqual([]);
    expect(read).toHaveLength(new Set(read).size);
    expect(read).toHaveLength(Math.ceil(40 / 7) + 1 + 2);
  });

  it('lets the thread serve other work between slices of pages, though the embedded store reads synchronously', async () => {
    const store = openSqliteEventStore({ path: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'reach-')), 'events.db') });
    const users = Array.from({ length: 30 }, (_, i) => `u${i}`);
    for (const u of users) await store.appendToStream(streams.deliveries('t', 'n', 0), [batch('DeliverySucceeded', [u], 'a')], { expectedRevision: 'any' });
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const count = async (sliceMs: number) => {
      const before = turns;
      expect(await countReachedUsers(store, { tenantId: 't', notificationId: 'n', partitions: 1, deliveries: 30 }, { usersPerPass: 30, pageSize: 1, sliceMs })).toBe(30);
      return turns - before;
    };
    try {
      // Thirty pages, a slice each: other work ran between them (without the yield, none ran until the end).
      expect(await count(0)).toBeGreaterThanOrEqual(20);
      // One slice holds every page: the count does not wait behind other work for each page.
      expect(await count(60_000)).toBeLessThanOrEqual(2);
    } finally {
      ticking = false;
      await store.close();
    }
  });

  it('splits the users of one partition evenly over the passes', () => {
    // A partition's users share the low bits of their shard hash: a pass chosen by that hash would
    // put them all in one pass, and memory would not be bounded.
    const users = Array.from({ length: 40_000 }, (_, i) => `user-${i}`).filter((u) => partitionOf(u, 8) === 3);
    for (const passes of [2, 4, 8]) {
      const counts = Array.from({ length: passes }, () => 0);
      for (const u of users) counts[passOf(u, passes)]!++;
      for (const n of counts) expect(n / users.length).toBeGreaterThan(0.8 / passes);
    }
  });
});
