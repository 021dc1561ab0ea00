import { createHash } from 'node:crypto';
import pg from 'pg';
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
  withIdPrefixIndex,
  checkIdPrefix,
} from './port';

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** Advisory lock namespace of the DDL (the event store uses 0x6e6f7401 and 0x6e6f7402). */
const DDL_LOCK = 0x6e6f7411;
/** A deadlock aborts one transaction of two; the commit is all or nothing, so it is run again. */
const DEADLOCK_RETRIES = 3;

const digest = (value: unknown): string => createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 12);

/** Derived table and index names: readable, unique by digest, within PostgreSQL's 63 bytes. */
const objectName = (prefix: string, collection: string, definition: unknown): string =>
  `${prefix}_${collection.slice(0, 40)}_${digest([collection, definition])}`;

/**
 * What equality compares: a JSON value's canonical text as jsonb prints it, so `"5"` is not `5`
 * and `true` is not `"true"`, compared byte by byte (a B-tree of jsonb keys measured three times
 * slower to insert into: each comparison walks both values and the collation).
 */
const key = (jsonb: string): string => `((${jsonb})::text COLLATE "C")`;
/** A field of the document (NULL when absent), as an equality key. */
const field = (f: string, alias = ''): string => key(`${alias}doc -> '${f}'`);
/**
 * A sort field: absent becomes JSON null, which jsonb orders before every other value, so
 * documents without the field come first ascending (as in SQLite and MongoDB) and one keyset
 * comparison pages through them; numbers compare as numbers, strings in the database collation.
 */
const sortKey = (f: string, alias = ''): string => `COALESCE(${alias}doc -> '${f}', 'null'::jsonb)`;

/**
 * One declared index. Scalar fields are served by expression indexes on the collection's table;
 * an index holding an array field has a side table, one row per (document, distinct element),
 * with the other fields and the sort fields copied in, whose primary key
 * `(v0, ..., vn, id)` makes "the documents of (tenantId, groupIds contains g, partition = p) in id
 * order after a cursor" one index range scan (and `(v0, ..., vn, s_i, id)` the same sorted by a
 * sort field). A GIN index would answer "contains" but not in order: every page would read and
 * sort the whole group.
 */
type Plan = Readonly<{ fields: readonly string[]; arrayField: string | null; side: string | null }>;

type Side = Readonly<{ table: string; fields: readonly string[]; arrayField: string }>;

type Compiled = Readonly<{ spec: CollectionSpec; sorts: readonly string[]; table: string; plans: readonly Plan[]; sides: readonly Side[] }>;

type CursorState = Readonly<{ f?: string; v?: unknown; id: string }>;
const encodeCursor = (s: CursorState): string => Buffer.from(JSON.stringify(s)).toString('base64url');
const decodeCursor = (cursor: string, sort: Sort | null): CursorState => {
  let s: Partial<CursorState> | null;
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

type Statement = Readonly<{ text: string; values: unknown[] }>;

export type PostgresReadStore = ReadStore & {
  /** The plan PostgreSQL chooses for the statement `find` runs with these arguments (EXPLAIN). */
  explain(collection: string, filter: Filter, options: FindOptions): Promise<string>;
};

/**
 * The read store on PostgreSQL, in a schema of its own: one table per collection (`c_<name>`:
 * `id text COLLATE "C"` primary key, `doc jsonb`), an expression index per declared scalar index
 * and per sort field (`(key(doc -> 'tenantId'), id)`, `(key(doc -> 'tenantId'), COALESCE(doc ->
 * 'requestedAt', 'null'), id)`), side tables for indexes with an array field (see Plan), and
 * `checkpoints (name, value)`. A commit is one transaction: each checkpoint is moved first, by a
 * conditional write whose row count decides (it also locks the row, so a competing commit waits,
 * then finds it moved and fails), then the changes, in a few statements per collection however
 * many documents (a delete by filter is a barrier: changes before and after it keep their order).
 */
export const openPostgresReadStore = async (
  options: Readonly<{ connectionString: string; schema?: string; poolSize?: number }>,
): Promise<PostgresReadStore> => {
  const schema = options.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid read store schema name: ${schema}`);
  const s = `"${schema}"`;
  const schemaKey = createHash('sha256').update(schema).digest().readInt32BE(0);
  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 10 });
  pool.on('error', () => undefined);
  const collections = new Map<string, Compiled>();
  let closed = false;

  /**
   * Prepared once per connection (named by their text), and so after a few runs planned once
   * for any values: only the statements of one row by its key. The others are planned for their
   * values each time (a fraction of a millisecond): a plan made for no list of ids in particular
   * deleted 5,000 side rows by scanning the whole table, and a page is read by the plan `explain`
   * shows.
   */
  const named = (st: Statement) => ({ name: `rs_${digest(st.text)}`, text: st.text, values: st.values });

  /** Runs DDL under a session advisory lock: processes starting together take turns. */
  const underDdlLock = async (work: (client: pg.PoolClient) => Promise<void>): Promise<void> => {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [DDL_LOCK, schemaKey]);
      try {
        await client.query('BEGIN');
        await work(client);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch((r: unknown) => void (broken = r instanceof Error ? r : new Error(String(r))));
        throw e;
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [DDL_LOCK, schemaKey]).catch((r: unknown) => void (broken = r instanceof Error ? r : new Error(String(r))));
      }
    } finally {
      client.release(broken);
    }
  };

  try {
    await underDdlLock(async (c) => {
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${s}; CREATE TABLE IF NOT EXISTS ${s}.checkpoints (name text PRIMARY KEY, value bigint NOT NULL)`);
    });
  } catch (e) {
    await pool.end();
    throw e;
  }

  const compiled = (name: string): Compiled => {
    const c = collections.get(name);
    if (!c) throw new Error(`collection "${name}" is not declared: call ensureCollections first`);
    return c;
  };

  /** Side rows of documents: every distinct element of the array, with the other fields and the sort fields. */
  const sideInsert = (c: Pick<Compiled, 'table' | 'sorts'>, side: Side, ids: string | null): string => {
    const elements = `jsonb_array_elements(CASE WHEN jsonb_typeof(d.doc -> '${side.arrayField}') = 'array' THEN d.doc -> '${side.arrayField}' ELSE '[]'::jsonb END)`;
    const select = [...side.fields.map((f) => key(f === side.arrayField ? 'e.value' : sortKey(f, 'd.'))), 'd.id', ...c.sorts.map((f) => sortKey(f, 'd.'))];
    // DISTINCT for repeated elements; no other row can conflict (see writeStatements), and an
    // insert without ON CONFLICT measured twice as fast.
    return (
      `INSERT INTO ${side.table} (${[...side.fields.map((_, i) => `v${i}`), 'id', ...c.sorts.map((_, i) => `s${i}`)].join(', ')}) ` +
      `SELECT DISTINCT ${select.join(', ')} FROM ${c.table} d CROSS JOIN LATERAL ${elements} AS e${ids ? ` WHERE d.id = ANY(${ids})` : ''}`
    );
  };

  const ensure = async (client: pg.PoolClient, spec: CollectionSpec): Promise<Compiled> => {
    const name = safe('collection', spec.name);
    if (name.length > 61) throw new Error(`collection name ${name} is too long for PostgreSQL (61 characters at most)`);
    // Quoted: collection names keep their capitals (unquoted, consentSchedule would be folded to
    // consentschedule, and the catalog lookup below would not find it).
    const table = `${s}."c_${name}"`;
    const arrays = new Set((spec.arrayFields ?? []).map((f) => safe('field', f)));
    const sorts = (spec.sortFields ?? []).map((f) => safe('field', f));
    for (const f of sorts) if (arrays.has(f)) throw new Error(`${name}: sort field ${f} is an array field`);
    // Only what is missing is created: CREATE INDEX IF NOT EXISTS would still lock the table
    // against writers while every process starts.
    const existing = new Set(
      (await client.query<{ name: string }>('SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1', [schema])).rows.map((r) => r.name),
    );
    const created = !existing.has(`c_${name}`);
    if (created) await client.query(`CREATE TABLE ${table} (id text COLLATE "C" PRIMARY KEY, doc jsonb NOT NULL)`);
    const sides: Side[] = [];
    const plans: Plan[] = [];
    for (const fields of spec.indexes) {
      for (const f of fields) safe('field', f);
      if (new Set(fields).size !== fields.length) throw new Error(`${name}: index [${fields.join(', ')}] repeats a field`);
      const arrayFields = fields.filter((f) => arrays.has(f));
      if (arrayFields.length > 1) throw new Error(`${name}: index [${fields.join(', ')}] has more than one array field`);
      const arrayField = arrayFields[0] ?? null;
      if (arrayField === null) {
        for (const sort of [null, ...sorts]) {
          const keys = [...fields.map((f) => field(f)), ...(sort && !fields.includes(sort) ? [`(${sortKey(sort)})`] : [])];
          if (keys.length === 0) continue; // the primary key orders the whole collection by id
          const index = objectName('x', name, [fields, sort]);
          if (!existing.has(index)) await client.query(`CREATE INDEX "${index}" ON ${table} (${[...keys, 'id'].join(', ')})`);
        }
        plans.push({ fields, arrayField, side: null });
        continue;
      }
      const sideName = objectName('a', name, { fields, arrayField, sorts });
      const side: Side = { table: `${s}."${sideName}"`, fields, arrayField };
      const v = fields.map((_, i) => `v${i}`);
      const sc = sorts.map((_, i) => `s${i}`);
      if (!existing.has(sideName)) {
        await client.query(
          `CREATE TABLE ${side.table} (${[...v.map((c) => `${c} text COLLATE "C" NOT NULL`), 'id text COLLATE "C" NOT NULL', ...sc.map((c) => `${c} jsonb NOT NULL`)].join(', ')}, PRIMARY KEY (${[...v, 'id'].join(', ')}))`,
        );
        await client.query(`CREATE INDEX "${sideName}_id" ON ${side.table} (id)`);
        for (const col of sc) await client.query(`CREATE INDEX "${sideName}_${col}" ON ${side.table} (${[...v, col, 'id'].join(', ')})`);
        // A new index over existing documents (a spec that grew): filled from them, in this transaction.
        if (!created) await client.query(sideInsert({ table, sorts }, side, null));
      }
      sides.push(side);
      plans.push({ fields, arrayField, side: side.table });
    }
    return { spec: { ...spec, sortFields: sorts }, sorts, table, plans, sides };
  };

  const planFor = (c: Compiled, filter: Filter): Plan => planForFilter(c.spec, c.plans, filter);

  /** The equality conditions of a filter on a plan, with parameters numbered from `first`. */
  const conditions = (plan: Plan, filter: Filter, first: number, alias = '') => ({
    where: plan.fields.map((f, i) => `${plan.side ? `${alias}v${i}` : field(f, alias)} = ${key(`$${first + i}::jsonb`)}`),
    values: plan.fields.map((f) => JSON.stringify(filter[f])),
  });

  const findStatement = (c: Compiled, filter: Filter, o: FindOptions): { st: Statement; sort: Sort | null } => {
    const plan = planFor(c, filter);
    if (!Number.isInteger(o.limit) || o.limit < 1) throw new Error(`limit must be a positive integer, got ${o.limit}`);
    const sort = o.sort ?? null;
    if (sort && !c.sorts.includes(sort.field)) throw new Error(`${c.spec.name} cannot be sorted by ${sort.field}; sort fields: [${c.sorts.join(', ')}]`);
    if (sort && sort.direction !== 'asc' && sort.direction !== 'desc') throw new Error(`sort direction must be asc or desc, got ${String(sort.direction)}`);
    checkBelow(c.spec, o);
    const cursor = o.after !== undefined ? decodeCursor(o.after, sort) : null;
    const { where, values: filterValues } = conditions(plan, filter, 1, plan.side ? 'm.' : '');
    const values: unknown[] = filterValues;
    const id = plan.side ? 'm.id' : 'id';
    const by = sort ? (plan.side ? `m.s${c.sorts.indexOf(sort.field)}` : sortKey(sort.field)) : null;
    const desc = sort?.direction === 'desc';
    if (cursor) {
      const n = values.length + 1;
      if (by) {
        where.push(`(${by}, ${id}) ${desc ? '<' : '>'} ($${n}::jsonb, $${n + 1})`);
        values.push(JSON.stringify(cursor.v ?? null), cursor.id);
      } else {
        where.push(`${id} > $${n}`);
        values.push(cursor.id);
      }
    }
    if (by && o.below !== undefined) {
      // jsonb orders null < strings < numbers: strings from "" up are one index range.
      where.push(typeof o.below === 'string' ? `${by} >= '""'::jsonb AND ${by} < $${values.length + 1}::jsonb` : `jsonb_typeof(${by}) = 'number' AND ${by} < $${values.length + 1}::jsonb`);
      values.push(JSON.stringify(o.below));
    }
    const dir = desc ? 'DESC' : 'ASC';
    const order = by ? `${by} ${dir}, ${id} ${dir}` : `${id} ASC`;
    values.push(o.limit + 1);
    // A document by a subquery per side row rather than a join: a planner that finds a merge
    // join cheaper walks the collection's primary key from its start for every page (it does not
    // carry the cursor's bound over), while this is always limit + 1 lookups.
    const doc = plan.side ? `(SELECT c.doc FROM ${c.table} c WHERE c.id = m.id) AS doc` : 'doc';
    const columns = [`${id} AS id`, ...(by ? [`${by} AS k`] : []), doc];
    const text = `SELECT ${columns.join(', ')} FROM ${plan.side ? `${plan.side} m` : c.table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT $${values.length}`;
    return { st: { text, values }, sort };
  };

  const find = async <D extends Doc>(collection: string, filter: Filter, o: FindOptions): Promise<Page<D>> => {
    const { st, sort } = findStatement(compiled(collection), filter, o);
    const rows = (await pool.query<{ id: string; k?: unknown; doc: D | null }>(st.text, st.values)).rows;
    const page = rows.slice(0, o.limit);
    // A side row whose document is gone (see deleteWhereStatement) is passed over.
    const items = page.flatMap((r) => (r.doc ? [r.doc] : []));
    const last = page.at(-1);
    const next = rows.length > o.limit && last ? encodeCursor(sort ? { f: sort.field, v: last.k ?? null, id: last.id } : { id: last.id }) : null;
    return { items, next };
  };

  /**
   * Puts and deletes by id, folded to the last change per id, in one statement per collection,
   * then the side rows of the documents touched: deleted in a second statement, which starts
   * once the first holds the documents' row locks (a statement's snapshot is taken when it
   * starts: one that waited for another commit of the same document would not see that
   * commit's side rows), and written anew in a third. No other transaction can then hold side
   * rows of these documents, so the third needs no ON CONFLICT.
   */
  const writeStatements = (c: Compiled, latest: ReadonlyMap<string, Change>): Statement[] => {
    const ordered = [...latest.keys()].sort();
    const puts: Doc[] = [];
    const deletes: string[] = [];
    for (const id of ordered) {
      const change = latest.get(id)!;
      if (change.op === 'put') puts.push(change.doc);
      else deletes.push(id);
    }
    const ctes: string[] = [];
    const values: unknown[] = [];
    if (puts.length > 0) {
      values.push(JSON.stringify(puts));
      // In id order (puts are sorted): commits touching the same documents lock them in the same order.
      ctes.push(
        `p AS (INSERT INTO ${c.table} (id, doc) SELECT e ->> 'id', e FROM jsonb_array_elements($${values.length}::jsonb) AS e ON CONFLICT (id) DO UPDATE SET doc = excluded.doc)`,
      );
    }
    if (deletes.length > 0) {
      values.push(deletes);
      ctes.push(`r AS (DELETE FROM ${c.table} WHERE id = ANY($${values.length}::text[]))`);
    }
    const out: Statement[] = [{ text: `WITH ${ctes.join(', ')} SELECT 1`, values }];
    if (c.sides.length === 0) return out;
    const unindex = c.sides.map((side, i) => `u${i} AS (DELETE FROM ${side.table} WHERE id = ANY($1::text[]))`);
    out.push({ text: `WITH ${unindex.join(', ')} SELECT 1`, values: [ordered] });
    if (puts.length > 0) {
      const index = c.sides.map((side, i) => `i${i} AS (${sideInsert(c, side, '$1::text[]')})`);
      out.push({ text: `WITH ${index.join(', ')} SELECT 1`, values: [puts.map((d) => d.id)] });
    }
    return out;
  };

  /**
   * In SQL, so deleting a whole tenant never loads its ids into memory. A document put by a
   * commit this one waited for may keep side rows that this statement's snapshot did not see:
   * they point at no document, so no page returns them, and its next put removes them.
   */
  const deleteWhereStatement = (c: Compiled, filter: Filter): Statement => {
    if (Object.keys(filter).length === 0) {
      const ctes = [`g AS (DELETE FROM ${c.table})`, ...c.sides.map((side, i) => `u${i} AS (DELETE FROM ${side.table})`)];
      return { text: `WITH ${ctes.join(', ')} SELECT 1`, values: [] };
    }
    const plan = planFor(c, filter);
    const { where, values } = conditions(plan, filter, 1);
    const matching = plan.side ? `id IN (SELECT id FROM ${plan.side} WHERE ${where.join(' AND ')})` : where.join(' AND ');
    const ctes = [`g AS (DELETE FROM ${c.table} WHERE ${matching} RETURNING id)`, ...c.sides.map((side, i) => `u${i} AS (DELETE FROM ${side.table} WHERE id IN (SELECT id FROM g))`)];
    return { text: `WITH ${ctes.join(', ')} SELECT 1`, values };
  };

  /** Every statement of a batch, built (and so validated) before the transaction starts. */
  const statementsOf = (changes: readonly Change[]): Statement[] => {
    const out: Statement[] = [];
    const pending = new Map<string, Map<string, Change>>();
    const flush = (name: string) => {
      const latest = pending.get(name);
      if (!latest) return;
      pending.delete(name);
      out.push(...writeStatements(compiled(name), latest));
    };
    for (const change of changes) {
      const c = compiled(change.collection);
      switch (change.op) {
        case 'put':
        case 'delete': {
          const id = change.op === 'put' ? change.doc.id : change.id;
          if (typeof id !== 'string') throw new Error(`${c.spec.name}: a document needs a string id`);
          if (change.op === 'put') checkIdPrefix(c.spec, change.doc);
          let latest = pending.get(change.collection);
          if (!latest) pending.set(change.collection, (latest = new Map()));
          latest.set(id, change);
          break;
        }
        case 'deleteWhere':
          flush(change.collection);
          out.push(deleteWhereStatement(c, change.filter));
          break;
        default: {
          const never: never = change;
          throw new Error(`unknown change ${JSON.stringify(never)}`);
        }
      }
    }
    for (const name of [...pending.keys()]) flush(name);
    return out;
  };

  const moveCheckpoint = async (client: pg.PoolClient, cp: CheckpointUpdate): Promise<void> => {
    const moved =
      cp.expected === null
        ? await client.query(named({ text: `INSERT INTO ${s}.checkpoints (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, values: [cp.name, cp.next] }))
        : await client.query(named({ text: `UPDATE ${s}.checkpoints SET value = $3 WHERE name = $1 AND value = $2`, values: [cp.name, cp.expected, cp.next] }));
    if (moved.rowCount === 1) return;
    const actual = await client.query<{ value: string }>(named({ text: `SELECT value FROM ${s}.checkpoints WHERE name = $1`, values: [cp.name] }));
    throw new CheckpointConflictError(cp.name, cp.expected, actual.rows[0] ? Number(actual.rows[0].value) : null);
  };

  const commitOnce = async (checkpoints: readonly CheckpointUpdate[], statements: readonly Statement[]): Promise<void> => {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      // Every statement of a commit reads by an index. On a table autovacuum has not analyzed yet
      // (new, or growing fast) the planner guessed 35,000 of 100,000 rows for 500 ids and scanned
      // the table instead, at every commit; a delete of a whole collection still scans.
      await client.query('BEGIN; SET LOCAL enable_seqscan = off');
      for (const cp of checkpoints) await moveCheckpoint(client, cp);
      for (const st of statements) await client.query(st.text, st.values);
      await client.query('COMMIT');
    } catch (e) {
      // A connection that cannot even roll back is broken: it must not go back to the pool.
      await client.query('ROLLBACK').catch((r: unknown) => void (broken = r instanceof Error ? r : new Error(String(r))));
      throw e;
    } finally {
      client.release(broken);
    }
  };

  const ensureOpen = () => {
    if (closed) throw new Error('read store is closed');
  };

  return {
    ensureCollections: async (specs) => {
      ensureOpen();
      for (const declared of specs) {
        const spec = withIdPrefixIndex(declared);
        let c: Compiled | undefined;
        await underDdlLock(async (client) => void (c = await ensure(client, spec)));
        collections.set(spec.name, c!);
      }
    },
    get: async <D extends Doc>(collection: string, id: string): Promise<D | null> => {
      const r = await pool.query<{ doc: D }>(named({ text: `SELECT doc FROM ${compiled(collection).table} WHERE id = $1`, values: [id] }));
      return r.rows[0]?.doc ?? null;
    },
    getMany: async <D extends Doc>(collection: string, ids: readonly string[]) => {
      const c = compiled(collection);
      const unique = [...new Set(ids)];
      if (unique.length === 0) return [];
      // One primary-key lookup per id, whatever the planner would guess of `id = ANY($1)` (see commitOnce).
      const r = await pool.query<{ doc: D | null }>(`SELECT (SELECT doc FROM ${c.table} c WHERE c.id = x.id) AS doc FROM unnest($1::text[]) AS x(id)`, [unique]);
      const found = new Map(r.rows.flatMap((row) => (row.doc ? [[row.doc.id, row.doc] as const] : [])));
      // In the order asked for; missing ids are left out.
      return unique.flatMap((id) => (found.has(id) ? [found.get(id)!] : []));
    },
    find,
    explain: async (collection, filter, o) => {
      const { st } = findStatement(compiled(collection), filter, o);
      const r = await pool.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN (COSTS OFF) ${st.text}`, values: st.values });
      return r.rows.map((row) => row['QUERY PLAN']).join('\n');
    },
    checkpoint: async (name) => {
      const r = await pool.query<{ value: string }>(named({ text: `SELECT value FROM ${s}.checkpoints WHERE name = $1`, values: [name] }));
      return r.rows[0] ? Number(r.rows[0].value) : null;
    },
    commit: async (batch) => {
      ensureOpen();
      const statements = statementsOf(batch.changes);
      if (batch.checkpoints.length === 0 && statements.length === 0) return;
      // In name order: two commits moving the same checkpoints lock them in the same order.
      const checkpoints = [...batch.checkpoints].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (let attempt = 1; ; attempt++) {
        try {
          return await commitOnce(checkpoints, statements);
        } catch (e) {
          if (!(attempt < DEADLOCK_RETRIES && (e as { code?: string }).code === '40P01')) throw e;
        }
      }
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
};
