import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusMessage, JobBus } from './port';

const until = async (check: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** The behaviour every job bus adapter must have. `open` may be called twice (a restart). */
export function jobBusContract(adapterName: string, open: () => Promise<{ bus: JobBus; reopen: () => Promise<JobBus>; cleanup: () => Promise<void> }>): void {
  describe(`job bus contract: ${adapterName}`, () => {
    let bus: JobBus;
    let reopen: () => Promise<JobBus>;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ bus, reopen, cleanup } = await open());
    }, 60_000);
    afterAll(async () => cleanup());
    const topic = () => `t-${randomUUID().slice(0, 8)}`;

    it('carries message headers (trace context) to the consumer', async () => {
      const t = topic();
      await bus.ensureTopic(t, 1);
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      await bus.publish(t, [{ partition: 0, key: 'a', value: { i: 1 }, headers: { traceparent } }, { partition: 0, key: 'b', value: { i: 2 } }]);
      const seen: BusMessage[] = [];
      const consumer = await bus.consume({ topic: t, group: 'headers', handler: async (m) => void seen.push(...m) });
      await until(() => seen.length === 2);
      expect(seen[0]!.headers).toEqual({ traceparent });
      expect(seen[1]!.headers ?? {}).toEqual({});
      await consumer.stop();
    });

    it('reports per partition what a group has not committed (consumer lag)', async () => {
      const t = topic();
      await bus.ensureTopic(t, 2);
      const lagOf = async (group: string) => Object.fromEntries((await bus.lag(t, group)).map((p) => [p.partition, p.lag]));
      await bus.publish(t, [0, 0, 0, 1].map((partition, i) => ({ partition, key: `k${i}`, value: { i } })));
      expect(await lagOf('lagging')).toMatchObject({ 0: 3, 1: 1 });
      const seen: BusMessage[] = [];
      const consumer = await bus.consume({ topic: t, group: 'lagging', handler: async (m) => void seen.push(...m) });
      await until(() => seen.length === 4);
      await consumer.commit(0, seen.filter((m) => m.partition === 0).at(-2)!.offset);
      const partial = async () => (await lagOf('lagging'))[0] === 1;
      for (let i = 0; i < 100 && !(await partial()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await lagOf('lagging')).toMatchObject({ 0: 1, 1: 1 });
      await consumer.commit(0, seen.filter((m) => m.partition === 0).at(-1)!.offset);
      await consumer.commit(1, seen.find((m) => m.partition === 1)!.offset);
      const none = async () => Object.values(await lagOf('lagging')).every((l) => l === 0);
      for (let i = 0; i < 100 && !(await none()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await lagOf('lagging')).toMatchObject({ 0: 0, 1: 0 });
      // Another group has read nothing.
      expect(await lagOf('other')).toMatchObject({ 0: 3, 1: 1 });
      await consumer.stop();
    });

    it('delivers every message once, in order within each partition', async () => {
      const t = topic();
      await bus.ensureTopic(t, 4);
      expect(await bus.partitions(t)).toBe(4);
      await bus.publish(t, Array.from({ length: 200 }, (_, i) => ({ partition: i % 4, key: `k${i}`, value: { i, text: '한글' } })));
      const seen: BusMessage[] = [];
      const consumer = await bus.consume({ topic: t, group: 'g', handler: async (m) => void seen.push(...m) });
      await until(() => seen.length === 200);
      for (let p = 0; p < 4; p++) {
        const values = seen.filter((m) => m.partition === p).map((m) => (m.value as { i: number }).i);
        expect(values).toEqual([...values].sort((a, b) => a - b));
        expect(values).toHaveLength(50);
      }
      expect(seen[0]!.value).toMatchObject({ text: '한글' });
      await consumer.stop();
    });

    it('redelivers what was not committed, after a restart', async () => {
      const t = topic();
      await bus.ensureTopic(t, 2);
      await bus.publish(t, Array.from({ length: 20 }, (_, i) => ({ partition: i % 2, key: 'k', value: i })));
      const first: BusMessage[] = [];
      const c1 = await bus.consume({ topic: t, group: 'g', handler: async (m) => void first.push(...m) });
      await until(() => first.length === 20);
      const p0 = first.filter((m) => m.partition === 0);
      await c1.commit(0, p0[4]!.offset);
      await c1.stop();
      bus = await reopen();
      const second: BusMessage[] = [];
      const c2 = await bus.consume({ topic: t, group: 'g', handler: async (m) => void second.push(...m) });
      await until(() => second.length === 15);
      await new Promise((r) => setTimeout(r, 200));
      expect(second.map((m) => m.value).sort((a, b) => (a as number) - (b as number))).toEqual([10, 12, 14, 16, 18, ...Array.from({ length: 10 }, (_, i) => 2 * i + 1)].sort((a, b) => a - b));
      await c2.stop();
    });

    it('follows messages published after the consumer started', async () => {
      const t = topic();
      await bus.ensureTopic(t, 1);
      const seen: unknown[] = [];
      const c = await bus.consume({ topic: t, group: 'g', handler: async (m) => void seen.push(...m.map((x) => x.value)) });
      for (let i = 0; i < 5; i++) await bus.publish(t, [{ partition: 0, key: 'k', value: i }]);
      await until(() => seen.length === 5);
      expect(seen).toEqual([0, 1, 2, 3, 4]);
      await c.stop();
    });

    it('refuses a partition that does not exist', async () => {
      const t = topic();
      await bus.ensureTopic(t, 2);
      await expect(bus.publish(t, [{ partition: 2, key: 'k', value: 1 }])).rejects.toThrow(/partition/);
    });
  });
}
