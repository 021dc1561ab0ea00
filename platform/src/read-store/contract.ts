import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointConflictError, type CollectionSpec, type Doc, type Filter, type ReadStore, type Sort } from './port';

type Item = Doc & { tenantId: string; tags: string[]; rank: number; active: boolean; label: string };

const spec = (name: string): CollectionSpec => ({
  name,
  indexes: [[], ['tenantId'], ['tenantId', 'tags'], ['active']],
  arrayFields: ['tags'],
  sortFields: ['rank'],
});

const all = async (store: ReadStore, collection: string, filter: Filter, limit: number, sort?: Sort, below?: string | number): Promise<Item[]> => {
  const items: Item[] = [];
  let after: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await store.find<Item>(collection, filter, { limit, ...(after ? { after } : {}), ...(sort ? { sort } : {}), ...(below !== undefined ? { below } : {}) });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.items);
    if (!page.next) return items;
    after = page.next;
  }
  throw new Error('paging did not end');
};

/** The behaviour every read store adapter must have. Each test uses a collection of its own. */
export function readStoreContract(adapterName: string, open: () => Promise<{ store: ReadStore; cleanup: () => Promise<void> }>): void {
  describe(`read store contract: ${adapterName}`, () => {
    let store: ReadStore;
    let cleanup: () => Promise<void>;
    const collection = async () => {
      const name = `c${randomUUID().replace(/-/g, '')}`;
      await store.ensureCollections([spec(name)]);
      return name;
    };
    const item = (id: string, over: Partial<Item> = {}): Item => ({ id, tenantId: 't1', tags: [], rank: 0, active: true, label: id, ...over });
    const put = (c: string, ...docs: Item[]) => store.commit({ checkpoints: [], changes: docs.map((doc) => ({ op: 'put' as const, collection: c, doc })) });

    beforeAll(async () => {
      ({ store, cleanup } = await open());
    });
    afterAll(async () => cleanup());

    it('puts, gets, gets many and deletes documents', async () => {
      const c = await collection();
      await put(c, item('a', { label: '한국어 ✓' }), item('b'));
      expect(await store.get<Item>(c, 'a')).toEqual(item('a', { label: '한국어 ✓' }));
      expect(await store.get(c, 'zz')).toBeNull();
      expect((await store.getMany<Item>(c, ['b', 'a', 'zz'])).map((d) => d.id).sort()).toEqual(['a', 'b']);
      await put(c, item('a', { label: 'changed' }));
      expect((await store.get<Item>(c, 'a'))?.label).toBe('changed');
      await store.commit({ checkpoints: [], changes: [{ op: 'delete', collection: c, id: 'a' }] });
      expect(await store.get(c, 'a')).toBeNull();
    });

    it('a document being rewritten is never missing to a reader', async () => {
      const c = await collection();
      await put(c, item('a', { rank: 0 }), item('b', { rank: 0 }));
      let writing = true;
      const writer = (async () => {
        for (let i = 1; writing; i++) await put(c, item('a', { rank: i }), item('b', { rank: i }), item(`new-${i}`));
      })();
      const seen: (number | null)[] = [];
      try {
        for (let i = 0; i < 60; i++) {
          const [a, many] = await Promise.all([store.get<Item>(c, 'a'), store.getMany<Item>(c, ['b'])]);
          seen.push(a?.rank ?? null, many[0]?.rank ?? null);
        }
      } finally {
        writing = false;
        await writer;
      }
      expect(seen.filter((r) => r === null)).toEqual([]);
      // The reads did overlap rewrites: later reads saw later versions.
      expect(Math.max(...(seen as number[]))).toBeGreaterThan(0);
    });

    it('filters on scalar fields, booleans included, and on array fields by containment', async () => {
      const c = await collection();
      await put(c, item('a', { tags: ['x', 'y'] }), item('b', { tags: ['y'], active: false }), item('c', { tenantId: 't2', tags: ['x'] }));
      expect((await all(store, c, { tenantId: 't1' }, 10)).map((d) => d.id)).toEqual(['a', 'b']);
      expect((await all(store, c, { tenantId: 't1', tags: 'x' }, 10)).map((d) => d.id)).toEqual(['a']);
      expect((await all(store, c, { tenantId: 't1', tags: 'y' }, 10)).map((d) => d.id)).toEqual(['a', 'b']);
      expect((await all(store, c, { tenantId: 't2', tags: 'y' }, 10)).map((d) => d.id)).toEqual([]);
      expect((await all(store, c, { active: false }, 10)).map((d) => d.id)).toEqual(['b']);
      expect((await all(store, c, {}, 10)).map((d) => d.id)).toEqual(['a', 'b', 'c']);
    });

    it('refuses a filter no index covers', async () => {
      const c = await collection();
      await expect(store.find(c, { label: 'a' }, { limit: 1 })).rejects.toThrow(/index/);
    });

    it('pages through many documents without gaps or duplicates, in id order and by a sort field both ways', async () => {
      const c = await collection();
      const docs = Array.from({ length: 53 }, (_, i) => item(`id-${String(i).padStart(3, '0')}`, { rank: i % 7, tags: i % 2 ? ['odd'] : ['even'] }));
      await put(c, ...[...docs].reverse());
      expect((await all(store, c, { tenantId: 't1' }, 10)).map((d) => d.id)).toEqual(docs.map((d) => d.id));
      expect((await all(store, c, { tenantId: 't1', tags: 'odd' }, 4)).map((d) => d.id)).toEqual(docs.filter((_, i) => i % 2).map((d) => d.id));
      const byRank = [...docs].sort((a, b) => a.rank - b.rank || a.id.localeCompare(b.id));
      expect((await all(store, c, { tenantId: 't1' }, 6, { field: 'rank', direction: 'asc' })).map((d) => d.id)).toEqual(byRank.map((d) => d.id));
      expect((await all(store, c, { tenantId: 't1' }, 6, { field: 'rank', direction: 'desc' })).map((d) => d.id)).toEqual([...byRank].reverse().map((d) => d.id));
      const first = await store.find<Item>(c, { tenantId: 't1' }, { limit: 53 });
      expect(first.items).toHaveLength(53);
      expect(first.next).toBeNull();
    });

    it('pages sorted results of an array filter, both ways', async () => {
      const c = await collection();
      const docs = Array.from({ length: 25 }, (_, i) => item(`m${String(i).padStart(2, '0')}`, { rank: (i * 7) % 5, tags: i % 3 === 0 ? ['멤버', 'x'] : ['멤버'] }));
      await put(c, ...docs);
      const byRank = [...docs].sort((a, b) => a.rank - b.rank || a.id.localeCompare(b.id)).map((d) => d.id);
      expect((await all(store, c, { tenantId: 't1', tags: '멤버' }, 4, { field: 'rank', direction: 'asc' })).map((d) => d.id)).toEqual(byRank);
      expect((await all(store, c, { tenantId: 't1', tags: '멤버' }, 4, { field: 'rank', direction: 'desc' })).map((d) => d.id)).toEqual([...byRank].reverse());
      const xs = docs.filter((_, i) => i % 3 === 0);
      expect((await all(store, c, { tenantId: 't1', tags: 'x' }, 2, { field: 'rank', direction: 'asc' })).map((d) => d.id)).toEqual(
        [...xs].sort((a, b) => a.rank - b.rank || a.id.localeCompare(b.id)).map((d) => d.id),
      );
    });

    it('pages by a sort field that some documents lack, without gaps or duplicates', async () => {
      const c = await collection();
      const docs = Array.from({ length: 20 }, (_, i) => {
        const d = item(`n${String(i).padStart(2, '0')}`, { rank: i % 4 });
        if (i % 3 === 0) delete (d as Partial<Item>).rank;
        return d;
      });
      await put(c, ...docs);
      for (const direction of ['asc', 'desc'] as const) {
        for (const limit of [1, 3, 7]) {
          const ids = (await all(store, c, { tenantId: 't1' }, limit, { field: 'rank', direction })).map((d) => d.id);
          expect(ids).toHaveLength(20);
          expect(new Set(ids).size).toBe(20);
        }
      }
      const asc = (await all(store, c, {}, 3, { field: 'rank', direction: 'asc' })).map((d) => d.rank ?? null);
      expect(asc.slice(0, 7)).toEqual(Array(7).fill(null));
      expect(asc.slice(7)).toEqual([...asc.slice(7)].sort());
    });

    it('refuses a cursor of another sort, an undeclared sort field and a bad limit', async () => {
      const c = await collection();
      await put(c, item('a'), item('b'), item('c'));
      const byId = await store.find(c, { tenantId: 't1' }, { limit: 1 });
      await expect(store.find(c, { tenantId: 't1' }, { limit: 1, after: byId.next!, sort: { field: 'rank', direction: 'asc' } })).rejects.toThrow(/cursor/);
      await expect(store.find(c, { tenantId: 't1' }, { limit: 1, after: 'not a cursor' })).rejects.toThrow(/cursor/);
      await expect(store.find(c, { tenantId: 't1' }, { limit: 1, sort: { field: 'label', direction: 'asc' } })).rejects.toThrow(/sort/);
      await expect(store.find(c, { tenantId: 't1' }, { limit: 0 })).rejects.toThrow(/limit/);
    });

    it('reads only what lies below a bound of the sort field, page by page, values of the bound type only', async () => {
      const c = await collection();
      const numbers = Array.from({ length: 12 }, (_, i) => item(`a${String(i).padStart(2, '0')}`, { rank: (i * 5) % 12 }));
      const days = Array.from({ length: 6 }, (_, i) => item(`b${i}`, { rank: `2026-01-0${6 - i}T00:00:00.000Z` as unknown as number }));
      const none = item('c0');
      delete (none as Partial<Item>).rank;
      await put(c, ...numbers, ...days, none, item('z', { tenantId: 't2', rank: 1 }));
      const asc = { field: 'rank', direction: 'asc' } as const;
      const ids = (items: readonly Item[]) => items.map((d) => d.id);
      const byRank = (a: Item, b: Item) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : a.id < b.id ? -1 : 1);
      for (const limit of [1, 4, 50]) {
        expect(ids(await all(store, c, { tenantId: 't1' }, limit, asc, 7))).toEqual(ids(numbers.filter((d) => d.rank < 7).sort(byRank)));
        expect(ids(await all(store, c, { tenantId: 't1' }, limit, asc, '2026-01-04'))).toEqual(['b5', 'b4', 'b3']);
      }
      expect(ids(await all(store, c, { tenantId: 't1' }, 2, { field: 'rank', direction: 'desc' }, 3))).toEqual(ids(numbers.filter((d) => d.rank < 3).sort(byRank).reverse()));
      expect(await all(store, c, { tenantId: 't1' }, 5, asc, 0)).toEqual([]);
      expect(ids(await all(store, c, { tenantId: 't1' }, 5, asc, '9'))).toEqual(['b5', 'b4', 'b3', 'b2', 'b1', 'b0']);
      expect(ids(await all(store, c, {}, 2, asc, 2))).toEqual(['a00', 'a05', 'z']);
      await expect(store.find(c, { tenantId: 't1' }, { limit: 1, below: 3 })).rejects.toThrow(/below/);
    });

    it('needs an index with no fields to list a whole collection', async () => {
      const name = `c${randomUUID().replace(/-/g, '')}`;
      await store.ensureCollections([{ name, indexes: [['tenantId']] }]);
      await expect(store.find(name, {}, { limit: 5 })).rejects.toThrow(/index/);
      await expect(store.find(name, { tenantId: 't1', label: 'x' }, { limit: 5 })).rejects.toThrow(/index/);
    });

    it('serves existing documents from an index declared later', async () => {
      const name = `c${randomUUID().replace(/-/g, '')}`;
      await store.ensureCollections([{ name, indexes: [['tenantId']] }]);
      await put(name, item('a', { tags: ['x'], label: 'l1' }), item('b', { tags: ['x', 'y'], label: 'l2' }));
      await store.ensureCollections([{ name, indexes: [['tenantId'], ['tenantId', 'tags'], ['label']], arrayFields: ['tags'], sortFields: ['rank'] }]);
      expect((await all(store, name, { tenantId: 't1', tags: 'y' }, 10)).map((d) => d.id)).toEqual(['b']);
      expect((await all(store, name, { tenantId: 't1', tags: 'x' }, 1, { field: 'rank', direction: 'desc' })).map((d) => d.id)).toEqual(['b', 'a']);
      expect((await all(store, name, { label: 'l1' }, 10)).map((d) => d.id)).toEqual(['a']);
    });

    it('moves a document between array-filter results when its array changes', async () => {
      const c = await collection();
      await put(c, item('a', { tags: ['x'] }));
      await put(c, item('a', { tags: ['y'] }));
      expect(await all(store, c, { tenantId: 't1', tags: 'x' }, 10)).toEqual([]);
      expect((await all(store, c, { tenantId: 't1', tags: 'y' }, 10)).map((d) => d.id)).toEqual(['a']);
      await store.commit({ checkpoints: [], changes: [{ op: 'delete', collection: c, id: 'a' }] });
      expect(await all(store, c, { tenantId: 't1', tags: 'y' }, 10)).toEqual([]);
    });

    it('deletes by filter, from array-filter results too', async () => {
      const c = await collection();
      await put(c, item('a', { tags: ['x'] }), item('b', { tags: ['x'] }), item('c', { tenantId: 't2', tags: ['x'] }));
      await store.commit({ checkpoints: [], changes: [{ op: 'deleteWhere', collection: c, filter: { tenantId: 't1' } }] });
      expect((await all(store, c, {}, 10)).map((d) => d.id)).toEqual(['c']);
      expect(await all(store, c, { tenantId: 't1', tags: 'x' }, 10)).toEqual([]);
      await store.commit({ checkpoints: [], changes: [{ op: 'deleteWhere', collection: c, filter: {} }] });
      expect(await all(store, c, {}, 10)).toEqual([]);
      expect(await all(store, c, { tenantId: 't2', tags: 'x' }, 10)).toEqual([]);
    });

    it('deletes by an array filter: the documents leave every other result too', async () => {
      const c = await collection();
      await put(c, item('a', { tags: ['x', 'y'] }), item('b', { tags: ['y'] }), item('c', { tags: ['x'] }), item('d', { tenantId: 't2', tags: ['x'] }));
      await store.commit({ checkpoints: [], changes: [{ op: 'deleteWhere', collection: c, filter: { tenantId: 't1', tags: 'x' } }] });
      expect(await store.getMany(c, ['a', 'c'])).toEqual([]);
      expect((await all(store, c, { tenantId: 't1', tags: 'y' }, 10)).map((d) => d.id)).toEqual(['b']);
      expect((await all(store, c, { tenantId: 't1', tags: 'x' }, 10)).map((d) => d.id)).toEqual([]);
      expect((await all(store, c, { tenantId: 't2', tags: 'x' }, 10)).map((d) => d.id)).toEqual(['d']);
      expect((await all(store, c, { tenantId: 't1' }, 10)).map((d) => d.id)).toEqual(['b']);
      await put(c, item('a', { tags: ['y'] }));
      expect((await all(store, c, { tenantId: 't1', tags: 'y' }, 10)).map((d) => d.id)).toEqual(['a', 'b']);
    });

    it('serves a filter on the fields that begin the ids, exactly, though values hold the separator', async () => {
      type Entry = Doc & { tenantId: string; userId: string; n: number };
      const c = `c${randomUUID().replace(/-/g, '')}`;
      await store.ensureCollections([{ name: c, indexes: [['n']], idPrefix: ['tenantId', 'userId'] }]);
      const entry = (tenantId: string, userId: string, n: number): Entry => ({ id: `${tenantId}:${userId}:${String(n).padStart(3, '0')}`, tenantId, userId, n });
      // Ids of user "u:x", of tenant "t:u" and of user "u" of tenant "t" all begin with "t:u:".
      const mine = [1, 2, 3, 4, 5].map((n) => entry('t', 'u', n));
      const others = [entry('t', 'u:x', 1), entry('t:u', 'x', 2), entry('t', 'u:', 3), entry('t', 'uu', 1), entry('s', 'u', 1), entry('t', 'v', 9)];
      await store.commit({ checkpoints: [], changes: [...others, ...mine].map((doc) => ({ op: 'put' as const, collection: c, doc })) });
      const list = async (tenantId: string, userId: string, limit: number) => (await all(store, c, { tenantId, userId }, limit)).map((d) => d.id);
      expect(await list('t', 'u', 2)).toEqual(mine.map((d) => d.id));
      expect(await list('t', 'u:x', 1)).toEqual(['t:u:x:001']);
      expect(await list('t:u', 'x', 10)).toEqual(['t:u:x:002']);
      expect(await list('t', 'nobody', 10)).toEqual([]);
      await store.commit({ checkpoints: [], changes: [{ op: 'deleteWhere', collection: c, filter: { tenantId: 't', userId: 'u' } }] });
      expect(await list('t', 'u', 10)).toEqual([]);
      expect((await store.getMany<Entry>(c, others.map((d) => d.id))).length).toBe(others.length);
      // A document whose id does not begin with its fields would be missed by the range: refused.
      await expect(store.commit({ checkpoints: [], changes: [{ op: 'put', collection: c, doc: { id: 'elsewhere', tenantId: 't', userId: 'u', n: 1 } }] })).rejects.toThrow(/does not begin with/);
      expect(await list('t', 'u', 10)).toEqual([]);
    });

    it('moves checkpoints with optimistic checks, together with the changes or not at all', async () => {
      const c = await collection();
      const name = `cp-${c}`;
      expect(await store.checkpoint(name)).toBeNull();
      await store.commit({ checkpoints: [{ name, expected: null, next: 5 }], changes: [{ op: 'put', collection: c, doc: item('a') }] });
      expect(await store.checkpoint(name)).toBe(5);
      const stale = store.commit({ checkpoints: [{ name, expected: null, next: 9 }], changes: [{ op: 'put', collection: c, doc: item('b') }, { op: 'delete', collection: c, id: 'a' }] });
      await expect(stale).rejects.toBeInstanceOf(CheckpointConflictError);
      await expect(stale).rejects.toMatchObject({ checkpointName: name, expected: null, actual: 5 });
      expect(await store.checkpoint(name)).toBe(5);
      expect(await store.get(c, 'b')).toBeNull();
      expect(await store.get(c, 'a')).not.toBeNull();
    });

    it('commits several checkpoints atomically: one conflict moves none', async () => {
      const c = await collection();
      const [x, y] = [`x-${c}`, `y-${c}`];
      await store.commit({ checkpoints: [{ name: x, expected: null, next: 1 }, { name: y, expected: null, next: 1 }], changes: [] });
      await expect(
        store.commit({ checkpoints: [{ name: x, expected: 1, next: 2 }, { name: y, expected: 0, next: 2 }], changes: [{ op: 'put', collection: c, doc: item('a') }] }),
      ).rejects.toBeInstanceOf(CheckpointConflictError);
      expect([await store.checkpoint(x), await store.checkpoint(y)]).toEqual([1, 1]);
      expect(await store.get(c, 'a')).toBeNull();
    });

    it('ensures collections idempotently, keeping their documents', async () => {
      const c = await collection();
      await put(c, item('a', { tags: ['x'] }));
      await store.ensureCollections([spec(c)]);
      expect((await all(store, c, { tenantId: 't1', tags: 'x' }, 10)).map((d) => d.id)).toEqual(['a']);
    });
  });
}
