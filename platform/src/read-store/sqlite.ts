import Database from 'better-sqlite3';
import { deferCheckpoints } from '../sqlite-checkpointer';
import { SYNC_BUSY_MS, whenWritable } from '../sqlite-writable';
import { createHash } from 'node:crypto';
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
  planForFilter,
  checkIdPrefix,
  idPrefixRange,
} from './port';

/** Names of derived tables and indexes: a change of fields gives a new object, never a stale one. */
const digest = (value: unknown): string => createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 12);

type SqlValue = string | number | null;

/** A document value as SQLite sees it through json_extract (true is 1, objects are JSON text). */
const sqlValue = (v: unknown): SqlValue =>
  typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'number' || typeof v === 'string' ? v : v === null || v === undefined ? null : JSON.stringify(v);

/**
 * One declared index. A scalar index filters the collection's table on generated columns; an
 * index holding an array field has a side table, one row per array element, with the other
 * fields and the sort fields copied in, so a filter and a sort are both served by one index.
 */
type Plan = Readonly<{
  fields: readonly string[];
  arrayField: string | null;
  side: Readonly<{ table: string; insert: string }> | null;
  /** Served by the ids' own index (the spec's `idPrefix`): a range of ids, its fields checked. */
  prefix?: true;
}>;

type Compiled = Readonly<{ spec: CollectionSpec; table: string; plans: readonly Plan[]; sides: readonly string[] }>;

/** What a cursor holds: the last item's sort value (when sorted) and id. */
type CursorState = Readonly<{ f?: string; v?: SqlValue; id: string }>;

const encodeCursor = (state: CursorState): string => Buffer.from(JSON.stringify(state)).toString('base64url');

const decodeCursor = (cursor: string, sort: Sort | null): CursorState => {
  let state: unknown;
  try {
    state = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    state = null;
  }
  const s = state as Partial<CursorState> | null;
  const valid =
    s !== null &&
    typeof s === 'object' &&
    typeof s.id === 'string' &&
    (sort ? s.f === sort.field && (s.v === null || ['string', 'number'].includes(typeof s.v)) : s.f === undefined);
  if (!valid) throw new Error('invalid cursor: pass back the cursor of a previous page of the same query, with the same sort');
  return s as CursorState;
};

/**
 * The embedded read store: one SQLite table of JSON documents per collection (`c_<name>`, by
 * rowid, the ids in its primary-key index),
 * scalar index fields as generated columns with SQL indexes over them, and a side table per
 * index that holds an array field, kept in step in the same transaction as the documents.
 */
export const openSqliteReadStore = (
  options: Readonly<{
    path: string;
    /** Whether this connection's commits checkpoint the WAL (see openSqliteEventStore's). */
    checkpoints?: boolean;
  }>,
): ReadStore => {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  if (options.checkpoints === false) deferCheckpoints(db);
  db.exec('CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID');
  const collections = new Map<string, Compiled>();
  const getCheckpoint = db.prepare<[string], { position: number }>('SELECT position FROM checkpoints WHERE name = ?');
  const putCheckpoint = db.prepare<[string, number]>(
    'INSERT INTO checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position',
  );
  const statements = new Map<string, Database.Statement<unknown[]>>();
  const stmt = (sql: string): Database.Statement<unknown[]> => {
    let s = statements.get(sql);
    if (!s) statements.set(sql, (s = db.prepare<unknown[]>(sql)));
    return s;
  };
  const exists = (kind: 'table' | 'index', name: string): boolean =>
    db.prepare<[string, string]>('SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?').get(kind, name) !== undefined;

  const compiled = (name: string): Compiled => {
    const c = collections.get(name);
    if (!c) throw new Error(`collection "${name}" is not declared: call ensureCollections first`);
    return c;
  };

  const ensure = db.transaction((spec: CollectionSpec) => {
    const name = safe('collection', spec.name);
    const table = `c_${name}`;
    const arrays = new Set((spec.arrayFields ?? []).map((f) => safe('field', f)));
    const sorts = (spec.sortFields ?? []).map((f) => safe('field', f));
    for (const f of sorts) if (arrays.has(f)) throw new Error(`${name}: sort field ${f} is an array field`);
    migrateToRowid(table);
    db.exec(`CREATE TABLE IF NOT EXISTS ${table} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)`);
    const columns = new Set(db.prepare<[], { name: string }>(`SELECT name FROM pragma_table_xinfo('${table}')`).all().map((r) => r.name));
    const prefixFields = (spec.idPrefix ?? []).map((f) => safe('field', f));
    if (prefixFields.some((f) => arrays.has(f)) || new Set(prefixFields).size !== prefixFields.length) throw new Error(`${name}: idPrefix [${prefixFields.join(', ')}] must be distinct scalar fields`);
    const scalars = new Set([...spec.indexes.flat().map((f) => safe('field', f)), ...prefixFields, ...sorts].filter((f) => !arrays.has(f)));
    for (const field of scalars) {
      if (!columns.has(`f_${field}`)) db.exec(`ALTER TABLE ${table} ADD COLUMN f_${field} GENERATED ALWAYS AS (json_extract(doc, '$.${field}')) VIRTUAL`);
    }
    dropLegacy(name);

    const made = new Set<string>();
    const plans = spec.indexes.map((fields): Plan => {
      if (new Set(fields).size !== fields.length) throw new Error(`${name}: index [${fields.join(', ')}] repeats a field`);
      const arrayFields = fields.filter((f) => arrays.has(f));
      if (arrayFields.length > 1) throw new Error(`${name}: index [${fields.join(', ')}] has more than one array field`);
      const arrayField = arrayFields[0] ?? null;
      if (arrayField === null) {
        for (const sort of [null, ...sorts]) {
          const cols = [...fields, ...(sort && !fields.includes(sort) ? [sort] : [])].map((f) => `f_${f}`);
          if (cols.length === 0) continue; // the primary key already orders the whole collection by id
          const index = `x_${name}_${digest([fields, sort])}`;
          made.add(index);
          db.exec(`CREATE INDEX IF NOT EXISTS ${index} ON ${table} (${[...cols, 'id'].join(', ')})`);
        }
        return { fields, arrayField, side: null };
      }
      const side = `a_${name}_${digest({ fields, arrayField, sorts })}`;
      const v = fields.map((_, i) => `v${i}`);
      const s = sorts.map((_, i) => `s${i}`);
      const created = !exists('table', side);
      db.exec(`CREATE TABLE IF NOT EXISTS ${side} (${[...v, ...s].join(', ')}, id TEXT NOT NULL, PRIMARY KEY (${[...v, 'id'].join(', ')})) WITHOUT ROWID`);
      db.exec(`CREATE INDEX IF NOT EXISTS ${side}_id ON ${side} (id)`);
      s.forEach((col) => db.exec(`CREATE INDEX IF NOT EXISTS ${side}_${col} ON ${side} (${[...v, col, 'id'].join(', ')})`));
      if (created) {
        // A new index over existing documents (a spec that grew): fill it from them.
        const select = [
          ...fields.map((f) => (f === arrayField ? 'j.value' : `json_extract(c.doc, '$.${f}')`)),
          ...sorts.map((f) => `json_extract(c.doc, '$.${f}')`),
          'c.id',
        ];
        db.exec(
          `INSERT OR IGNORE INTO ${side} SELECT ${select.join(', ')} FROM ${table} c, json_each(c.doc, '$.${arrayField}') j WHERE json_type(c.doc, '$.${arrayField}') = 'array'`,
        );
      }
      const insert = `INSERT OR IGNORE INTO ${side} VALUES (${[...v, ...s, 'id'].map(() => '?').join(', ')})`;
      return { fields, arrayField, side: { table: side, insert } };
    });
    if (prefixFields.length > 0) plans.push({ fields: prefixFields, arrayField: null, side: null, prefix: true });
    // An index no longer declared (one the ids now serve, say) would still be written at every put.
    const stale = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'index'").all().filter((o) => new RegExp(`^x_${name}_[0-9a-f]{12}$`).test(o.name) && !made.has(o.name));
    for (const o of stale) db.exec(`DROP INDEX IF EXISTS ${o.name}`);
    const sides = [...new Set(plans.flatMap((p) => (p.side ? [p.side.table] : [])))];
    collections.set(name, { spec: { ...spec, sortFields: sorts }, table, plans, sides });
  });

  /**
   * Documents live in a rowid table, in the order they were first written, with the ids in an
   * index beside them. Earlier files kept them in a WITHOUT ROWID table, ordered by id: a
   * document of a kilobyte then filled a quarter of a page of the tree's inner levels too, so a
   * tree of 100,000 documents was ten levels deep and a commit of a few hundred scattered writes
   * rewrote several pages per document. Such a table is copied over once, under the lock; its
   * indexes go with it and are made again below.
   */
  const migrateToRowid = (table: string): void => {
    const row = db.prepare<[string], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
    if (!row || !/WITHOUT\s+ROWID/i.test(row.sql)) return;
    db.exec(`ALTER TABLE ${table} RENAME TO ${table}_old`);
    db.exec(`CREATE TABLE ${table} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)`);
    db.exec(`INSERT INTO ${table} (id, doc) SELECT id, doc FROM ${table}_old`);
    db.exec(`DROP TABLE ${table}_old`);
  };

  /** Objects the previous naming scheme (by position in the index list) left behind. */
  const dropLegacy = (name: string): void => {
    const legacy = db
      .prepare<[], { type: string; name: string }>("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index')")
      .all()
      .filter((o) => (o.type === 'table' ? new RegExp(`^m_${name}_\\d+$`) : new RegExp(`^i_${name}_\\d+(_[A-Za-z][A-Za-z0-9_]*)?$`)).test(o.name));
    for (const o of legacy) db.exec(`DROP ${o.type === 'table' ? 'TABLE' : 'INDEX'} IF EXISTS ${o.name}`);
  };

  const unindex = (c: Compiled, id: string): void => {
    for (const side of c.sides) stmt(`DELETE FROM ${side} WHERE id = ?`).run(id);
  };

  const index = (c: Compiled, doc: Doc): void => {
    const sortValues = (c.spec.sortFields ?? []).map((f) => sqlValue(doc[f]));
    for (const plan of c.plans) {
      if (!plan.side || !plan.arrayField) continue;
      const values = doc[plan.arrayField];
      if (!Array.isArray(values)) continue;
      const insert = stmt(plan.side.insert);
      for (const element of new Set(values.map(sqlValue))) {
        insert.run(...plan.fields.map((f) => (f === plan.arrayField ? element : sqlValue(doc[f]))), ...sortValues, doc.id);
      }
    }
  };

  /** Which index serves a filter, or a clear error naming the declared ones. */
  const planFor = (c: Compiled, filter: Filter): Plan => planForFilter(c.spec, c.plans, filter);

  /** Where a plan reads from, and the equality conditions of a filter on it. */
  const source = (c: Compiled, plan: Plan, filter: Filter, sort: Sort | null) => {
    if (plan.side) {
      const sortIndex = sort ? (c.spec.sortFields ?? []).indexOf(sort.field) : -1;
      return {
        from: `${plan.side.table} m JOIN ${c.table} c ON c.id = m.id`,
        doc: 'c.doc',
        id: 'm.id',
        sortColumn: sortIndex >= 0 ? `m.s${sortIndex}` : null,
        where: plan.fields.map((_, i) => `m.v${i} = ?`),
        params: plan.fields.map((f) => sqlValue(filter[f])),
      };
    }
    const range = plan.prefix ? idPrefixRange(plan.fields, filter) : null;
    return {
      from: c.table,
      doc: 'doc',
      id: 'id',
      sortColumn: sort ? `f_${sort.field}` : null,
      where: [...(range ? ['id >= ?', 'id < ?'] : []), ...plan.fields.map((f) => `f_${f} = ?`)],
      params: [...(range ? [range.from, range.to] : []), ...plan.fields.map((f) => sqlValue(filter[f]))],
    };
  };

  const findSync = <D extends Doc>(c: Compiled, filter: Filter, o: FindOptions): Page<D> => {
    const plan = planFor(c, filter);
    if (!Number.isInteger(o.limit) || o.limit < 1) throw new Error(`limit must be a positive integer, got ${o.limit}`);
    const sort = o.sort ?? null;
    if (sort && !(c.spec.sortFields ?? []).includes(sort.field)) {
      throw new Error(`${c.spec.name} cannot be sorted by ${sort.field}; sort fields: [${(c.spec.sortFields ?? []).join(', ')}]`);
    }
    if (sort && sort.direction !== 'asc' && sort.direction !== 'desc') throw new Error(`sort direction must be asc or desc, got ${String(sort.direction)}`);
    checkBelow(c.spec, o);
    const cursor = o.after !== undefined ? decodeCursor(o.after, sort) : null;
    const src = source(c, plan, filter, sort);
    const desc = sort?.direction === 'desc';
    const dir = desc ? 'DESC' : 'ASC';
    const order = src.sortColumn ? `${src.sortColumn} ${dir}, ${src.id} ${dir}` : `${src.id} ASC`;

    // Keyset paging as one or two index range scans. SQLite sorts NULL first, so a sort value
    // that is absent on some documents needs its own segment: comparisons with NULL are false.
    const s = src.sortColumn;
    type Segment = Readonly<{ cond: string | null; params: readonly SqlValue[] }>;
    let segments: readonly Segment[];
    if (!cursor) segments = [{ cond: null, params: [] }];
    else if (!s) segments = [{ cond: `${src.id} > ?`, params: [cursor.id] }];
    else if (cursor.v === null || cursor.v === undefined) {
      segments = desc
        ? [{ cond: `${s} IS NULL AND ${src.id} < ?`, params: [cursor.id] }]
        : [
            { cond: `${s} IS NULL AND ${src.id} > ?`, params: [cursor.id] },
            { cond: `${s} IS NOT NULL`, params: [] },
          ];
    } else {
      segments = desc
        ? [
            { cond: `(${s}, ${src.id}) < (?, ?)`, params: [cursor.v, cursor.id] },
            { cond: `${s} IS NULL`, params: [] },
          ]
        : [{ cond: `(${s}, ${src.id}) > (?, ?)`, params: [cursor.v, cursor.id] }];
    }

    // A bound is one index range: SQLite orders numbers before text and leaves NULL out of any
    // comparison, so `>= ''` keeps text alone and `< number` numbers alone.
    const bound: Segment | null =
      o.below === undefined ? null : typeof o.below === 'string' ? { cond: `${s} >= '' AND ${s} < ?`, params: [o.below] } : { cond: `${s} < ?`, params: [o.below] };

    const docs: string[] = [];
    for (const seg of segments) {
      const want = o.limit + 1 - docs.length;
      if (want <= 0) break;
      const where = [...src.where, ...(seg.cond ? [seg.cond] : []), ...(bound ? [bound.cond] : [])];
      const sql = `SELECT ${src.doc} AS doc FROM ${src.from}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ?`;
      for (const row of stmt(sql).all(...src.params, ...seg.params, ...(bound ? bound.params : []), want) as { doc: string }[]) docs.push(row.doc);
    }
    const items = docs.slice(0, o.limit).map((d) => JSON.parse(d) as D);
    const last = items[items.length - 1];
    const next =
      docs.length > o.limit && last
        ? encodeCursor(sort ? { f: sort.field, v: sqlValue(last[sort.field]), id: last.id } : { id: last.id })
        : null;
    return { items, next };
  };

  const deleteWhere = (c: Compiled, filter: Filter): void => {
    if (Object.keys(filter).length === 0) {
      stmt(`DELETE FROM ${c.table}`).run();
      for (const side of c.sides) stmt(`DELETE FROM ${side}`).run();
      return;
    }
    // In SQL, so a large deletion (a whole tenant) never loads its ids into memory; the side
    // table the filter reads from is emptied last, as the other deletions select through it.
    const plan = planFor(c, filter);
    const selecting = plan.side?.table ?? c.table;
    const range = plan.prefix ? idPrefixRange(plan.fields, filter) : null;
    const matching = `SELECT id FROM ${selecting} WHERE ${[...(range ? ['id >= ?', 'id < ?'] : []), ...plan.fields.map((f, i) => (plan.side ? `v${i} = ?` : `f_${f} = ?`))].join(' AND ')}`;
    const params = [...(range ? [range.from, range.to] : []), ...plan.fields.map((f) => sqlValue(filter[f]))];
    for (const target of [...c.sides.filter((t) => t !== selecting), ...(selecting === c.table ? [] : [c.table]), selecting]) {
      stmt(`DELETE FROM ${target} WHERE id IN (${matching})`).run(...params);
    }
  };

  const apply = (change: Change): void => {
    const c = compiled(change.collection);
    switch (change.op) {
      case 'put': {
        if (typeof change.doc.id !== 'string') throw new Error(`${c.spec.name}: a document needs a string id`);
        checkIdPrefix(c.spec, change.doc);
        stmt(`INSERT INTO ${c.table} (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`).run(change.doc.id, JSON.stringify(change.doc));
        unindex(c, change.doc.id);
        index(c, change.doc);
        return;
      }
      case 'delete':
        stmt(`DELETE FROM ${c.table} WHERE id = ?`).run(change.id);
        unindex(c, change.id);
        return;
      case 'deleteWhere':
        deleteWhere(c, change.filter);
        return;
      default: {
        const never: never = change;
        throw new Error(`unknown change ${JSON.stringify(never)}`);
      }
    }
  };

  const commitTx = db.transaction((checkpoints: readonly CheckpointUpdate[], changes: readonly Change[]) => {
    for (const cp of checkpoints) {
      const actual = getCheckpoint.get(cp.name)?.position ?? null;
      if (actual !== cp.expected) throw new CheckpointConflictError(cp.name, cp.expected, actual);
    }
    for (const change of changes) apply(change);
    for (const cp of checkpoints) putCheckpoint.run(cp.name, cp.next);
  });

  // Past the setup above, a busy file is waited for on timers (whenWritable), not in SQLite's busy
  // handler: projections and delivery commit to this file from threads of their own.
  db.pragma(`busy_timeout = ${SYNC_BUSY_MS}`);

  return {
    ensureCollections: async (specs) => {
      for (const spec of specs) await whenWritable(() => ensure.immediate(spec));
    },
    get: async <D extends Doc>(collection: string, id: string) => {
      const row = stmt(`SELECT doc FROM ${compiled(collection).table} WHERE id = ?`).get(id) as { doc: string } | undefined;
      return row ? (JSON.parse(row.doc) as D) : null;
    },
    getMany: async <D extends Doc>(collection: string, ids: readonly string[]) => {
      const c = compiled(collection);
      const unique = [...new Set(ids)];
      const found = new Map<string, D>();
      for (let i = 0; i < unique.length; i += 500) {
        const chunk = unique.slice(i, i + 500);
        const rows = stmt(`SELECT doc FROM ${c.table} WHERE id IN (${chunk.map(() => '?').join(', ')})`).all(...chunk) as { doc: string }[];
        for (const r of rows) {
          const d = JSON.parse(r.doc) as D;
          found.set(d.id, d);
        }
      }
      // In the order asked for; missing ids are left out.
      return unique.flatMap((id) => (found.has(id) ? [found.get(id)!] : []));
    },
    find: async <D extends Doc>(collection: string, filter: Filter, o: FindOptions) => findSync<D>(compiled(collection), filter, o),
    checkpoint: async (name) => getCheckpoint.get(name)?.position ?? null,
    commit: async (batch) => {
      // IMMEDIATE: the checkpoint check and the writes happen under the write lock, even when
      // another process commits to the same file.
      await whenWritable(() => commitTx.immediate(batch.checkpoints, batch.changes));
    },
    close: async () => {
      db.close();
    },
  };
};
