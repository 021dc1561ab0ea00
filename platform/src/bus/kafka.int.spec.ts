import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { jobBusContract } from './contract';
import { deadLetter, deadLetterTopic, openKafkaBus } from './kafka';
import { namespacedBus } from './namespaced';
import type { BusMessage, JobBus } from './port';

const brokers = process.env.KAFKA_BROKERS?.split(',').filter(Boolean);
if (!brokers) console.warn('kafka bus: skipped, KAFKA_BROKERS is not set (start servers with npm run servers:up)');

/** Everything this run creates starts with it, so the broker can be cleaned after the run. */
const run = `spec-${randomUUID().slice(0, 8)}`;
const root = path.resolve(__dirname, '../../..');

const until = async (check: () => boolean, ms = 30_000, what = 'condition'): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/**
 * What a member owns, from its hooks: onAssigned gives only gained partitions (after every
 * assignment, so possibly none), onRevoked lost ones; `log` orders the hooks of several members.
 */
const ownership = (name = '', log: string[] = []) => {
  const owned = new Set<number>();
  const assigned: number[][] = [];
  const revoked: number[][] = [];
  return {
    owned: () => [...owned].sort((a, b) => a - b),
    assigned,
    revoked,
    onRebalancing: () => void log.push(`${name} rebalancing`),
    onAssigned: (p: readonly number[]) => {
      expect(p.filter((x) => owned.has(x))).toEqual([]);
      log.push(`${name} assigned ${p.join(',')}`);
      if (p.length > 0) assigned.push([...p]);
      for (const x of p) owned.add(x);
    },
    onRevoked: (p: readonly number[]) => {
      revoked.push([...p]);
      for (const x of p) owned.delete(x);
    },
  };
};
const open = (options: { reclaimIntervalMs?: number } = {}) => openKafkaBus({ brokers: brokers!, clientId: run, ...options });

describe.skipIf(!brokers)('kafka', () => {
  // Reclaim off: the contract's lag of a group that never committed counts from the log start,
  // which a reclaim moves (the reclaim has its own test below).
  jobBusContract('kafka', async () => {
    let bus: JobBus = namespacedBus(await open({ reclaimIntervalMs: 0 }), run);
    return {
      bus,
      reopen: async () => {
        await bus.close();
        bus = namespacedBus(await open({ reclaimIntervalMs: 0 }), run);
        return bus;
      },
      cleanup: () => bus.close(),
    };
  });
});

describe.skipIf(!brokers)('kafka bus', () => {
  const buses: JobBus[] = [];
  const bus = async (options: { reclaimIntervalMs?: number } = {}) => {
    const b = await open(options);
    buses.push(b);
    return b;
  };
  let n = 0;
  const topic = () => `${run}.t${n++}`;
  const group = () => `${run}.g${n++}`;

  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.close()));
    const admin = new Kafka({ brokers: brokers!, clientId: run, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(run));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => undefined);
    await admin.disconnect();
  }, 60_000);

  it('ensureTopic is idempotent, only grows a topic, and a grown partition takes messages at once', async () => {
    const b = await bus();
    const t = topic();
    await b.ensureTopic(t, 2);
    await b.ensureTopic(t, 2);
    expect(await b.partitions(t)).toBe(2);
    expect(await b.partitions(deadLetterTopic(t))).toBe(2);
    // The producer has this topic's metadata (2 partitions) before it grows.
    await b.publish(t, [{ partition: 1, key: 'k', value: 'before' }]);
    await Promise.all([b.ensureTopic(t, 5), b.ensureTopic(t, 5)]);
    expect(await b.partitions(t)).toBe(5);
    expect(await b.partitions(deadLetterTopic(t))).toBe(5);
    await b.ensureTopic(t, 3);
    expect(await b.partitions(t)).toBe(5);
    await b.publish(t, [{ partition: 4, key: 'k', value: 'after' }]);
    await expect(b.publish(t, [{ partition: 5, key: 'k', value: 'nowhere' }])).rejects.toThrow(/partition/);
    await expect(b.partitions(`${run}.missing`)).rejects.toThrow(/does not exist/);
    const seen: BusMessage[] = [];
    const c = await b.consume({ topic: t, group: group(), handler: async (m) => void seen.push(...m) });
    await until(() => seen.length === 2, 20_000, 'both messages');
    expect(seen.map((m) => [m.partition, m.value]).sort()).toEqual([
      [1, 'before'],
      [4, 'after'],
    ]);
    await c.stop();
  }, 60_000);

  it('after commit(p, offset), the group resumes at offset + 1; commits never go backwards', async () => {
    const b = await bus();
    const t = topic();
    const g = group();
    await b.ensureTopic(t, 2);
    await b.publish(t, range(20).map((i) => ({ partition: i % 2, key: `k${i}`, value: i })));
    const first: BusMessage[] = [];
    const c1 = await b.consume({ topic: t, group: g, handler: async (m) => void first.push(...m) });
    await until(() => first.length === 20);
    const p0 = first.filter((m) => m.partition === 0).map((m) => m.offset);
    expect(p0).toEqual(range(10));
    // Coalesced into one commit; the lower offset that comes last does not move it back.
    await Promise.all([c1.commit(0, 3), c1.commit(0, 6), c1.commit(1, 0)]);
    await c1.commit(0, 2);
    await c1.stop();
    const second: BusMessage[] = [];
    const c2 = await b.consume({ topic: t, group: g, handler: async (m) => void second.push(...m) });
    await until(() => second.length === 3 + 9);
    await new Promise((r) => setTimeout(r, 300));
    expect(second.filter((m) => m.partition === 0).map((m) => m.offset)).toEqual([7, 8, 9]);
    expect(second.filter((m) => m.partition === 1).map((m) => m.offset)).toEqual(range(9).map((i) => i + 1));
    expect(second).toHaveLength(12);
    await c2.stop();
  }, 60_000);

  it('splits partitions between two members and gives a leaving member its partitions and uncommitted messages to the other', async () => {
    const t = topic();
    const g = group();
    const [a, b] = [await bus(), await bus()];
    await a.ensureTopic(t, 4);
    await a.publish(t, range(40).map((i) => ({ partition: i % 4, key: `k${i}`, value: i })));
    const seenA: BusMessage[] = [];
    const seenB: BusMessage[] = [];
    const log: string[] = [];
    const A = ownership('A', log);
    const B = ownership('B', log);
    const ca = await a.consume({ topic: t, group: g, handler: async (m) => void seenA.push(...m), ...A });
    expect(A.owned()).toEqual([0, 1, 2, 3]);
    await until(() => seenA.length >= 40);
    const cb = await b.consume({ topic: t, group: g, handler: async (m) => void seenB.push(...m), ...B });
    await until(() => A.owned().length > 0 && A.owned().length < 4 && B.owned().length > 0, 30_000, 'a rebalance');
    const mineA = A.owned();
    const mineB = B.owned();
    expect(mineA.filter((p) => mineB.includes(p))).toEqual([]);
    expect([...mineA, ...mineB].sort()).toEqual([0, 1, 2, 3]);
    // A kept its other partitions: it was told only what it lost, and nothing was re-assigned.
    expect(A.assigned).toEqual([[0, 1, 2, 3]]);
    expect(A.revoked.flat().sort()).toEqual(mineB);
    // A heard of the rebalance before B was given anything: a worker can hold its sends meanwhile.
    const firstB = log.findIndex((l) => l.startsWith('B assigned') && l !== 'B assigned ');
    expect(log.indexOf('A rebalancing')).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('A rebalancing')).toBeLessThan(firstB);
    // Nothing was committed: B starts its partitions from the beginning.
    await until(() => seenB.length >= 10 * mineB.length);
    expect(new Set(seenB.map((m) => `${m.partition}:${m.offset}`)).size).toBe(10 * mineB.length);
    for (const p of mineA) await ca.commit(p, 9);
    await a.publish(t, range(40).map((i) => ({ partition: i % 4, key: `k${i}`, value: 40 + i })));
    await until(() => seenB.filter((m) => m.offset >= 10).length >= 10 * mineB.length);
    const mark = seenA.length;
    await cb.stop();
    expect(B.revoked.at(-1)).toEqual(mineB);
    await until(() => A.owned().length === 4, 30_000, 'A to take every partition');
    expect(A.assigned.at(-1)).toEqual(mineB);
    expect(A.revoked).toHaveLength(1);
    // Every message of B's partitions comes to A again (B never committed); none lost.
    await until(() => new Set(seenA.slice(mark).filter((m) => mineB.includes(m.partition)).map((m) => `${m.partition}:${m.offset}`)).size === 20 * mineB.length);
    await ca.stop();
  }, 90_000);

  it('gives a killed member’s partitions and uncommitted messages to the survivor', async () => {
    const t = topic();
    const g = group();
    const a = await bus();
    await a.ensureTopic(t, 4);
    await a.publish(t, range(40).map((i) => ({ partition: i % 4, key: `k${i}`, value: i })));
    const seen: BusMessage[] = [];
    const A = ownership();
    const ca = await a.consume({ topic: t, group: g, handler: async (m) => void seen.push(...m), onAssigned: A.onAssigned, onRevoked: A.onRevoked });
    await until(() => seen.length >= 40);
    for (const p of range(4)) await ca.commit(p, 9);
    // Another member in its own process (kafkajs itself: the point is that it dies without leaving).
    const doomed = spawn(
      process.execPath,
      [
        '-e',
        `const { Kafka, logLevel } = require('kafkajs');
         const c = new Kafka({ brokers: ${JSON.stringify(brokers)}, clientId: 'doomed', logLevel: logLevel.NOTHING })
           .consumer({ groupId: ${JSON.stringify(g)}, sessionTimeout: 3000, heartbeatInterval: 500 });
         c.on(c.events.GROUP_JOIN, (e) => console.log(JSON.stringify(e.payload.memberAssignment[${JSON.stringify(t)}] || [])));
         c.connect().then(() => c.subscribe({ topic: ${JSON.stringify(t)}, fromBeginning: true }))
           .then(() => c.run({ autoCommit: false, eachBatch: async () => {} }));`,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let theirs: number[] = [];
    doomed.stdout!.on('data', (d: Buffer) => (theirs = JSON.parse(d.toString().trim().split('\n').at(-1)!)));
    try {
      await until(() => theirs.length > 0 && A.owned().length === 4 - theirs.length, 30_000, 'the other member to join');
      await a.publish(t, range(40).map((i) => ({ partition: i % 4, key: `k${i}`, value: 40 + i })));
      await new Promise((r) => setTimeout(r, 500));
      const mark = seen.length;
      const killedAt = Date.now();
      doomed.kill('SIGKILL');
      await until(() => A.owned().length === 4, 30_000, 'the survivor to take every partition');
      expect(A.assigned.at(-1)).toEqual(theirs);
      const tookMs = Date.now() - killedAt;
      await until(() => new Set(seen.slice(mark).filter((m) => theirs.includes(m.partition)).map((m) => `${m.partition}:${m.offset}`)).size === 10 * theirs.length);
      const recovered = seen.slice(mark).filter((m) => theirs.includes(m.partition));
      for (const p of theirs) expect(new Set(recovered.filter((m) => m.partition === p).map((m) => m.offset))).toEqual(new Set(range(10).map((i) => 10 + i)));
      expect(tookMs).toBeLessThan(15_000);
    } finally {
      doomed.kill('SIGKILL');
      await ca.stop();
    }
  }, 90_000);

  it('lets several instances ensure the same new topic at once, as processes starting together do', async () => {
    const buses = await Promise.all(range(4).map(() => open()));
    try {
      for (let round = 0; round < 3; round++) {
        const t = `${run}-race-${round}`;
        await Promise.all(buses.map((b) => b.ensureTopic(t, 4)));
        for (const b of buses) expect(await b.partitions(t)).toBe(4);
      }
    } finally {
      await Promise.all(buses.map((b) => b.close()));
    }
  }, 60_000);

  it('parks messages that are not JSON, and those deadLetter is given, on <topic>.dlq', async () => {
    const b = await bus();
    const t = topic();
    await b.ensureTopic(t, 2);
    const raw = new Kafka({ brokers: brokers!, clientId: run, logLevel: logLevel.NOTHING }).producer();
    await raw.connect();
    await raw.send({ topic: t, messages: [{ partition: 1, key: 'bad', value: Buffer.from([0xff, 0x00, 0x7b]) }] });
    await raw.disconnect();
    await b.publish(t, [{ partition: 1, key: 'good', value: { ok: true } }]);
    const seen: BusMessage[] = [];
    const c = await b.consume({ topic: t, group: group(), handler: async (m) => void seen.push(...m) });
    await until(() => seen.length === 1);
    expect(seen[0]).toMatchObject({ partition: 1, offset: 1, key: 'good', value: { ok: true } });
    await deadLetter(b, t, seen, 'unknown job version');
    const parked: BusMessage[] = [];
    const d = await b.consume({ topic: deadLetterTopic(t), group: group(), handler: async (m) => void parked.push(...m) });
    await until(() => parked.length === 2);
    expect(parked.map((m) => m.value)).toEqual([
      { reason: 'not JSON', topic: t, partition: 1, offset: 0, base64: Buffer.from([0xff, 0x00, 0x7b]).toString('base64') },
      { reason: 'unknown job version', topic: t, partition: 1, offset: 1, value: { ok: true } },
    ]);
    await Promise.all([c.stop(), d.stop()]);
  }, 60_000);

  it('reclaims what every group that committed is past: the log start moves up to the lowest committed offset', async () => {
    const t = topic();
    const [fast, slow] = [group(), group()];
    const a = await bus({ reclaimIntervalMs: 200 });
    const b = await bus({ reclaimIntervalMs: 200 });
    await a.ensureTopic(t, 2);
    await a.publish(t, range(40).map((i) => ({ partition: i % 2, key: `k${i}`, value: { i, pad: 'x'.repeat(1000) } })));
    const admin = new Kafka({ brokers: brokers!, clientId: run, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const starts = async () => Object.fromEntries((await admin.fetchTopicOffsets(t)).map((p) => [p.partition, Number(p.low)]));
    const startsAre = async (want: Record<number, number>) => {
      const end = Date.now() + 20_000;
      for (;;) {
        const now = await starts();
        if (JSON.stringify(now) === JSON.stringify(want)) return now;
        if (Date.now() > end) return now;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      const seenFast: BusMessage[] = [];
      const seenSlow: BusMessage[] = [];
      const cf = await a.consume({ topic: t, group: fast, handler: async (m) => void seenFast.push(...m) });
      const cs = await b.consume({ topic: t, group: slow, handler: async (m) => void seenSlow.push(...m) });
      await until(() => seenFast.length === 40 && seenSlow.length === 40);
      expect(await starts()).toEqual({ 0: 0, 1: 0 });
      // fast is done with everything but partition 0's last ten; slow with partition 1's first five.
      await Promise.all([cf.commit(0, 9), cf.commit(1, 19), cs.commit(0, 19), cs.commit(1, 4)]);
      expect(await startsAre({ 0: 10, 1: 5 })).toEqual({ 0: 10, 1: 5 });
      // Both groups still read from their commits: nothing they had not done was deleted.
      const lag = async (g: string) => Object.fromEntries((await a.lag(t, g)).map((p) => [p.partition, p.lag]));
      expect(await lag(fast)).toEqual({ 0: 10, 1: 0 });
      expect(await lag(slow)).toEqual({ 0: 0, 1: 15 });
      await Promise.all([cf.commit(0, 19), cs.commit(1, 19)]);
      expect(await startsAre({ 0: 20, 1: 20 })).toEqual({ 0: 20, 1: 20 });
      // Segments roll at least hourly, so that those wholly reclaimed leave the disk.
      const config = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configNames: ['segment.ms'] }] });
      expect(config.resources[0]!.configEntries.find((e) => e.configName === 'segment.ms')?.configValue).toBe('3600000');
      await Promise.all([cf.stop(), cs.stop()]);
    } finally {
      await admin.disconnect();
    }
  }, 60_000);
});
