import { MongoClient, MongoServerError, type Collection } from 'mongodb';
import type { LeaseStore } from './port';

type LeaseDoc = { _id: string; holder: string; expiresAt: number; term: number };
/** One per takeover: `_id` `<name>#<term>` is unique, so exactly one instance starts each term. */
type TermDoc = { _id: string; holder: string; at: number };

const isDuplicateKey = (e: unknown) => e instanceof MongoServerError && e.code === 11000;

/**
 * Leases as MongoDB documents. Taking a free or lapsed lease starts a new term, and a term
 * starts by inserting its unique id: an insert is the one write MongoDB and FerretDB both decide
 * atomically between clients (FerretDB's conditional updates are read-then-write, so two clients
 * could both "win" an update filtered on the old holder). Only the term's winner then writes the
 * lease document; its holder renews it in place. Expiry times come from the callers' clocks, as
 * with the SQLite row: instances must keep their clocks within a small fraction of the TTL.
 */
export const openMongoLeaseStore = async (options: Readonly<{ url: string; database: string; now?: () => number }>): Promise<LeaseStore> => {
  const client = new MongoClient(options.url, { maxPoolSize: 4 });
  await client.connect();
  const db = client.db(options.database);
  const leases: Collection<LeaseDoc> = db.collection<LeaseDoc>('leases');
  const terms: Collection<TermDoc> = db.collection<TermDoc>('lease_terms');
  const now = options.now ?? Date.now;

  const startTerm = async (name: string, holder: string, term: number, expiresAt: number): Promise<boolean> => {
    try {
      await terms.insertOne({ _id: `${name}#${term}`, holder, at: now() });
    } catch (e) {
      if (isDuplicateKey(e)) return false;
      throw e;
    }
    await leases.replaceOne({ _id: name }, { holder, expiresAt, term }, { upsert: true });
    await terms.deleteMany({ _id: { $in: [`${name}#${term - 2}`, `${name}#${term - 3}`] } });
    return true;
  };

  return {
    acquire: async (name, holder, ttlMs) => {
      const t = now();
      const lease = await leases.findOne({ _id: name });
      if (!lease) return startTerm(name, holder, 1, t + ttlMs);
      if (lease.holder === holder && lease.expiresAt > t) {
        await leases.updateOne({ _id: name, holder, term: lease.term }, { $set: { expiresAt: t + ttlMs } });
        return true;
      }
      if (lease.expiresAt > t) return false;
      return startTerm(name, holder, lease.term + 1, t + ttlMs);
    },
    release: async (name, holder) => {
      // Lapse it rather than delete it: the term count must go on.
      await leases.updateOne({ _id: name, holder }, { $set: { expiresAt: 0 } });
    },
    close: async () => {
      await client.close();
    },
  };
};
