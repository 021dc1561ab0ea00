import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStoreContract } from './contract';
import { CheckpointConflictError, type Change, type CollectionSpec, type Doc, type ReadStore, type Sort } from './port';
import { openPostgresReadStore, type PostgresReadStore } from './postgres';

const url = process.env.POSTGRES_URL;
if (!url) console.warn('postgres read store: skipped, POSTGRES_URL is not set (start servers with npm run servers:up)');

const freshSchema = () => `rs_${randomBytes(6).toString('hex')}`;

const admin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
};
const dropSchema = (schema: string) => admin((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));

type User = Doc & { tenantId: string; groupIds: string[]; partition: number; rank?: number | null; name: string };
const users: CollectionSpec = { name: 'users', indexes: [[], ['tenantId'], ['tenantId', 'groupIds', 'partition']], arrayFields: ['groupIds'], sortFields: ['rank'] };
const user = (id: string, over: Partial<User> = {}): User => ({ id, tenantId: 't1', groupIds: [], partition: 0, rank: 0, name: id, ...over });
const puts = (docs: readonly Doc[], collection = 'users'): Change[] => docs.map((doc) => ({ op: 'put' as const, collection, doc }));

const pageAll = async (store: ReadStore, filter: Record<string, string | number>, limit: number, sort?: Sort): Promise<User[]> => {
  const out: User[] = [];
  let after: string | undefined;
  do {
    const page = await store.find<User>('users', filter, { limit, ...(after ? { after } : {}), ...(sort ? { sort } : {}) });
    out.push(...page.items);
    after = page.next ?? undefined;
  } while (after);
  return out;
};

/** Nulls and absent values first, then by value, ties by id (byte order): the order every adapter gives. */
const byRank = (a: User, b: User): number => {
  const [x, y] = [a.rank ?? null, b.rank ?? null];
  if (x !== y) return x === null ? -1 : y === null ? 1 : x - y;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
};

describe.skipIf(!url)('postgres read store', () => {
  readStoreContract('postgres', async () => {
    const schema = freshSchema();
    const store = await openPostgresReadStore({ connectionString: url!, schema });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await dropSchema(schema);
      },
    };
  });

  describe('adapter', () => {
    const schema = freshSchema();
    let store: PostgresReadStore;
    let other: PostgresReadStore;
    beforeAll(async () => {
      [store, other] = await Promise.all([openPostgresReadStore({ connectionString: url!, schema }), openPostgresReadStore({ connectionString: url!, schema, poolSize: 4 })]);
      await Promise.all([store.ensureCollections([users]), other.ensureCollections([users])]);
    });
    afterAll(async () => {
      await Promise.all([store?.close(), other?.close()]);
      await dropSchema(schema);
    });

    it('creates the schema and collections once when several instances open and declare them together', async () => {
      const shared = freshSchema();
      const opened = await Promise.all(Array.from({ length: 5 }, () => openPostgresReadStore({ connectionString: url!, schema: shared, poolSize: 2 })));
      try {
        await Promise.all(opened.map((s) => s.ensureCollections([users, { name: 'other', indexes: [['tenantId']], sortFields: ['rank'] }])));
        await opened[0]!.commit({ checkpoints: [], changes: puts([user('a', { groupIds: ['g'] })]) });
        expect((await opened[4]!.find('users', { tenantId: 't1', groupIds: 'g', partition: 0 }, { limit: 5 })).items).toEqual([user('a', { groupIds: ['g'] })]);
      } finally {
        await Promise.all(opened.map((s) => s.close()));
        await dropSchema(shared);
      }
    });

    it('keeps collections whose names differ only in case apart, and reopens them', async () => {
      const specs: CollectionSpec[] = ['consentSchedule', 'ConsentSchedule'].map((name) => ({ name, indexes: [['tenantId'], ['tenantId', 'tags']], arrayFields: ['tags'], sortFields: ['dueAt'] }));
      await store.ensureCollections(specs);
      await store.commit({ checkpoints: [], changes: specs.map((s, i) => ({ op: 'put' as const, collection: s.name, doc: { id: 'a', tenantId: 't', tags: ['x'], dueAt: String(i) } })) });
      const reopened = await openPostgresReadStore({ connectionString: url!, schema });
      try {
        await reopened.ensureCollections(specs);
        for (const [i, s] of specs.entries()) {
          expect((await reopened.find(s.name, { tenantId: 't', tags: 'x' }, { limit: 5, sort: { field: 'dueAt', direction: 'asc' } })).items).toEqual([{ id: 'a', tenantId: 't', tags: ['x'], dueAt: String(i) }]);
        }
      } finally {
        await reopened.close();
      }
    });

    it('round-trips numbers as numbers and booleans as booleans, filters on them by type and sorts numbers as numbers', async () => {
      await store.ensureCollections([{ name: 'typed', indexes: [['flag'], ['n']], sortFields: ['n'] }]);
      const docs = [
        { id: 'a', flag: true, n: 2, big: 2 ** 53 - 1, x: 0.1 + 0.2, nested: { deep: [1, false, null, 'é'] } },
        { id: 'b', flag: 'true', n: '2', big: -1e-7, x: 1e21, nested: {} },
        { id: 'c', flag: true, n: 10, big: 0, x: -0.5, nested: null },
        { id: 'd', flag: true, n: 9, big: 1, x: 3, nested: [] },
      ];
      await store.commit({ checkpoints: [], changes: puts(docs, 'typed') });
      expect(await store.getMany('typed', ['a', 'b', 'c', 'd'])).toEqual(docs);
      expect((await store.find('typed', { flag: 'true' }, { limit: 5 })).items.map((d) => d.id)).toEqual(['b']);
      expect((await store.find('typed', { n: 2 }, { limit: 5 })).items.map((d) => d.id)).toEqual(['a']);
      expect((await store.find('typed', { n: '2' }, { limit: 5 })).items.map((d) => d.id)).toEqual(['b']);
      // As text, 10 would come before 2 and 9.
      const asc = await store.find('typed', { flag: true }, { limit: 2, sort: { field: 'n', direction: 'asc' } });
      expect(asc.items.map((d) => d.id)).toEqual(['a', 'd']);
      expect((await store.find('typed', { flag: true }, { limit: 2, after: asc.next!, sort: { field: 'n', direction: 'asc' } })).items.map((d) => d.id)).toEqual(['c']);
    });

    it('changes nothing when a commit meets a moved checkpoint: documents, array results and checkpoint untouched', async () => {
      const tenant = `t-${randomBytes(3).toString('hex')}`;
      const cp = `cp-${tenant}`;
      const before = [user('k1', { tenantId: tenant, groupIds: ['g'] }), user('k2', { tenantId: tenant, groupIds: ['g', 'h'] })];
      await store.commit({ checkpoints: [{ name: cp, expected: null, next: 1 }], changes: puts(before) });
      await other.commit({ checkpoints: [{ name: cp, expected: 1, next: 2 }], changes: [] });
      const stale = store.commit({
        checkpoints: [{ name: cp, expected: 1, next: 3 }],
        changes: [
          ...puts([user('k1', { tenantId: tenant, groupIds: ['h'], name: 'changed' }), user('k3', { tenantId: tenant, groupIds: ['g'] })]),
          { op: 'delete', collection: 'users', id: 'k2' },
          { op: 'deleteWhere', collection: 'users', filter: { tenantId: tenant, groupIds: 'h', partition: 0 } },
        ],
      });
      await expect(stale).rejects.toBeInstanceOf(CheckpointConflictError);
      await expect(stale).rejects.toMatchObject({ expected: 1, actual: 2 });
      expect(await store.checkpoint(cp)).toBe(2);
      expect(await store.getMany('users', ['k1', 'k2', 'k3'])).toEqual(before);
      expect((await pageAll(store, { tenantId: tenant, groupIds: 'g', partition: 0 }, 10)).map((d) => d.id)).toEqual(['k1', 'k2']);
      expect((await pageAll(store, { tenantId: tenant, groupIds: 'h', partition: 0 }, 10)).map((d) => d.id)).toEqual(['k2']);
    });

    it('lets exactly one of two instances committing from the same checkpoint win, and keeps only its changes', async () => {
      for (let round = 0; round < 10; round++) {
        const cp = `race-${round}-${randomBytes(3).toString('hex')}`;
        // Round 0 races from no checkpoint at all (an insert decides), the others from a value.
        const expected = round === 0 ? null : 0;
        if (expected !== null) await store.commit({ checkpoints: [{ name: cp, expected: null, next: 0 }], changes: [] });
        const results = await Promise.allSettled(
          [store, other].map((s, i) => s.commit({ checkpoints: [{ name: cp, expected, next: i + 1 }], changes: puts([user(`${cp}-${i}`), user(`${cp}-x`, { name: `by ${i}` })]) })),
        );
        const won = results.findIndex((r) => r.status === 'fulfilled');
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect((results[1 - won] as PromiseRejectedResult).reason).toMatchObject({ name: 'CheckpointConflictError', actual: won + 1 });
        expect(await store.checkpoint(cp)).toBe(won + 1);
        expect((await store.get<User>('users', `${cp}-x`))?.name).toBe(`by ${won}`);
        expect(await store.get('users', `${cp}-${1 - won}`)).toBeNull();
      }
    });

    it('makes the second of two overlapping commits wait for the first and then fail, whichever order they commit in', async () => {
      const cp = `held-${randomBytes(3).toString('hex')}`;
      await store.commit({ checkpoints: [{ name: cp, expected: null, next: 0 }], changes: [] });
      await admin(async (blocker) => {
        // Both commits queue behind a transaction holding the checkpoint's row: they overlap for sure.
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM "${schema}".checkpoints WHERE name = $1 FOR UPDATE`, [cp]);
        const pid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        const racing = [store, other].map((s, i) => s.commit({ checkpoints: [{ name: cp, expected: 0, next: i + 1 }], changes: puts([user(`${cp}-${i}`)]) }));
        const settled = Promise.allSettled(racing);
        await admin(async (observer) => {
          for (const end = Date.now() + 5000; ; ) {
            const r = await observer.query('SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [pid]);
            if (r.rows.length >= 1) break;
            if (Date.now() > end) throw new Error('no commit waited');
            await new Promise((r2) => setTimeout(r2, 5));
          }
        });
        await blocker.query('COMMIT');
        const results = await settled;
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const won = results.findIndex((r) => r.status === 'fulfilled');
        expect((results[1 - won] as PromiseRejectedResult).reason).toBeInstanceOf(CheckpointConflictError);
        expect(await store.getMany('users', [`${cp}-0`, `${cp}-1`])).toEqual([user(`${cp}-${won}`)]);
      });
    });

    it('keeps array results exact when two instances write the same document at once', async () => {
      const tenant = `w-${randomBytes(3).toString('hex')}`;
      const id = `${tenant}:x`;
      const member = (groupIds: string[]) => user(id, { tenantId: tenant, groupIds });
      await store.commit({ checkpoints: [], changes: puts([member(['g'])]) });
      await admin(async (blocker) => {
        // Both commits queue for the document's row, so the second starts before the first commits.
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM "${schema}".c_users WHERE id = $1 FOR UPDATE`, [id]);
        const pid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        const waiting = async (n: number) => {
          for (const end = Date.now() + 5000; ; ) {
            // The first waits for the blocker, the second for the first.
            const r = await admin((o) =>
              o.query(
                `SELECT count(*)::int AS n FROM pg_stat_activity a WHERE $1 = ANY(pg_blocking_pids(a.pid))
                 OR EXISTS (SELECT 1 FROM pg_stat_activity b WHERE $1 = ANY(pg_blocking_pids(b.pid)) AND b.pid = ANY(pg_blocking_pids(a.pid)))`,
                [pid],
              ),
            );
            if (r.rows[0].n >= n) return;
            if (Date.now() > end) throw new Error('the commits did not queue');
            await new Promise((r2) => setTimeout(r2, 5));
          }
        };
        const first = other.commit({ checkpoints: [], changes: puts([member(['h'])]) });
        await waiting(1);
        const second = store.commit({ checkpoints: [], changes: puts([member(['k'])]) });
        await waiting(2);
        await blocker.query('COMMIT');
        await Promise.all([first, second]);
      });
      const stored = (await store.get<User>('users', id))!;
      for (const g of ['g', 'h', 'k']) {
        const found = (await pageAll(store, { tenantId: tenant, groupIds: g, partition: 0 }, 10)).map((d) => d.id);
        expect(found, g).toEqual(stored.groupIds.includes(g) ? [id] : []);
      }
    });

    it('reads by index only while it writes and gets documents, before any ANALYZE', async () => {
      // A fresh collection: autovacuum has not analyzed it, the planner has no statistics.
      const name = `fresh${randomBytes(4).toString('hex')}`;
      /** Scan counts of the collection's tables, once `ready` holds: backends report them when they end. */
      const scans = async (ready: (rows: { seq: number; idx: number }[]) => boolean) => {
        for (const end = Date.now() + 5000; ; ) {
          const rows = await admin(async (c) =>
            (await c.query<{ t: string; seq: string; idx: string }>('SELECT relname AS t, seq_scan AS seq, idx_scan AS idx FROM pg_stat_user_tables WHERE schemaname = $1 AND relname LIKE $2 ORDER BY 1', [schema, `%${name}%`])).rows.map((r) => ({ seq: Number(r.seq), idx: Number(r.idx) })),
          );
          if (rows.length === 2 && ready(rows)) return rows;
          if (Date.now() > end) throw new Error(`scan counts not reported: ${JSON.stringify(rows)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      const declarer = await openPostgresReadStore({ connectionString: url!, schema, poolSize: 1 });
      await declarer.ensureCollections([{ ...users, name }]);
      await declarer.close();
      // Building an index scans its table: those are the scans before any document.
      const before = await scans((rows) => rows.every((r) => r.seq > 0));
      const own = await openPostgresReadStore({ connectionString: url!, schema, poolSize: 1 });
      await own.ensureCollections([{ ...users, name }]);
      const docs = (round: number) => Array.from({ length: 400 }, (_, i) => user(`f${String((i * 37) % 400).padStart(3, '0')}`, { groupIds: [`g${(i + round) % 3}`, 'all'], partition: i % 4 }));
      const live = new Set<string>();
      for (let round = 0; round < 8; round++) {
        const written = docs(round).slice(round * 40);
        const deleted = Array.from({ length: 10 }, (_, i) => `f${String(round * 30 + i).padStart(3, '0')}`);
        await own.commit({ checkpoints: [], changes: [...puts(written, name), ...deleted.map((id) => ({ op: 'delete' as const, collection: name, id }))] });
        for (const d of written) live.add(d.id);
        for (const id of deleted) live.delete(id);
      }
      expect((await own.getMany(name, docs(0).map((d) => d.id))).map((d) => d.id).sort()).toEqual([...live].sort());
      await own.close();
      const after = await scans((rows) => rows.every((r) => r.idx > 0));
      expect(after.map((r) => r.seq)).toEqual(before.map((r) => r.seq));
    });

    it('pages 2,000 documents with ties on the sort field by an index scan, without gaps or duplicates, both ways', async () => {
      const tenant = `p-${randomBytes(3).toString('hex')}`;
      const docs = Array.from({ length: 2000 }, (_, i) => {
        const d = user(`u${String((i * 7919) % 2000).padStart(4, '0')}`, { tenantId: tenant, rank: i % 5, groupIds: i % 3 ? ['g', `h${i % 4}`] : ['h1'], partition: i % 2 });
        if (i % 11 === 0) delete (d as Partial<User>).rank;
        if (i % 13 === 0) d.rank = null;
        return d;
      });
      await store.commit({ checkpoints: [], changes: puts(docs) });
      const check = async (filter: Record<string, string | number>, matching: User[]) => {
        const byId = [...matching].sort((a, b) => (a.id < b.id ? -1 : 1)).map((d) => d.id);
        const asc = [...matching].sort(byRank).map((d) => d.id);
        for (const limit of [1, 37, 500]) {
          if (limit === 1 && matching.length > 700) continue;
          expect((await pageAll(store, filter, limit)).map((d) => d.id)).toEqual(byId);
          expect((await pageAll(store, filter, limit, { field: 'rank', direction: 'asc' })).map((d) => d.id)).toEqual(asc);
          expect((await pageAll(store, filter, limit, { field: 'rank', direction: 'desc' })).map((d) => d.id)).toEqual([...asc].reverse());
        }
      };
      await check({ tenantId: tenant }, docs);
      for (const [g, p] of [['g', 0], ['g', 1], ['h1', 1], ['h1', 0]] as const) {
        await check({ tenantId: tenant, groupIds: g, partition: p }, docs.filter((d) => d.groupIds.includes(g) && d.partition === p));
      }
    });

    it('passes over a side row whose document is gone, and pages on past it', async () => {
      const tenant = `o-${randomBytes(3).toString('hex')}`;
      await store.commit({ checkpoints: [], changes: puts(['a', 'b', 'c', 'd'].map((id) => user(`${tenant}:${id}`, { tenantId: tenant, groupIds: ['g'] }))) });
      // As a commit racing a delete by filter can leave it (see deleteWhereStatement).
      await admin((c) => c.query(`DELETE FROM "${schema}".c_users WHERE id = ANY($1)`, [[`${tenant}:b`, `${tenant}:c`]]));
      const filter = { tenantId: tenant, groupIds: 'g', partition: 0 };
      const first = await store.find<User>('users', filter, { limit: 2 });
      expect(first.items.map((d) => d.id)).toEqual([`${tenant}:a`]);
      expect((await pageAll(store, filter, 2)).map((d) => d.id)).toEqual([`${tenant}:a`, `${tenant}:d`]);
      expect((await pageAll(store, filter, 1, { field: 'rank', direction: 'desc' })).map((d) => d.id)).toEqual([`${tenant}:d`, `${tenant}:a`]);
      await store.commit({ checkpoints: [], changes: puts([user(`${tenant}:b`, { tenantId: tenant, groupIds: ['h'] })]) });
      expect((await pageAll(store, filter, 2)).map((d) => d.id)).toEqual([`${tenant}:a`, `${tenant}:d`]);
    });

    it('serves a page of a group and partition from the index, not a scan of 20,000 documents', async () => {
      const tenant = `e-${randomBytes(3).toString('hex')}`;
      const docs = Array.from({ length: 20_000 }, (_, i) =>
        user(`${tenant}:u${String(i).padStart(6, '0')}`, { tenantId: tenant, groupIds: [`g${i % 10}`, `g${(i * 7) % 13}`], partition: i % 16, rank: i % 100 }),
      );
      for (let i = 0; i < docs.length; i += 5000) await store.commit({ checkpoints: [], changes: puts(docs.slice(i, i + 5000)) });
      // As autovacuum would have by now.
      await admin(async (c) => {
        for (const { t } of (await c.query<{ t: string }>('SELECT tablename AS t FROM pg_tables WHERE schemaname = $1', [schema])).rows) await c.query(`ANALYZE "${schema}"."${t}"`);
      });
      const filter = { tenantId: tenant, groupIds: 'g3', partition: 5 };
      const first = await store.find<User>('users', filter, { limit: 20 });
      expect(first.items.map((d) => d.id)).toEqual(docs.filter((d) => d.groupIds.includes('g3') && d.partition === 5).slice(0, 20).map((d) => d.id));
      for (const options of [{ limit: 20, after: first.next! }, { limit: 20, sort: { field: 'rank', direction: 'desc' } as const }]) {
        const plan = await store.explain('users', filter, options);
        // A range of the side table's index, then one primary-key lookup per row.
        expect(plan).toMatch(/Index Only Scan (Backward )?using a_users_\w+ on a_users_\w+ m\n/);
        expect(plan).toMatch(/SubPlan[\s\S]*Index Scan using c_users_pkey/);
        expect(plan).not.toMatch(/Seq Scan|Sort|Join/);
      }
      const ascending = { field: 'rank', direction: 'asc' } as const;
      const sorted = await store.find<User>('users', { tenantId: tenant }, { limit: 20, sort: ascending });
      const plan = await store.explain('users', { tenantId: tenant }, { limit: 20, after: sorted.next!, sort: ascending });
      expect(plan).toMatch(/Index Scan/);
      expect(plan).not.toMatch(/Seq Scan|Sort/);
    });

    it('reads what lies below a bound from one index range, sorted, without reading what lies above', async () => {
      // Shaped like the notifications read model: one tenant's sends by request time.
      const sends: CollectionSpec = { name: 'sends', indexes: [['tenantId'], ['status']], sortFields: ['requestedAt'] };
      await store.ensureCollections([sends]);
      const hour = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 3_600_000).toISOString();
      const docs = Array.from({ length: 20_000 }, (_, i) => ({ id: `s${String(i).padStart(6, '0')}`, tenantId: `t${i % 4}`, status: 'COMPLETED', requestedAt: hour((i * 7919) % 20_000) }));
      for (let i = 0; i < docs.length; i += 5000) await store.commit({ checkpoints: [], changes: puts(docs.slice(i, i + 5000), 'sends') });
      await admin((c) => c.query(`ANALYZE "${schema}".c_sends`));
      const options = { limit: 100, sort: { field: 'requestedAt', direction: 'asc' }, below: hour(15_000) } as const;
      const page = await store.find<Doc & { requestedAt: string }>('sends', { tenantId: 't1' }, options);
      const expected = docs.filter((d) => d.tenantId === 't1' && d.requestedAt < hour(15_000)).sort((a, b) => (a.requestedAt < b.requestedAt ? -1 : 1));
      expect(page.items.map((d) => d.id)).toEqual(expected.slice(0, 100).map((d) => d.id));
      const plan = await store.explain('sends', { tenantId: 't1' }, options);
      expect(plan).toMatch(/Index Scan using x_sends_\w+ on c_sends\n\s+Index Cond: .* < '"20\d\d-/);
      expect(plan).not.toMatch(/Seq Scan|Sort/);
    });
  });
});
