import { randomUUID } from 'node:crypto';
import { MongoBulkWriteError, MongoClient, MongoServerError, type AnyBulkWriteOperation, type Collection, type Db, type Document } from 'mongodb';
import {
  CheckpointConflictError,
  safeName as safe,
  type Change,
  type CheckpointUpdate,
  type CollectionSpec,
  type Doc,
  type Filter,
  type FindOptions,
  type Page,
  type ReadStore,
  type Sort,
  checkBelow,
  withIdPrefixIndex,
  checkIdPrefix,
} from './port';
import { byId, isFerretDb } from '../mongodb/by-id';

type CheckpointDoc = { _id: string; value: number };
/** The right to move one checkpoint from one value: `_id` is unique, so exactly one writer holds it. */
type ClaimDoc = { _id: string; name: string; commit: string };
/** What a commit must do, for whoever finishes or undoes it. */
type CommitDoc = { _id: string; at: number; checkpoints: CheckpointUpdate[]; chunks: number };
/** A commit's fate, decided once by a unique insert: its writer's `committed` or a recoverer's `aborted`. */
type OutcomeDoc = { _id: string; state: 'committed' | 'aborted'; at: number };
type JournalDoc = { _id: string; commit: string; seq: number; changes: Change[] };

/** A commit older than this whose writer has not finished it is taken to be dead and recovered. */
const STALE_MS = 15_000;
/** How long a commit waits for another commit holding one of its checkpoints. */
const CLAIM_WAIT_MS = 30_000;
/** Journal chunks stay far below MongoDB's 16 MB document limit. */
const CHUNK_BYTES = 4 * 1024 * 1024;

type CursorState = Readonly<{ f?: string; v?: unknown; id: string }>;
const encodeCursor = (s: CursorState) => Buffer.from(JSON.stringify(s)).toString('base64url');
const decodeCursor = (cursor: string, sort: Sort | null): CursorState => {
  let s: Partial<CursorState> | null = null;
  try {
    s = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Partial<CursorState>;
  } catch {
    s = null;
  }
  const valid =
    s !== null &&
    typeof s === 'object' &&
    typeof s.id === 'string' &&
    (sort ? s.f === sort.field && (s.v === null || ['string', 'number', 'boolean'].includes(typeof s.v)) : s.f === undefined);
  if (!valid) throw new Error('invalid cursor: pass back the cursor of a previous page of the same query, with the same sort');
  return s as CursorState;
};

const toMongo = (doc: Doc): Document => {
  const { id, ...rest } = doc;
  return { ...rest, _id: id };
};
const fromMongo = <D extends Doc>(m: Document): D => {
  const { _id, ...rest } = m;
  return { id: _id as string, ...rest } as D;
};

const isDuplicateKey = (e: unknown) => e instanceof MongoServerError && e.code === 11000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type MongoReadStoreOptions = Readonly<{
  url: string;
  database: string;
  /** For tests: a commit dies after this step, as a crashed process would leave it. */
  failAfter?: 'journal' | 'marker' | 'apply';
  /** For tests: recover unfinished commits of any age. */
  staleAfterMs?: number;
}>;

/**
 * The read store on MongoDB (and FerretDB, which has no multi-document transactions, change
 * streams or TTL indexes, and whose conditional updates are not atomic between connections: two
 * clients can both match `{value: 0}` and both write; a unique `_id` on insert is the one
 * primitive both servers make atomic, so the commit protocol rests on inserts alone).
 * Documents live in one collection per read model with `_id` = id and their fields as they are,
 * so declared indexes are MongoDB indexes and an array field matches by containment natively.
 *
 * A commit, all or nothing without transactions, is a small redo log:
 *   1. record the commit, then claim each checkpoint at its expected value by inserting
 *      `<name>@<expected>` into `_claims` (one writer per transition), and check the value;
 *      a conflict releases the claims and changes nothing;
 *   2. write the changes as journal chunks;
 *   3. insert the commit's outcome `committed`: the atomic point (a recoverer that finds the
 *      writer dead inserts `aborted` instead, and only one of the two inserts succeeds);
 *   4. apply the changes: per collection, unordered bulk writes (deletes by filter are barriers);
 *   5. move the checkpoints, then drop the claims, the journal and the records.
 * A crash before 3 leaves nothing visible; after it, the commit is rolled forward (the changes
 * are idempotent) by the next reader of its checkpoints, the next writer that meets its claim,
 * or the next start. Readers of documents may see a commit half applied while step 4 runs;
 * checkpoints, which decide what is replayed, never are.
 */
export const openMongoReadStore = async (options: MongoReadStoreOptions): Promise<ReadStore> => {
  const client = new MongoClient(options.url, { maxPoolSize: 10 });
  await client.connect();
  const db: Db = client.db(options.database);
  const checkpoints: Collection<CheckpointDoc> = db.collection<CheckpointDoc>('_checkpoints');
  const claims: Collection<ClaimDoc> = db.collection<ClaimDoc>('_claims');
  const commits: Collection<CommitDoc> = db.collection<CommitDoc>('_commits');
  const outcomes: Collection<OutcomeDoc> = db.collection<OutcomeDoc>('_outcomes');
  const journal: Collection<JournalDoc> = db.collection<JournalDoc>('_journal');
  await journal.createIndex({ commit: 1, seq: 1 });
  await claims.createIndex({ name: 1 });
  await claims.createIndex({ commit: 1 });
  // FerretDB: writes as deletes and inserts, and ids looked up one by one (see apply and byId).
  const ferret = await isFerretDb(db);
  const byIdOps = byId(ferret);
  const staleMs = options.staleAfterMs ?? STALE_MS;
  const specs = new Map<string, CollectionSpec>();
  const coll = (name: string) => db.collection(`r_${name}`);
  let closed = false;

  const spec = (name: string): CollectionSpec => {
    const s = specs.get(name);
    if (!s) throw new Error(`collection "${name}" is not declared: call ensureCollections first`);
    return s;
  };

  // ---- applying changes (idempotent: a commit rolled forward twice ends the same) -------------

  const apply = async (changes: readonly Change[]): Promise<void> => {
    const byCollection = new Map<string, Change[]>();
    for (const c of changes) {
      byCollection.set(c.collection, [...(byCollection.get(c.collection) ?? []), c]);
    }
    await Promise.all(
      [...byCollection].map(async ([name, ops]) => {
        const target = coll(name);
        // Puts and deletes by id fold to the last one per id; a delete by filter is a barrier.
        let segment = new Map<string, Change>();
        const flush = async () => {
          const ops = [...segment.values()];
          segment = new Map();
          if (ops.length === 0) return;
          if (!ferret) {
            await target.bulkWrite(
              ops.map((op): AnyBulkWriteOperation =>
                op.op === 'put'
                  ? { replaceOne: { filter: { _id: op.doc.id } as Document, replacement: toMongo(op.doc), upsert: true } }
                  : { deleteOne: { filter: { _id: (op as { id: string }).id } as Document } },
              ),
              { ordered: false },
            );
            return;
          }
          // FerretDB holds a connection per statement of an update command until the command
          // ends (100 per database: a bulk of upserts deadlocks it), so a segment is deletes by id
          // and one insert: new documents, the common case while a read model grows, need no lookup.
          const deletes = ops.flatMap((op) => (op.op === 'delete' ? [op.id] : []));
          await byIdOps.delete(target, deletes);
          const puts = ops.flatMap((op) => (op.op === 'put' ? [toMongo(op.doc)] : []));
          if (puts.length === 0) return;
          const existing = await insertNew(target, puts);
          if (existing.size === 0) return;
          // Documents that exist are replaced in place, one command each: a delete then an insert
          // left a moment in which a reader found an existing notification missing.
          const gone = await byIdOps.replace(target, puts.filter((d) => existing.has(d._id as string)));
          // Deleted meanwhile by a concurrent roll-forward of the same commit, which inserts equal ones.
          if (gone.length > 0) await insertNew(target, gone);
        };
        for (const op of ops) {
          if (op.op === 'put') segment.set(op.doc.id, op);
          else if (op.op === 'delete') segment.set(op.id, op);
          else {
            await flush();
            // Validated when committed; recovery may run before the collection is declared.
            await target.deleteMany({ ...op.filter });
          }
        }
        await flush();
      }),
    );
  };

  /** Inserts documents, returning the ids that already existed (and were left as they were). */
  const insertNew = async (target: Collection, docs: Document[]): Promise<Set<string>> => {
    try {
      await target.insertMany(docs, { ordered: false });
      return new Set();
    } catch (e) {
      if (!(e instanceof MongoBulkWriteError)) throw e;
      const errors = [e.writeErrors].flat();
      if (!errors.every((w) => w.code === 11000)) throw e;
      return new Set(errors.map((w) => docs[w.index]!._id as string));
    }
  };

  const readJournal = async (commitId: string): Promise<Change[]> =>
    (await journal.find({ commit: commitId }).sort({ seq: 1 }).toArray()).flatMap((j) => j.changes);

  const claimId = (name: string, value: number | null) => `${name}@${value === null ? '-' : value}`;
  const valueOf = async (name: string): Promise<number | null> => (await checkpoints.findOne({ _id: name }))?.value ?? null;

  /** Steps 4 and 5 of a committed commit. */
  const finish = async (commit: CommitDoc, changes?: readonly Change[]): Promise<void> => {
    await apply(changes ?? (await readJournal(commit._id)));
    if (options.failAfter === 'apply') throw new Error('failpoint: after apply');
    // Only the holder of a transition's claim writes the value: one writer per checkpoint doc.
    for (const cp of commit.checkpoints) await checkpoints.replaceOne({ _id: cp.name }, { value: cp.next }, { upsert: true });
    await claims.deleteMany({ commit: commit._id });
    await journal.deleteMany({ commit: commit._id });
    await commits.deleteOne({ _id: commit._id });
    await outcomes.deleteOne({ _id: commit._id });
  };

  /** Decides a commit's fate if nobody has: aborted, unless its writer inserted `committed` first. */
  const fate = async (commitId: string): Promise<OutcomeDoc['state']> => {
    try {
      await outcomes.insertOne({ _id: commitId, state: 'aborted', at: Date.now() });
      return 'aborted';
    } catch (e) {
      if (!isDuplicateKey(e)) throw e;
      return (await outcomes.findOne({ _id: commitId }))?.state ?? 'aborted';
    }
  };

  /** Recovers a commit whose writer is gone: forward when committed, back otherwise. */
  const recover = async (commitId: string): Promise<void> => {
    const commit = await commits.findOne({ _id: commitId });
    if ((await fate(commitId)) === 'committed' && commit) return finish(commit);
    // Aborted (or its record is already gone): release what it held. The `aborted` outcome stays,
    // so a writer that was only slow finds its commit refused rather than half undone.
    await claims.deleteMany({ commit: commitId });
    await journal.deleteMany({ commit: commitId });
    await commits.deleteOne({ _id: commitId });
  };

  /** A commit whose writer should have finished by now (or a claim whose commit record is gone). */
  const isStale = async (commitId: string): Promise<boolean> => {
    const [commit, outcome] = await Promise.all([commits.findOne({ _id: commitId }), outcomes.findOne({ _id: commitId })]);
    if (!commit) return true;
    if (outcome?.state === 'committed') return Date.now() - outcome.at >= staleMs;
    return Date.now() - commit.at >= staleMs;
  };

  const recoverStale = async (): Promise<void> => {
    for (const c of await commits.find({ at: { $lte: Date.now() - staleMs } }).toArray()) await recover(c._id);
    // Claims whose commit record is gone (a writer died between recording and claiming).
    for (const claim of await claims.find({}).toArray()) if (!(await commits.findOne({ _id: claim.commit }))) await claims.deleteOne({ _id: claim._id, commit: claim.commit });
    await outcomes.deleteMany({ state: 'aborted', at: { $lte: Date.now() - 24 * 3600_000 } });
  };

  /** Claims one checkpoint transition, or throws the conflict. Waits for a live holder. */
  const claim = async (commitId: string, cp: CheckpointUpdate): Promise<void> => {
    const until = Date.now() + CLAIM_WAIT_MS;
    const id = claimId(cp.name, cp.expected);
    for (;;) {
      try {
        await claims.insertOne({ _id: id, name: cp.name, commit: commitId });
      } catch (e) {
        if (!isDuplicateKey(e)) throw e;
        const holder = await claims.findOne({ _id: id });
        if (!holder) continue;
        // Another commit is moving this checkpoint from the same value: wait for it (it will
        // have moved it, and this commit conflicts), or recover it when its writer is gone.
        if (await isStale(holder.commit)) await recover(holder.commit);
        else if (Date.now() > until) throw new Error(`checkpoint ${cp.name}: still held by commit ${holder.commit} after ${CLAIM_WAIT_MS} ms`);
        else await sleep(5);
        continue;
      }
      // The claim is ours; the value is written only by claim holders, so this read is settled.
      const actual = await valueOf(cp.name);
      if (actual !== cp.expected) {
        await claims.deleteOne({ _id: id, commit: commitId });
        throw new CheckpointConflictError(cp.name, cp.expected, actual);
      }
      return;
    }
  };

  const chunks = (changes: readonly Change[]): Change[][] => {
    const out: Change[][] = [];
    let current: Change[] = [];
    let bytes = 0;
    for (const c of changes) {
      const size = JSON.stringify(c).length;
      if (current.length > 0 && bytes + size > CHUNK_BYTES) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(c);
      bytes += size;
    }
    if (current.length > 0) out.push(current);
    return out;
  };

  const commit: ReadStore['commit'] = async (batch) => {
    if (closed) throw new Error('read store is closed');
    for (const c of batch.changes) {
      const sp = spec(c.collection);
      if (c.op === 'deleteWhere') mongoFilter(sp, c.filter);
      if (c.op === 'put') checkIdPrefix(sp, c.doc);
    }
    // One change and no checkpoint is atomic by itself (deletes by filter are idempotent).
    if (batch.checkpoints.length === 0 && batch.changes.length <= 1) return apply(batch.changes);
    const commitId = randomUUID();
    const ordered = [...batch.checkpoints].sort((a, b) => a.name.localeCompare(b.name));
    const parts = chunks(batch.changes);
    const record: CommitDoc = { _id: commitId, at: Date.now(), checkpoints: ordered, chunks: parts.length };
    await commits.insertOne(record);
    try {
      for (const cp of ordered) await claim(commitId, cp);
      if (parts.length > 0) await journal.insertMany(parts.map((changes, seq) => ({ _id: `${commitId}:${seq}`, commit: commitId, seq, changes })));
    } catch (e) {
      await claims.deleteMany({ commit: commitId });
      await journal.deleteMany({ commit: commitId });
      await commits.deleteOne({ _id: commitId });
      throw e;
    }
    if (options.failAfter === 'journal') throw new Error('failpoint: after journal');
    try {
      await outcomes.insertOne({ _id: commitId, state: 'committed', at: Date.now() });
    } catch (e) {
      if (isDuplicateKey(e)) throw new Error(`commit ${commitId} was rolled back by another instance (it took longer than ${staleMs} ms); retry it`);
      throw e;
    }
    if (options.failAfter === 'marker') throw new Error('failpoint: after marker');
    await finish(record, batch.changes);
  };

  // ---- queries ------------------------------------------------------------------------------

  const mongoFilter = (s: CollectionSpec, filter: Filter): Document => {
    const keys = Object.keys(filter);
    for (const k of keys) {
      const v = filter[k];
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        throw new Error(`${s.name}: filter value of ${k} must be a string, number or boolean, got ${v === null ? 'null' : typeof v}`);
      }
    }
    if (!s.indexes.some((i) => i.length === keys.length && i.every((f) => keys.includes(f)))) {
      const declared = s.indexes.map((i) => `[${i.join(', ')}]`).join(' ');
      throw new Error(`no index of ${s.name} serves a filter on [${keys.join(', ')}]; declared: ${declared || 'none'}`);
    }
    return { ...filter };
  };

  const find = async <D extends Doc>(collection: string, filter: Filter, o: FindOptions): Promise<Page<D>> => {
    const s = spec(collection);
    const base = mongoFilter(s, filter);
    if (!Number.isInteger(o.limit) || o.limit < 1) throw new Error(`limit must be a positive integer, got ${o.limit}`);
    const sort = o.sort ?? null;
    if (sort && !(s.sortFields ?? []).includes(sort.field)) {
      throw new Error(`${s.name} cannot be sorted by ${sort.field}; sort fields: [${(s.sortFields ?? []).join(', ')}]`);
    }
    if (sort && sort.direction !== 'asc' && sort.direction !== 'desc') throw new Error(`sort direction must be asc or desc, got ${String(sort.direction)}`);
    checkBelow(s, o);
    const cursor = o.after !== undefined ? decodeCursor(o.after, sort) : null;
    const desc = sort?.direction === 'desc';
    // Missing and null sort values come first ascending (MongoDB's order, and SQLite's).
    let after: Document | null = null;
    if (cursor && !sort) after = { _id: { $gt: cursor.id } };
    else if (cursor && sort) {
      const f = sort.field;
      const v = cursor.v ?? null;
      if (v === null) after = desc ? { [f]: null, _id: { $lt: cursor.id } } : { $or: [{ [f]: null, _id: { $gt: cursor.id } }, { [f]: { $ne: null } }] };
      else
        after = desc
          ? { $or: [{ [f]: { $lt: v } }, { [f]: v, _id: { $lt: cursor.id } }, { [f]: null }] }
          : { $or: [{ [f]: { $gt: v } }, { [f]: v, _id: { $gt: cursor.id } }] };
    }
    // $lt compares within a type (MongoDB's type bracketing): other types and missing fields are left out.
    const bound: Document | null = sort && o.below !== undefined ? { [sort.field]: { $lt: o.below } } : null;
    const parts = [base, ...(after ? [after] : []), ...(bound ? [bound] : [])];
    const query = parts.length > 1 ? { $and: parts } : base;
    const order: Record<string, 1 | -1> = sort ? { [sort.field]: desc ? -1 : 1, _id: desc ? -1 : 1 } : { _id: 1 };
    const rows = await coll(collection).find(query).sort(order).limit(o.limit + 1).toArray();
    const items = rows.slice(0, o.limit).map((r) => fromMongo<D>(r));
    const last = items.at(-1);
    const next =
      rows.length > o.limit && last
        ? encodeCursor(sort ? { f: sort.field, v: (last as Record<string, unknown>)[sort.field] ?? null, id: last.id } : { id: last.id })
        : null;
    return { items, next };
  };

  await recoverStale();

  return {
    ensureCollections: async (list) => {
      for (const declared of list) {
        const s = withIdPrefixIndex(declared);
        const name = safe('collection', s.name);
        const arrays = new Set((s.arrayFields ?? []).map((f) => safe('field', f)));
        const sorts = (s.sortFields ?? []).map((f) => safe('field', f));
        for (const f of sorts) if (arrays.has(f)) throw new Error(`${name}: sort field ${f} is an array field`);
        const keys: Record<string, 1>[] = [];
        for (const fields of s.indexes) {
          if (new Set(fields).size !== fields.length) throw new Error(`${name}: index [${fields.join(', ')}] repeats a field`);
          if (fields.filter((f) => arrays.has(safe('field', f))).length > 1) throw new Error(`${name}: index [${fields.join(', ')}] has more than one array field`);
          for (const sort of [null, ...sorts]) {
            const cols = [...fields, ...(sort && !fields.includes(sort) ? [sort] : [])];
            if (cols.length > 0) keys.push(Object.fromEntries([...cols, '_id'].map((f) => [f, 1 as const])));
          }
        }
        const target = coll(name);
        for (const key of keys) {
          try {
            await target.createIndex(key);
          } catch (e) {
            // Another process created the same index at the same moment.
            if (!(e instanceof MongoServerError && [11000, 85, 86].includes(Number(e.code)))) throw e;
          }
        }
        specs.set(name, { ...s, sortFields: sorts });
      }
    },
    get: async <D extends Doc>(collection: string, id: string) => {
      spec(collection);
      const m = await coll(collection).findOne({ _id: id as unknown as Document['_id'] });
      return m ? fromMongo<D>(m) : null;
    },
    getMany: async <D extends Doc>(collection: string, ids: readonly string[]) => {
      spec(collection);
      return (await byIdOps.find(coll(collection), ids)).map((m) => fromMongo<D>(m));
    },
    find,
    checkpoint: async (name) => {
      // A commit that died after its outcome still holds a claim here: roll it forward first.
      for (const c of await claims.find({ name }).toArray()) if (await isStale(c.commit)) await recover(c.commit);
      return valueOf(name);
    },
    commit,
    close: async () => {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
};
