import Database from 'better-sqlite3';
import {
  CheckpointConflictError,
  type Change,
  type CheckpointUpdate,
  type CollectionSpec,
  type Doc,
  type Filter,
  type FindOptions,
  type Page,
  type ReadStore,
  type Scalar,
} from './port';

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const safe = (kind: string, name: string): string => {
  if (!NAME.test(name)) throw new Error(`invalid ${kind} name "${name}": use letters, digits and '_'`);
  return name;
};

type Compiled = Readonly<{
  spec: CollectionSpec;
  table: string;
  /** Index field lists, each with its side table when it holds an array field. */
  indexes: readonly Readonly<{ fields: readonly string[]; arrayField: string | null; side: string | null }>[];
}>;

const sqlValue = (v: unknown): string | number | null =>
  typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'number' || typeof v === 'string' ? v : v === null || v === undefined ? null : JSON.stringify(v);

const encodeCursor = (parts: readonly unknown[]): string => Buffer.from(JSON.stringify(parts)).toString('base64url');
const decodeCursor = (cursor: string): unknown[] => {
  try {
    const parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(parts) && parts.length >= 1) return parts;
  } catch {
    // reported below
  }
  throw new Error('invalid cursor: pass back the endCursor of a previous page');
};

/**
 * The embedded read store: one SQLite table of JSON documents per collection, scalar index fields
 * as generated columns, and a side table per index that holds an array field (one row per
 * element), kept in step inside the same transaction as the document.
 */
export const openSqliteReadStore = (options: Readonly<{ path: string }>): ReadStore => {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID');
  const collections = new Map<string, Compiled>();
  const getCheckpoint = db.prepare<[string], { position: number }>('SELECT position FROM checkpoints WHERE name = ?');
  const putCheckpoint = db.prepare(
    'INSERT INTO checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position',
  );
  const statements = new Map<string, Database.Statement>();
  const stmt = (sql: string): Database.Statement => {
    let s = statements.get(sql);
    if (!s) statements.set(sql, (s = db.prepare(sql)));
    return s;
  };

  const compiled = (name: string): Compiled => {
    const c = collections.get(name);
    if (!c) throw new Error(`collection "${name}" is not declared: call ensureCollections first`);
    return c;
  };

  const ensure = db.transaction((spec: CollectionSpec) => {
    const table = `c_${safe('collection', spec.name)}`;
    const arrays = new Set(spec.arrayFields ?? []);
    db.exec(`CREATE TABLE IF NOT EXISTS ${table} (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID`);
    const columns = new Set(db.prepare<[], { name: string }>(`SELECT name FROM pragma_table_xinfo('${table}')`).all().map((r) => r.name));
    const scalars = new Set([...spec.indexes.flat(), ...(spec.sortFields ?? [])].filter((f) => !arrays.has(f)));
    for (const field of scalars) {
      const column = `f_${safe('field', field)}`;
      if (!columns.has(column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} GENERATED ALWAYS AS (json_extract(doc, '$.${field}')) VIRTUAL`);
    }
    const indexes = spec.indexes.map((fields, n) => {
      const arrayFields = fields.filter((f) => arrays.has(f));
      if (arrayFields.length > 1) throw new Error(`index ${fields.join(', ')} of ${spec.name} has more than one array field`);
      const arrayField = arrayFields[0] ?? null;
      if (arrayField === null) {
        for (const sort of [null, ...(spec.sortFields ?? [])]) {
          const cols = [...fields, ...(sort ? [sort] : [])].map((f) => `f_${f}`);
          if (cols.length === 0) continue;
          db.exec(`CREATE INDEX IF NOT EXISTS i_${spec.name}_${n}${sort ? `_${sort}` : ''} ON ${table} (${[...cols, 'id'].join(', ')})`);
        }
        return { fields, arrayField, side: null };
      }
      const side = `m_${spec.name}_${n}`;
      const cols = fields.map((_, i) => `v${i}`);
      db.exec(`CREATE TABLE IF NOT EXISTS ${side} (${cols.join(', ')}, id TEXT NOT NULL, PRIMARY KEY (${[...cols, 'id'].join(', ')})) WITHOUT ROWID`);
      db.exec(`CREATE INDEX IF NOT EXISTS ${side}_id ON ${side} (id)`);
      return { fields, arrayField, side };
    });
    collections.set(spec.name, { spec, table, indexes });
  });

  const unindex = (c: Compiled, id: string): void => {
    for (const ix of c.indexes) if (ix.side) stmt(`DELETE FROM ${ix.side} WHERE id = ?`).run(id);
  };

  const index = (c: Compiled, doc: Doc): void => {
    for (const ix of c.indexes) {
      if (!ix.side || !ix.arrayField) continue;
      const values = doc[ix.arrayField];
      if (!Array.isArray(values)) continue;
      const insert = stmt(`INSERT OR IGNORE INTO ${ix.side} VALUES (${ix.fields.map(() => '?').join(', ')}, ?)`);
      for (const element of new Set(values)) {
        insert.run(...ix.fields.map((f) => sqlValue(f === ix.arrayField ? element : doc[f])), doc.id);
      }
    }
  };

  /** Ids of the documents matching a filter; only used for deleteWhere, which is rare. */
  const matchingIds = (c: Compiled, filter: Filter): string[] => {
    const ids: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = findSync(c, filter, { limit: 1000, ...(after ? { after } : {}) });
      ids.push(...page.items.map((d) => d.id));
      if (!page.next) return ids;
      after = page.next;
    }
  };

  const apply = (change: Change): void => {
    const c = compiled(change.collection);
    switch (change.op) {
      case 'put':
        stmt(`INSERT INTO ${c.table} (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`).run(change.doc.id, JSON.stringify(change.doc));
        unindex(c, change.doc.id);
        index(c, change.doc);
        return;
      case 'delete':
        stmt(`DELETE FROM ${c.table} WHERE id = ?`).run(change.id);
        unindex(c, change.id);
        return;
      case 'deleteWhere':
        if (Object.keys(change.filter).length === 0) {
          db.exec(`DELETE FROM ${c.table}`);
          for (const ix of c.indexes) if (ix.side) db.exec(`DELETE FROM ${ix.side}`);
          return;
        }
        for (const id of matchingIds(c, change.filter)) {
          stmt(`DELETE FROM ${c.table} WHERE id = ?`).run(id);
          unindex(c, id);
        }
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

  const findSync = <D extends Doc>(c: Compiled, filter: Filter, o: FindOptions): Page<D> => {
    const keys = Object.keys(filter);
    const ix = c.indexes.find((i) => i.fields.length === keys.length && i.fields.every((f) => keys.includes(f)));
    if (!ix) {
      throw new Error(`no index of ${c.spec.name} covers a filter on [${keys.join(', ')}]; declared: ${c.spec.indexes.map((i) => `[${i.join(', ')}]`).join(' ')}`);
    }
    if (!Number.isInteger(o.limit) || o.limit < 1) throw new Error(`limit must be a positive integer, got ${o.limit}`);
    const sort = o.sort ?? null;
    if (sort && !(c.spec.sortFields ?? []).includes(sort.field)) throw new Error(`${c.spec.name} cannot sort by ${sort.field}`);
    if (sort && ix.side) throw new Error(`${c.spec.name}: sorting is not supported on an array index`);
    const desc = sort?.direction === 'desc';
    const cmp = desc ? '<' : '>';
    const where: string[] = [];
    const params: (string | number | null)[] = [];
    const cursor = o.after ? decodeCursor(o.after) : null;
    let sql: string;
    if (ix.side) {
      ix.fields.forEach((f, i) => {
        where.push(`m.v${i} = ?`);
        params.push(sqlValue(filter[f]));
      });
      if (cursor) {
        where.push('m.id > ?');
        params.push(String(cursor[cursor.length - 1]));
      }
      sql = `SELECT c.doc FROM ${ix.side} m JOIN ${c.table} c ON c.id = m.id WHERE ${where.join(' AND ')} ORDER BY m.id LIMIT ?`;
    } else {
      for (const f of ix.fields) {
        where.push(`f_${f} = ?`);
        params.push(sqlValue(filter[f]));
      }
      if (cursor && sort) {
        where.push(`(f_${sort.field} ${cmp} ? OR (f_${sort.field} = ? AND id ${cmp} ?))`);
        params.push(sqlValue(cursor[0]), sqlValue(cursor[0]), String(cursor[1]));
      } else if (cursor) {
        where.push(`id ${cmp} ?`);
        params.push(String(cursor[cursor.length - 1]));
      }
      const order = sort ? `f_${sort.field} ${desc ? 'DESC' : 'ASC'}, id ${desc ? 'DESC' : 'ASC'}` : `id ${desc ? 'DESC' : 'ASC'}`;
      sql = `SELECT doc FROM ${c.table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ?`;
    }
    const rows = stmt(sql).all(...params, o.limit + 1) as { doc: string }[];
    const items = rows.slice(0, o.limit).map((r) => JSON.parse(r.doc) as D);
    const last = items[items.length - 1];
    const next = rows.length > o.limit && last ? encodeCursor(sort ? [last[sort.field] as Scalar, last.id] : [last.id]) : null;
    return { items, next };
  };

  return {
    ensureCollections: async (specs) => {
      for (const spec of specs) ensure(spec);
    },
    get: async <D extends Doc>(collection: string, id: string) => {
      const row = stmt(`SELECT doc FROM ${compiled(collection).table} WHERE id = ?`).get(id) as { doc: string } | undefined;
      return row ? (JSON.parse(row.doc) as D) : null;
    },
    getMany: async <D extends Doc>(collection: string, ids: readonly string[]) => {
      if (ids.length === 0) return [];
      const c = compiled(collection);
      const out: D[] = [];
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        const rows = db.prepare(`SELECT doc FROM ${c.table} WHERE id IN (${chunk.map(() => '?').join(', ')})`).all(...chunk) as { doc: string }[];
        out.push(...rows.map((r) => JSON.parse(r.doc) as D));
      }
      return out;
    },
    find: async <D extends Doc>(collection: string, filter: Filter, o: FindOptions) => findSync<D>(compiled(collection), filter, o),
    checkpoint: async (name) => getCheckpoint.get(name)?.position ?? null,
    commit: async (batch) => {
      commitTx(batch.checkpoints, batch.changes);
    },
    close: async () => {
      db.close();
    },
  };
};
