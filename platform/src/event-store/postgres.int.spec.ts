import { createHash, randomBytes, randomUUID } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AnyEvent, RecordedEvent } from './event';
import { chainKeys, ChainVerifier, headMacProblem } from './chain';
import { eventStoreContract } from './contract';
import { ConcurrencyError, type EventStore, type NewEvent } from './port';
import { openPostgresEventStore } from './postgres';

const url = process.env.POSTGRES_URL;
if (!url) console.warn('postgres event store: skipped, POSTGRES_URL is not set (start servers with npm run servers:up)');

const ev = (type: string, data: object = {}, tenantId = 't'): NewEvent =>
  ({ type, data, metadata: { tenantId, actor: 'a', requestId: 'r', at: '2026-01-01T00:00:00.000Z' } }) as NewEvent;

const until = async (check: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 2));
  }
};

const freshSchema = () => `es_${randomBytes(6).toString('hex')}`;

const dropSchema = async (schema: string): Promise<void> => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
};

/** Several store instances on one schema, each with its own pool, as separate processes would be. */
const openInstances = async (n: number): Promise<{ stores: EventStore[]; schema: string; cleanup: () => Promise<void> }> => {
  const schema = freshSchema();
  const stores = await Promise.all(Array.from({ length: n }, () => openPostgresEventStore({ connectionString: url!, schema, poolSize: 4 })));
  return {
    stores,
    schema,
    cleanup: async () => {
      await Promise.all(stores.map((s) => s.close()));
      await dropSchema(schema);
    },
  };
};

describe.skipIf(!url)('postgres event store', () => {
  it('appends in one statement under the lock: heads carry a MAC the chain key checks, chained across two writers', async () => {
    const schema = freshSchema();
    const keys = chainKeys([{ id: 'k1', key: randomBytes(32) }]);
    const stores = await Promise.all([0, 1].map(() => openPostgresEventStore({ connectionString: url!, schema, poolSize: 4, chainKeys: keys })));
    try {
      const tenant = `mac-${randomUUID().slice(0, 8)}`;
      // Two writers, interleaved appends of one tenant, some to the same stream with an expected revision.
      await Promise.all(stores.map((store, w) => (async () => {
        for (let i = 0; i < 20; i++) {
          await store.appendToStreams([
            { streamName: `s-${w}-${i}`, events: [ev('A', { i, w, text: '안녕 "quoted" \\ slash' }, tenant), ev('B', {}, tenant)], expectedRevision: 'no_stream' },
            { streamName: `shared-${w}`, events: [ev('C', { i }, tenant)], expectedRevision: i === 0 ? 'no_stream' : i - 1 },
          ]);
        }
      })()));
      // Each instance writes the MACs of its own appends after their commits, and its chainHead
      // waits for those: the last append may have been the other writer's.
      await stores[1]!.chainHead(tenant);
      const head = await stores[0]!.chainHead(tenant);
      expect(head).toMatchObject({ events: 120, position: 120 });
      expect(headMacProblem(keys, tenant, head!)).toBeNull();
      const verifier = new ChainVerifier(tenant);
      for (const e of await stores[1]!.readAll({ after: 0, maxCount: 1_000, tenantId: tenant })) verifier.add(e);
      expect(verifier.report(head)).toMatchObject({ ok: true, checked: 120, firstBreak: null });
      // A conflict in the second append of a batch writes nothing of the first.
      await expect(stores[0]!.appendToStreams([
        { streamName: 'fresh', events: [ev('D', {}, tenant)], expectedRevision: 'no_stream' },
        { streamName: 'shared-0', events: [ev('E', {}, tenant)], expectedRevision: 3 },
      ])).rejects.toMatchObject({ name: 'ConcurrencyError', streamName: 'shared-0', expected: 3, actual: 19 });
      expect(await stores[0]!.readStream('fresh')).toEqual([]);
      expect(await stores[0]!.chainHead(tenant)).toEqual(head);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await dropSchema(schema);
    }
  });

  it("commits an append in its own statement: a writer whose process is away after it does not hold the others' lock", async () => {
    // A proxy in front of writer A holds what PostgreSQL answers it for 800 ms: A's process is
    // busy or waiting for a core. A lock held until A's next statement would hold B as long.
    const server = new URL(url!);
    const delayMs = 800;
    let delaying = false;
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(server.port || 5432), server.hostname);
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (!delaying) return void client.write(chunk);
        upstream.pause();
        setTimeout(() => {
          client.write(chunk);
          upstream.resume();
        }, delayMs);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxied = new URL(url!);
    proxied.hostname = '127.0.0.1';
    proxied.port = String((proxy.address() as net.AddressInfo).port);
    proxied.searchParams.set('application_name', 'writer-a');
    const schema = freshSchema();
    const keys = chainKeys([{ id: 'k1', key: randomBytes(32) }]);
    const b = await openPostgresEventStore({ connectionString: url!, schema, poolSize: 2, chainKeys: keys });
    const a = await openPostgresEventStore({ connectionString: proxied.toString(), schema, poolSize: 1, chainKeys: keys });
    const observer = new pg.Client({ connectionString: url });
    await observer.connect();
    try {
      await a.appendToStream('warm', [ev('W', {}, 'shared')]);
      // Its MAC written too: A's connection is idle.
      await a.chainHead('shared');
      const since = (await observer.query<{ at: Date }>(`SELECT max(query_start) AS at FROM pg_stat_activity WHERE application_name = 'writer-a'`)).rows[0]!.at;
      delaying = true;
      const slow = a.appendToStream('a', [ev('A', {}, 'shared')]);
      // Until PostgreSQL has run A's append (A has not seen its answer yet).
      const end = Date.now() + 5000;
      for (;;) {
        const r = await observer.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'writer-a' AND query LIKE '%.append_v%' AND state <> 'active' AND query_start > $1`,
          [since],
        );
        if (r.rows[0]!.n > 0) break;
        if (Date.now() > end) throw new Error("A's append did not run");
        await new Promise((r2) => setTimeout(r2, 5));
      }
      const started = Date.now();
      const fast = await b.appendToStream('b', [ev('B', {}, 'shared')]);
      expect(Date.now() - started).toBeLessThan(delayMs / 2);
      const done = await slow;
      expect(fast.lastPosition).toBe(done.lastPosition + 1);
      delaying = false;
      // A's head was authenticated by A after its commit, then moved on and authenticated by B.
      expect(headMacProblem(keys, 'shared', (await b.chainHead('shared'))!)).toBeNull();
    } finally {
      delaying = false;
      await observer.end();
      await Promise.all([a.close(), b.close()]);
      await dropSchema(schema);
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('lets a command append after at most one background append, however many are waiting for the lock', async () => {
    const schema = freshSchema();
    // Five delivery workers, each a process of its own (one instance runs one append at a time).
    const workers = await Promise.all(Array.from({ length: 5 }, () => openPostgresEventStore({ connectionString: url!, schema, poolSize: 1, background: true })));
    const commands = await openPostgresEventStore({ connectionString: url!, schema, poolSize: 2 });
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    try {
      await commands.appendToStream('warm', [ev('W')]);
      // The writers' lock (its keys as the store derives them), held while appends queue up.
      await blocker.query('BEGIN');
      await blocker.query('SELECT pg_advisory_xact_lock($1, $2)', [0x6e6f7402, createHash('sha256').update(schema).digest().readInt32BE(0)]);
      const waiting = async (n: number) => {
        for (const end = Date.now() + 5000; ; ) {
          const r = await blocker.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`);
          if (r.rows[0]!.n >= n) return;
          if (Date.now() > end) throw new Error(`fewer than ${n} appends waiting`);
          await new Promise((r2) => setTimeout(r2, 5));
        }
      };
      const outcomes = workers.map((w, i) => w.appendToStream(`outcomes-${i}`, [ev('Outcome', { i })]));
      await waiting(5);
      const command = commands.appendToStream('request', [ev('Requested')]);
      await waiting(6);
      await blocker.query('COMMIT');
      const positions = (await Promise.all(outcomes)).map((r) => r.lastPosition);
      const mine = (await command).lastPosition;
      // One background append was already waiting for the writers' lock; the other four waited behind the command.
      expect(positions.filter((p) => p < mine)).toHaveLength(1);
    } finally {
      await blocker.end();
      await Promise.all([...workers, commands].map((s2) => s2.close()));
      await dropSchema(schema);
    }
  });

  it('appends what comes while an append runs in one statement after it, each caller all or nothing and answered on its own', async () => {
    const schema = freshSchema();
    const keys = chainKeys([{ id: 'k1', key: randomBytes(32) }]);
    const store = await openPostgresEventStore({ connectionString: url!, schema, poolSize: 4, chainKeys: keys });
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    const statements = vi.spyOn(pg.Pool.prototype, 'query');
    try {
      await store.appendToStream('s', [ev('A', {}, 'acme')]);
      statements.mockClear();
      await blocker.query('BEGIN');
      await blocker.query('SELECT pg_advisory_xact_lock($1, $2)', [0x6e6f7402, createHash('sha256').update(schema).digest().readInt32BE(0)]);
      // The first waits for the lock; the others come meanwhile.
      const first = store.appendToStream('s', [ev('B', {}, 'acme')], { expectedRevision: 0 });
      await new Promise((r) => setTimeout(r, 50));
      const later = [
        store.appendToStream('s', [ev('C', {}, 'acme')], { expectedRevision: 1 }),
        // Expects what the first append changed: it conflicts, alone.
        store.appendToStreams([{ streamName: 'fresh', events: [ev('D', {}, 'acme')], expectedRevision: 'no_stream' }, { streamName: 's', events: [ev('E', {}, 'acme')], expectedRevision: 0 }]),
        store.appendToStream('s', [ev('F', {}, 'beta'), ev('G', {}, 'beta')], { expectedRevision: 2 }),
        store.appendToStream('empty', []),
      ];
      await blocker.query('COMMIT');
      const [b, c, de, fg, empty] = await Promise.allSettled([first, ...later]);
      expect(b).toMatchObject({ status: 'fulfilled', value: { nextExpectedRevision: 1, lastPosition: 2 } });
      expect(c).toMatchObject({ status: 'fulfilled', value: { nextExpectedRevision: 2, lastPosition: 3 } });
      expect(de).toMatchObject({ status: 'rejected', reason: { name: 'ConcurrencyError', streamName: 's', expected: 0, actual: 2 } });
      expect(fg).toMatchObject({ status: 'fulfilled', value: { nextExpectedRevision: 4, lastPosition: 5 } });
      expect(empty).toMatchObject({ status: 'fulfilled', value: { nextExpectedRevision: -1, lastPosition: 0 } });
      expect(statements.mock.calls.filter(([q]) => (q as { name?: string }).name === 'es-append')).toHaveLength(2);
      expect((await store.readAll({ after: 0, maxCount: 10 })).map((e) => `${e.position}:${e.type}`)).toEqual(['1:A', '2:B', '3:C', '4:F', '5:G']);
      expect(await store.readStream('fresh')).toEqual([]);
      for (const tenant of ['acme', 'beta']) {
        const verifier = new ChainVerifier(tenant);
        for (const e of await store.readAll({ after: 0, maxCount: 10, tenantId: tenant })) verifier.add(e);
        const head = await store.chainHead(tenant);
        expect(verifier.report(head, keys)).toMatchObject({ ok: true, firstBreak: null });
      }
    } finally {
      statements.mockRestore();
      await blocker.end();
      await store.close();
      await dropSchema(schema);
    }
  });

  eventStoreContract('postgres', async () => {
    const schema = freshSchema();
    const store = await openPostgresEventStore({ connectionString: url!, schema });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await dropSchema(schema);
      },
    };
  });

  describe('across instances', () => {
    let stores: EventStore[];
    let schema: string;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ stores, schema, cleanup } = await openInstances(3));
    });
    afterAll(async () => cleanup?.());

    it('creates the schema once when several instances open it together', async () => {
      const { stores: opened, cleanup: done } = await openInstances(6);
      await opened[0]!.appendToStream('s', [ev('A')]);
      expect(await opened[5]!.headPosition()).toBe(1);
      await done();
    });

    it('lets exactly one of two instances win each conflicting append, and a third sees every event once, in order, even when a writer commits late', async () => {
      const [a, b, c] = stores as [EventStore, EventStore, EventStore];
      const start = await c.headPosition();
      const seen: RecordedEvent<AnyEvent>[] = [];
      const sub = c.subscribe({ after: start, batchSize: 7, handler: async (events) => void seen.push(...events) });

      // A blocker holds a row that an append of tenant `slow` needs, so that append stays open
      // while appends of other tenants come in from the other instance.
      const blocker = new pg.Client({ connectionString: url });
      const observer = new pg.Client({ connectionString: url });
      await Promise.all([blocker.connect(), observer.connect()]);
      const blockerPid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      /** Backends waiting for a lock that `pid` holds. */
      const blockedBy = async (pid: number, ms = 5000): Promise<number[]> => {
        const end = Date.now() + ms;
        for (;;) {
          const r = await observer.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [pid]);
          if (r.rows.length > 0) return r.rows.map((row) => row.pid);
          if (Date.now() > end) throw new Error(`nothing blocked by ${pid}`);
          await new Promise((r2) => setTimeout(r2, 2));
        }
      };
      const slowStream = `slow-${randomUUID()}`;
      await a.appendToStream(slowStream, [ev('Slow', {}, 'slow')]);
      const slowRounds = async () => {
        for (let i = 0; i < 6; i++) {
          await blocker.query('BEGIN');
          // A held row makes the slow append wait inside its transaction: before it inserts (chain
          // head), or after its events are inserted with their positions (stream revision).
          if (i % 2 === 0) await blocker.query(`SELECT 1 FROM "${schema}".chain_heads WHERE tenant_id = 'slow' FOR UPDATE`);
          else await blocker.query(`SELECT 1 FROM "${schema}".streams WHERE stream = $1 FOR UPDATE`, [slowStream]);
          const slow = a.appendToStream(slowStream, [ev('Slow', { i }, 'slow')]);
          const [slowPid] = await blockedBy(blockerPid);
          const fast = b.appendToStream(`fast-${randomUUID()}`, [ev('Fast', { i }, 'fast')]);
          await blockedBy(slowPid!);
          await blocker.query('SELECT pg_sleep(0.05)');
          await blocker.query('COMMIT');
          const [s, f] = await Promise.all([slow, fast]);
          // The append that came later waited, rather than commit a later position first.
          expect(f.lastPosition).toBeGreaterThan(s.lastPosition);
        }
      };

      const streams = Array.from({ length: 6 }, () => `race-${randomUUID()}`);
      const rounds = 15;
      let wins = 0;
      const racing = async () => {
        for (let round = 0; round < rounds; round++) {
          await Promise.all(
            streams.map(async (stream, i) => {
              const expectedRevision = round === 0 ? ('no_stream' as const) : round - 1;
              const tenant = `t${i % 2}`;
              const results = await Promise.allSettled([
                a.appendToStream(stream, [ev('A', { round }, tenant)], { expectedRevision }),
                b.appendToStream(stream, [ev('B', { round }, tenant)], { expectedRevision }),
              ]);
              expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
              expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
              wins++;
            }),
          );
        }
      };
      await Promise.all([racing(), slowRounds()]);
      await Promise.all([blocker.end(), observer.end()]);

      expect(wins).toBe(streams.length * rounds);
      for (const stream of streams) {
        expect((await c.readStream(stream)).map((e) => e.revision)).toEqual(Array.from({ length: rounds }, (_, i) => i));
      }
      const end = await c.headPosition();
      await sub.caughtUp(end);
      await sub.stop();
      // Positions are dense here: every position after the start, once, in order.
      expect(seen.map((e) => e.position)).toEqual(Array.from({ length: end - start }, (_, i) => start + 1 + i));
      expect(seen.filter((e) => e.streamName.startsWith('race-'))).toHaveLength(streams.length * rounds);
      expect(seen.filter((e) => (e.type as string) === 'Slow')).toHaveLength(7);
      for (const e of seen) expect(typeof e.position).toBe('number');
    });

    it('wakes a subscriber on one instance at once for an append on another (LISTEN/NOTIFY, not the poll)', async () => {
      const [a, b] = stores as [EventStore, EventStore];
      const stream = `wake-${randomUUID()}`;
      const seenAt = new Map<number, number>();
      const sub = b.subscribe({
        after: await b.headPosition(),
        handler: async (events) => {
          for (const e of events) if (e.streamName === stream) seenAt.set((e.data as unknown as { i: number }).i, Date.now());
        },
      });
      const delays: number[] = [];
      // Ten tries: a 200 ms poll would answer later than 80 ms in most of them.
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 30));
        const appendedAt = Date.now();
        await a.appendToStream(stream, [ev('W', { i })]);
        await until(() => seenAt.has(i));
        delays.push(seenAt.get(i)! - appendedAt);
      }
      await sub.stop();
      expect(Math.max(...delays)).toBeLessThan(80);
    });

    it('a reader of some types reads nothing for appends of other types from any instance, yet moves past them and reads its own', async () => {
      const [a, b] = stores as [EventStore, EventStore];
      const tag = randomUUID().slice(0, 8);
      const seen: string[] = [];
      const sub = b.subscribe({ after: await b.headPosition(), types: [`Rare${tag}`], handler: async (events) => void seen.push(...events.map((e) => e.type)) });
      await sub.caughtUp(await b.headPosition());
      const queries = vi.spyOn(pg.Pool.prototype, 'query');
      try {
        const started = Date.now();
        let last = 0;
        // A fan-out's appends, from the other instance and from the reader's own.
        for (let i = 0; i < 60; i++) last = (await (i % 2 === 0 ? a : b).appendToStream(`busy-${tag}`, [ev(`Busy${tag}`, { i })])).lastPosition;
        await sub.caughtUp(last);
        const reads = queries.mock.calls.filter(([q]) => typeof q === 'object' && q !== null && /^es-(head|read-all)/.test((q as { name?: string }).name ?? ''));
        // Only the fallback poll reads (every 200 ms), not 2 reads per append.
        expect(reads.length).toBeLessThanOrEqual(2 * (Math.ceil((Date.now() - started) / 200) + 1));
        expect(reads.length).toBeLessThan(60);
        const rare = await a.appendToStream(`rare-${tag}`, [ev(`Rare${tag}`)]);
        await sub.caughtUp(rare.lastPosition);
        expect(seen).toEqual([`Rare${tag}`]);
      } finally {
        queries.mockRestore();
        await sub.stop();
      }
    });

    it('listens again after its LISTEN connection is lost', async () => {
      const [a, b] = stores as [EventStore, EventStore];
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      const listenQuery = `LISTEN "${schema}_appended"`;
      const listenerPids = async () =>
        (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE query = $1', [listenQuery])).rows.map((r) => r.pid);
      const before = await listenerPids();
      expect(before).toHaveLength(3);
      // Cut every instance's listener; each reconnects after about a second.
      await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [before]);
      const end = Date.now() + 5000;
      for (;;) {
        const now = await listenerPids();
        if (now.length === 3 && now.every((pid) => !before.includes(pid))) break;
        if (Date.now() > end) throw new Error('listeners did not come back');
        await new Promise((r) => setTimeout(r, 20));
      }
      await admin.end();
      const stream = `relisten-${randomUUID()}`;
      let seenAt = 0;
      const sub = b.subscribe({ after: await b.headPosition(), handler: async (events) => void (seenAt = events.some((e) => e.streamName === stream) ? Date.now() : seenAt) });
      await new Promise((r) => setTimeout(r, 30));
      const appendedAt = Date.now();
      await a.appendToStream(stream, [ev('R')]);
      await until(() => seenAt > 0);
      await sub.stop();
      expect(seenAt - appendedAt).toBeLessThan(80);
    });

    it('keeps a tenant chain valid when two instances append for it concurrently', async () => {
      const [a, b, c] = stores as [EventStore, EventStore, EventStore];
      const tenant = `chain-${randomUUID().slice(0, 8)}`;
      const writer = (store: EventStore, name: string) => async () => {
        for (let i = 0; i < 20; i++) {
          await store.appendToStreams([
            { streamName: `${name}-${i % 3}-${tenant}`, events: [ev('X', { i }, tenant), ev('Y', { i }, 'other')], expectedRevision: 'any' },
            { streamName: `shared-${tenant}`, events: [ev('Z', { name, i }, tenant)], expectedRevision: 'any' },
          ]);
        }
      };
      await Promise.all([writer(a, 'a')(), writer(b, 'b')(), writer(a, 'a2')(), writer(b, 'b2')()]);
      const verifier = new ChainVerifier(tenant);
      let after = 0;
      for (;;) {
        const page = await c.readAll({ after, maxCount: 25, tenantId: tenant });
        for (const e of page) verifier.add(e);
        if (page.length < 25) break;
        after = page[page.length - 1]!.position;
      }
      expect(verifier.report(await c.chainHead(tenant))).toMatchObject({ ok: true, checked: 4 * 20 * 2, firstBreak: null });
      expect((await c.readStream(`shared-${tenant}`)).map((e) => e.revision)).toEqual(Array.from({ length: 80 }, (_, i) => i));
    });
  });
});
