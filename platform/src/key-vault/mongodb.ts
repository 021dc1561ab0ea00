import { Binary, MongoClient, MongoServerError, type Collection } from 'mongodb';
import type { KeyVault } from './port';
import { byId, isFerretDb } from '../mongodb/by-id';

type KeyDoc = { _id: string; wrapped: Binary };

const isDuplicateKey = (e: unknown) => e instanceof MongoServerError && e.code === 11000;

/**
 * Wrapped data keys in a MongoDB database of their own (backups and access rights apart from the
 * read models). Destroying a key deletes its document. On MongoDB the freed bytes stay in
 * WiredTiger's files until the page is reused or compacted, so production relies on encryption at
 * rest: without the storage key a deleted document is gone. FerretDB-on-SQLite here is started with
 * `secure_delete`, which zeroes the row when it is deleted.
 */
export const openMongoKeyVault = async (options: Readonly<{ url: string; database: string }>): Promise<KeyVault & { destroyMany(keyIds: readonly string[]): Promise<number> }> => {
  const client = new MongoClient(options.url, { maxPoolSize: 10 });
  await client.connect();
  const keys: Collection<KeyDoc> = client.db(options.database).collection<KeyDoc>('wrapped_keys');
  const byIdOps = byId(await isFerretDb(client.db(options.database)));
  let closed = false;
  const ensureOpen = () => {
    if (closed) throw new Error('key vault is closed');
  };
  const read = async (keyId: string): Promise<Buffer | null> => {
    const doc = await keys.findOne({ _id: keyId });
    return doc ? Buffer.from(doc.wrapped.buffer) : null;
  };
  return {
    putIfAbsent: async (keyId, wrapped) => {
      ensureOpen();
      if (!Buffer.isBuffer(wrapped) || wrapped.length === 0) throw new Error(`wrapped key for ${keyId} must be a non-empty Buffer`);
      try {
        await keys.insertOne({ _id: keyId, wrapped: new Binary(wrapped) });
        return wrapped;
      } catch (e) {
        // Another instance stored one first: theirs is the key.
        if (!isDuplicateKey(e)) throw e;
        const existing = await read(keyId);
        if (!existing) throw new Error(`key ${keyId} was stored and destroyed while this one was being stored`);
        return existing;
      }
    },
    get: async (keyId) => {
      ensureOpen();
      return read(keyId);
    },
    getMany: async (keyIds) => {
      ensureOpen();
      const docs = (await byIdOps.find(keys, [...new Set(keyIds)])) as KeyDoc[];
      return new Map(docs.map((d) => [d._id, Buffer.from(d.wrapped.buffer)]));
    },
    destroy: async (keyId) => {
      ensureOpen();
      return (await keys.deleteOne({ _id: keyId })).deletedCount > 0;
    },
    destroyMany: async (keyIds) => {
      ensureOpen();
      if (keyIds.length === 0) return 0;
      return byIdOps.delete(keys, keyIds);
    },
    list: async (after, limit) => {
      ensureOpen();
      const docs = await keys.find(after === null ? {} : { _id: { $gt: after } }).sort({ _id: 1 }).limit(limit).toArray();
      return docs.map((d) => ({ keyId: d._id, wrapped: Buffer.from(d.wrapped.buffer) }));
    },
    count: async () => {
      ensureOpen();
      return keys.estimatedDocumentCount();
    },
    replaceMany: async (replacements) => {
      ensureOpen();
      let replaced = 0;
      // One conditional update per key (never an upsert): a key destroyed meanwhile stays destroyed.
      // A few at a time: FerretDB holds a connection per statement of a command (docs/design.md 2.1).
      for (let i = 0; i < replacements.length; i += 32) {
        const results = await Promise.all(
          replacements.slice(i, i + 32).map((r) => keys.updateOne({ _id: r.keyId, wrapped: new Binary(r.expected) }, { $set: { wrapped: new Binary(r.wrapped) } })),
        );
        replaced += results.reduce((n, r) => n + r.modifiedCount, 0);
      }
      return replaced;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
};
