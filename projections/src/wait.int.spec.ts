import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import { checkpointName } from './read-model';
import { waitForReadModels } from './wait';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'projections-wait-'));
const eventStore = openSqliteEventStore({ path: path.join(dir, 'events.db') });
const readStore = openSqliteReadStore({ path: path.join(dir, 'read.db') });
afterAll(async () => {
  await eventStore.close();
  await readStore.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const meta = { tenantId: 't', actor: 'test', requestId: 'r', at: '2026-12-05T00:00:00.000Z' };
const append = async (stream: string, type: string): Promise<number> =>
  (await eventStore.appendToStream(stream, [{ type, data: {}, metadata: meta } as never])).lastPosition;
const checkpointAt = async (name: string, next: number): Promise<void> => {
  const expected = await readStore.checkpoint(checkpointName({ name }));
  await readStore.commit({ checkpoints: [{ name: checkpointName({ name }), expected, next }], changes: [] });
};
const settled = async (p: Promise<void>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('waitForReadModels', () => {
  const users = { name: 'users', handles: ['UserRegistered'] };
  const groups = { name: 'groups', handles: ['GroupCreated'] };

  it('does not wait for a checkpoint to pass events the models do not handle', async () => {
    const registered = await append('user-1', 'UserRegistered');
    await checkpointAt('users', registered);
    await checkpointAt('groups', registered);
    // A flood of other events, then the request: the checkpoints trail the head, yet nothing they apply lies in between.
    for (let i = 0; i < 5; i++) await append(`deliveries-${i}`, 'DeliveryDispatched');
    const requested = await append('notification-1', 'NotificationRequested');
    expect(await settled(waitForReadModels(readStore, [users, groups], requested, { eventStore, timeoutMs: 5_000 }), 200)).toBe(true);
    // Without the log it waits for the checkpoints, as before.
    expect(await settled(waitForReadModels(readStore, [users, groups], requested, { timeoutMs: 5_000 }), 200)).toBe(false);
  });

  it('waits while an event a model handles lies between its checkpoint and the position, until the checkpoint passes it', async () => {
    const before = await eventStore.headPosition();
    await checkpointAt('users', before);
    await checkpointAt('groups', before);
    const registered = await append('user-2', 'UserRegistered');
    const requested = await append('notification-2', 'NotificationRequested');
    const waiting = waitForReadModels(readStore, [users, groups], requested, { eventStore, timeoutMs: 5_000 });
    expect(await settled(waiting, 200)).toBe(false);
    await checkpointAt('users', registered);
    expect(await settled(waiting, 1_000)).toBe(true);
    // A change after the request is the send-time check's, not this wait's.
    await append('user-3', 'UserRegistered');
    expect(await settled(waitForReadModels(readStore, [users, groups], requested, { eventStore, timeoutMs: 5_000 }), 200)).toBe(true);
  });
});
