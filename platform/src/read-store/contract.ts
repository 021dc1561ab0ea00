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

const all = async (store: ReadStore, collection: string, filter: Filter, limit: number, sort?: Sort): Promise<Item[]> => {
  const items: Item[] = [];
  let after: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await store.find<Item>(collection, filter, { limit, ...(after ? { after } : {}), ...(sort ? { sort } : {}) });
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
