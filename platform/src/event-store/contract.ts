import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyEvent, EventMetadata, RecordedEvent } from './event';
import { ConcurrencyError, type EventStore, type NewEvent } from './port';
import { ChainVerifier, GENESIS } from './chain';

const meta = (requestId = 'r1', tenantId = 't'): EventMetadata => ({ tenantId, actor: 'k1', requestId, at: '2026-06-01T00:00:00.000Z' });
const ev = (type: string, data: object = {}, requestId?: string, tenantId?: string): NewEvent => ({ type, data, metadata: meta(requestId, tenantId) }) as NewEvent;

const until = async (check: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

const rejection = async (p: Promise<unknown>): Promise<unknown> => {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
};

/**
 * The behaviour every event store adapter must have. Streams are unique per test, and positions
 * are only assumed to increase (EventStoreDB positions are byte offsets, not counters).
 */
export function eventStoreContract(
  adapterName: string,
  open: () => Promise<{ store: EventStore; cleanup: () => Promise<void> }>,
): void {
  describe(`event store contract: ${adapterName}`, () => {
    let store: EventStore;
    let cleanup: () => Promise<void>;
    const stream = () => `test-${randomUUID()}`;

    beforeAll(async () => {
      ({ store, cleanup } = await open());
    });
    afterAll(async () => cleanup());

    it('appends and reads back type, data, metadata, revisions and positions', async () => {
      const s = stream();
      const r = await store.appendToStream(s, [ev('A', { n: 1, text: '안녕하세요 😀' }), ev('B', { nested: { list: [1, 2] } })]);
      expect(r.nextExpectedRevision).toBe(1);
      const events = await store.readStream(s);
      expect(events.map((e) => [e.type, e.data, e.revision, e.streamName])).toEqual([
        ['A', { n: 1, text: '안녕하세요 😀' }, 0, s],
        ['B', { nested: { list: [1, 2] } }, 1, s],
      ]);
      expect(events[0]!.metadata).toMatchObject(meta());
      expect(events[1]!.position).toBeGreaterThan(events[0]!.position);
      expect(r.lastPosition).toBe(events[1]!.position);
      expect(await store.headPosition()).toBeGreaterThanOrEqual(r.lastPosition);
    });

    it('reads an unknown stream as empty', async () => {
      expect(await store.readStream(stream())).toEqual([]);
    });

    it('checks no_stream', async () => {
      const s = stream();
      await store.appendToStream(s, [ev('A')], { expectedRevision: 'no_stream' });
      const e = await rejection(store.appendToStream(s, [ev('B')], { expectedRevision: 'no_stream' }));
      expect(e).toBeInstanceOf(ConcurrencyError);
      expect(e).toMatchObject({ streamName: s, expected: 'no_stream', actual: 0 });
    });

    it('checks stream_exists', async () => {
      const s = stream();
      const e = await rejection(store.appendToStream(s, [ev('A')], { expectedRevision: 'stream_exists' }));
      expect(e).toMatchObject({ name: 'ConcurrencyError', expected: 'stream_exists', actual: -1 });
      await store.appendToStream(s, [ev('A')]);
      await store.appendToStream(s, [ev('B')], { expectedRevision: 'stream_exists' });
      expect((await store.readStream(s)).map((x) => x.type)).toEqual(['A', 'B']);
    });

    it('checks an exact revision', async () => {
      const s = stream();
      const e1 = await rejection(store.appendToStream(s, [ev('A')], { expectedRevision: 0 }));
      expect(e1).toMatchObject({ expected: 0, actual: -1 });
      await store.appendToStream(s, [ev('A'), ev('B')], { expectedRevision: 'no_stream' });
      const e2 = await rejection(store.appendToStream(s, [ev('C')], { expectedRevision: 0 }));
      expect(e2).toMatchObject({ expected: 0, actual: 1 });
      const r = await store.appendToStream(s, [ev('C')], { expectedRevision: 1 });
      expect(r.nextExpectedRevision).toBe(2);
    });

    it('appends with any expected revision to a missing or an existing stream', async () => {
      const s = stream();
      expect((await store.appendToStream(s, [ev('A')], { expectedRevision: 'any' })).nextExpectedRevision).toBe(0);
      expect((await store.appendToStream(s, [ev('B'), ev('C')], { expectedRevision: 'any' })).nextExpectedRevision).toBe(2);
      expect((await store.appendToStream(s, [ev('D')])).nextExpectedRevision).toBe(3);
      expect((await store.readStream(s)).map((e) => [e.type, e.revision])).toEqual([['A', 0], ['B', 1], ['C', 2], ['D', 3]]);
    });

    it('writes nothing when the expected revision does not match', async () => {
      const s = stream();
      await store.appendToStream(s, [ev('A')]);
      const head = await store.headPosition();
      await rejection(store.appendToStream(s, [ev('X'), ev('Y')], { expectedRevision: 5 }));
      expect((await store.readStream(s)).map((e) => e.type)).toEqual(['A']);
      expect((await store.readAll({ after: head, maxCount: 1000 })).filter((e) => e.streamName === s)).toEqual([]);
      expect((await store.appendToStream(s, [ev('B')], { expectedRevision: 0 })).nextExpectedRevision).toBe(1);
    });

    it('lets exactly one of two racing appends with the same expected revision win', async () => {
      const s = stream();
      await store.appendToStream(s, [ev('A')]);
      const results = await Promise.allSettled([
        store.appendToStream(s, [ev('X')], { expectedRevision: 0 }),
        store.appendToStream(s, [ev('Y')], { expectedRevision: 0 }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const failure = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(failure.reason).toBeInstanceOf(ConcurrencyError);
      expect(await store.readStream(s)).toHaveLength(2);
    });

    it('appends to several streams atomically', async () => {
      const [a, b] = [stream(), stream()];
      await store.appendToStream(b, [ev('B0')]);
      const e = await rejection(
        store.appendToStreams([
          { streamName: a, events: [ev('A0')], expectedRevision: 'no_stream' },
          { streamName: b, events: [ev('B1')], expectedRevision: 'no_stream' },
        ]),
      );
      expect(e).toBeInstanceOf(ConcurrencyError);
      expect(e).toMatchObject({ streamName: b, expected: 'no_stream', actual: 0 });
      expect(await store.readStream(a)).toEqual([]);
      expect(await store.readStream(b)).toHaveLength(1);
      const ok = await store.appendToStreams([
        { streamName: a, events: [ev('A0')], expectedRevision: 'no_stream' },
        { streamName: b, events: [ev('B1')], expectedRevision: 0 },
      ]);
      const [a0] = await store.readStream(a);
      const [, b1] = await store.readStream(b);
      expect(b1!.position).toBeGreaterThan(a0!.position);
      expect(ok.lastPosition).toBe(b1!.position);
    });

    it('reads a stream from a revision, up to a count', async () => {
      const s = stream();
      await store.appendToStream(s, ['A', 'B', 'C', 'D'].map((t) => ev(t)));
      expect((await store.readStream(s, { fromRevision: 1, maxCount: 2 })).map((e) => e.type)).toEqual(['B', 'C']);
      expect((await store.readStream(s, { fromRevision: 3 })).map((e) => e.revision)).toEqual([3]);
      expect(await store.readStream(s, { fromRevision: 4 })).toEqual([]);
    });

    it('reads a stream by type, counting only the events of those types', async () => {
      const s = stream();
      await store.appendToStream(s, ['A', 'B', 'A', 'C', 'A', 'B'].map((t) => ev(t)));
      const read = async (o: { fromRevision?: number; maxCount?: number; types: string[] }) =>
        (await store.readStream(s, o)).map((e) => [e.type, e.revision]);
      expect(await read({ types: ['A'] })).toEqual([['A', 0], ['A', 2], ['A', 4]]);
      expect(await read({ types: ['A'], fromRevision: 1, maxCount: 1 })).toEqual([['A', 2]]);
      expect(await read({ types: ['B', 'C'], fromRevision: 2 })).toEqual([['C', 3], ['B', 5]]);
      expect(await read({ types: ['A'], fromRevision: 5 })).toEqual([]);
      expect(await read({ types: ['Z'] })).toEqual([]);
      expect(await read({ types: [] })).toEqual([]);
    });

    it('reads the whole log after a position, by type', async () => {
      const s = stream();
      const tag = randomUUID().slice(0, 8);
      const head = await store.headPosition();
      await store.appendToStream(s, [ev(`P${tag}`), ev(`Q${tag}`), ev(`P${tag}`), ev(`R${tag}`)]);
      const all = await store.readAll({ after: head, maxCount: 1000 });
      expect(all.filter((e) => e.streamName === s).map((e) => e.type)).toEqual([`P${tag}`, `Q${tag}`, `P${tag}`, `R${tag}`]);
      const positions = all.map((e) => e.position);
      expect([...positions].sort((x, y) => x - y)).toEqual(positions);
      expect(positions[0]).toBeGreaterThan(head);
      const ps = await store.readAll({ after: head, maxCount: 1000, types: [`P${tag}`, `R${tag}`] });
      expect(ps.map((e) => e.type)).toEqual([`P${tag}`, `P${tag}`, `R${tag}`]);
      const two = await store.readAll({ after: head, maxCount: 2 });
      expect(two).toHaveLength(2);
      const rest = await store.readAll({ after: two[1]!.position, maxCount: 1000 });
      expect([...two, ...rest].map((e) => e.position)).toEqual(positions);
    });

    it('moves the head position forward with every append', async () => {
      const before = await store.headPosition();
      const r1 = await store.appendToStream(stream(), [ev('A')]);
      expect(r1.lastPosition).toBeGreaterThan(before);
      expect(await store.headPosition()).toBeGreaterThanOrEqual(r1.lastPosition);
      const r2 = await store.appendToStream(stream(), [ev('B')]);
      expect(r2.lastPosition).toBeGreaterThan(r1.lastPosition);
      expect(await store.headPosition()).toBeGreaterThanOrEqual(r2.lastPosition);
    });

    it('subscribes from a position in the middle: nothing at or before it is delivered', async () => {
      const s = stream();
      await store.appendToStream(s, [ev('A'), ev('B'), ev('C')]);
      const [, b] = await store.readStream(s);
      const seen: RecordedEvent<AnyEvent>[] = [];
      const sub = store.subscribe({ after: b!.position, handler: async (events) => void seen.push(...events) });
      const r = await store.appendToStream(s, [ev('D')]);
      await sub.caughtUp(r.lastPosition);
      await sub.stop();
      expect(seen.every((e) => e.position > b!.position)).toBe(true);
      expect(seen.filter((e) => e.streamName === s).map((e) => e.type)).toEqual(['C', 'D']);
    });

    it('subscribes: catches up from a position, then follows live appends in order, without gaps or duplicates', async () => {
      const s = stream();
      const head = await store.headPosition();
      await store.appendToStream(s, [ev('E', { i: 0 }), ev('E', { i: 1 })]);
      const seen: RecordedEvent<AnyEvent>[] = [];
      const sub = store.subscribe({ after: head, batchSize: 2, handler: async (events) => void seen.push(...events) });
      await until(() => seen.filter((e) => e.streamName === s).length === 2);
      for (let i = 2; i < 7; i++) await store.appendToStream(s, [ev('E', { i })]);
      const last = await store.appendToStream(s, [ev('E', { i: 7 }), ev('E', { i: 8 })]);
      await sub.caughtUp(last.lastPosition);
      await sub.stop();
      const mine = seen.filter((e) => e.streamName === s);
      expect(mine.map((e) => (e.data as unknown as { i: number }).i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
      const positions = seen.map((e) => e.position);
      expect(new Set(positions).size).toBe(positions.length);
      expect([...positions].sort((x, y) => x - y)).toEqual(positions);
    });

    it('subscribes to some types only, and still reports progress past others', async () => {
      const s = stream();
      const tag = randomUUID().slice(0, 8);
      const head = await store.headPosition();
      const seen: string[] = [];
      const sub = store.subscribe({ after: head, types: [`Keep${tag}`], handler: async (events) => void seen.push(...events.map((e) => e.type)) });
      await store.appendToStream(s, [ev(`Keep${tag}`), ev(`Skip${tag}`)]);
      const last = await store.appendToStream(s, [ev(`Skip${tag}`)]);
      await sub.caughtUp(last.lastPosition);
      await sub.stop();
      expect(seen).toEqual([`Keep${tag}`]);
    });

    it('stops delivering after stop()', async () => {
      const s = stream();
      let count = 0;
      const sub = store.subscribe({ after: await store.headPosition(), handler: async (events) => void (count += events.filter((e) => e.streamName === s).length) });
      const r = await store.appendToStream(s, [ev('A')]);
      await sub.caughtUp(r.lastPosition);
      await sub.stop();
      await store.appendToStream(s, [ev('B')]);
      await new Promise((r2) => setTimeout(r2, 300));
      expect(count).toBe(1);
    });

    it('resolves caughtUp only once the handler has finished with the events', async () => {
      const s = stream();
      let finished = 0;
      const sub = store.subscribe({
        after: await store.headPosition(),
        handler: async (events) => {
          await new Promise((r) => setTimeout(r, 50));
          finished += events.filter((e) => e.streamName === s).length;
        },
      });
      const r = await store.appendToStream(s, [ev('A'), ev('B')]);
      await sub.caughtUp(r.lastPosition);
      expect(finished).toBe(2);
      await sub.caughtUp(r.lastPosition - 1);
      await sub.stop();
    });

    it('stop() waits for the batch in progress, then delivers nothing more', async () => {
      const s = stream();
      let release: () => void = () => {};
      let entered: () => void = () => {};
      const inHandler = new Promise<void>((r) => (entered = r));
      const calls: string[] = [];
      const sub = store.subscribe({
        after: await store.headPosition(),
        handler: async (events) => {
          calls.push(...events.filter((e) => e.streamName === s).map((e) => e.type));
          entered();
          await new Promise<void>((r) => (release = r));
          calls.push('done');
        },
      });
      await store.appendToStream(s, [ev('A')]);
      await inHandler;
      let stopped = false;
      const stopping = sub.stop().then(() => (stopped = true));
      await store.appendToStream(s, [ev('B')]);
      await new Promise((r) => setTimeout(r, 50));
      expect(stopped).toBe(false);
      release();
      await stopping;
      expect(calls.at(-1)).toBe('done');
      await new Promise((r) => setTimeout(r, 300));
      expect(calls.filter((c) => c !== 'done')).toEqual(['A']);
    });

    it('reports a failing handler to onError and stops', async () => {
      const s = stream();
      const errors: unknown[] = [];
      let calls = 0;
      const sub = store.subscribe({
        after: await store.headPosition(),
        handler: async () => {
          calls++;
          throw new Error('boom');
        },
        onError: (e) => errors.push(e),
      });
      await store.appendToStream(s, [ev('A')]);
      await until(() => errors.length === 1);
      await store.appendToStream(s, [ev('B')]);
      await new Promise((r) => setTimeout(r, 300));
      expect((errors[0] as Error).message).toBe('boom');
      expect(calls).toBe(1);
      await sub.stop();
    });

    it('chains each tenant\'s events by hash, across streams and batched appends', async () => {
      const tenant = `chain-${randomUUID().slice(0, 8)}`;
      const other = `chain-${randomUUID().slice(0, 8)}`;
      const [a, b] = [stream(), stream()];
      await store.appendToStream(a, [ev('A', { n: 1 }, 'r', tenant), ev('B', { 한: '글' }, 'r', tenant)]);
      await store.appendToStream(b, [ev('X', {}, 'r', other)]);
      await store.appendToStreams([
        { streamName: b, events: [ev('C', {}, 'r', tenant)], expectedRevision: 0 },
        { streamName: a, events: [ev('D', {}, 'r', tenant), ev('Y', {}, 'r', other)], expectedRevision: 1 },
      ]);
      const mine = await store.readAll({ after: 0, maxCount: 100_000, tenantId: tenant });
      expect(mine.map((e) => e.type)).toEqual(['A', 'B', 'C', 'D']);
      expect(mine[0]!.metadata.prevHash).toBe(GENESIS);
      const verifier = new ChainVerifier(tenant);
      for (const e of mine) verifier.add(e);
      const report = verifier.report(await store.chainHead(tenant));
      expect(report).toMatchObject({ ok: true, checked: 4, firstBreak: null });
      const theirs = await store.readAll({ after: 0, maxCount: 100_000, tenantId: other });
      expect(theirs.map((e) => e.type)).toEqual(['X', 'Y']);
      expect(theirs[0]!.metadata.prevHash).toBe(GENESIS);
      expect(await store.tenants()).toEqual(expect.arrayContaining([tenant, other]));
      expect(await store.chainHead(`none-${tenant}`)).toBeNull();
      const typed = await store.readAll({ after: 0, maxCount: 100_000, tenantId: tenant, types: ['B', 'D'] });
      expect(typed.map((e) => e.type)).toEqual(['B', 'D']);
    });

    it('leaves the chain intact when an append is rejected', async () => {
      const tenant = `chain-${randomUUID().slice(0, 8)}`;
      const s = stream();
      await store.appendToStream(s, [ev('A', {}, 'r', tenant)]);
      await rejection(store.appendToStream(s, [ev('B', {}, 'r', tenant)], { expectedRevision: 'no_stream' }));
      await store.appendToStream(s, [ev('C', {}, 'r', tenant)], { expectedRevision: 0 });
      const verifier = new ChainVerifier(tenant);
      for (const e of await store.readAll({ after: 0, maxCount: 100_000, tenantId: tenant })) verifier.add(e);
      expect(verifier.report(await store.chainHead(tenant))).toMatchObject({ ok: true, checked: 2 });
    });
  });
}
