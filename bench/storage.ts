import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { DELIVERY_TOPIC } from '#delivery/ids';
import { TIMELINE } from '#projections/timeline/document';
import { fmtN, root, type Deployment } from './lib';

/**
 * What each store of a deployment holds, in bytes: the log (events), the read models apart from
 * the timeline (read), the timeline, the key vault and the job bus. bench:fanout divides the
 * differences by the users seeded and the deliveries sent.
 *
 * SQLite: the pages in use, (page_count - freelist_count) x page_size, as a reader sees the file
 * (the WAL's newest pages included). Not the files' sizes: a WAL keeps its largest size between
 * checkpoints (up to ~4 MB, more while a reader holds it) and pages freed by deletes stay in the
 * file for later writes, so at benchmark sizes the files' lengths move by amounts that have nothing
 * to do with the data. The files' sizes (WAL included) are reported beside, as `disk`.
 * PostgreSQL: pg_total_relation_size (table, indexes, TOAST) of each schema's tables.
 * MongoDB: collStats' storageSize + totalIndexSize per collection.
 * Kafka: the sizes of the deployment's topics' log segments in the broker's log directory (kafkajs
 * has no DescribeLogDirs), on this machine: KAFKA_LOG_DIR, else where deploy/local/up.sh keeps it.
 */
export type StoreBytes = { events: number; read: number; timeline: number; vault: number; bus: number };
export const STORES = ['events', 'read', 'timeline', 'vault', 'bus'] as const;
export type Sizes = Readonly<{ bytes: StoreBytes; /** SQLite files with their WAL, by file. */ disk?: Record<string, number>; events: number }>;

const fileSize = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);

const sqliteUsed = (file: string, tables?: (db: Database.Database) => string[]): { used: number; some: number } => {
  if (!fs.existsSync(file)) return { used: 0, some: 0 };
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const used = ((db.pragma('page_count', { simple: true }) as number) - (db.pragma('freelist_count', { simple: true }) as number)) * pageSize;
    // dbstat walks only the b-trees named: the timeline's tables and indexes.
    const sizeOf = db.prepare<[string], { bytes: number | null }>('SELECT SUM(pgsize) AS bytes FROM dbstat WHERE name = ? AND aggregate = TRUE');
    const some = (tables?.(db) ?? []).reduce((n, name) => n + (sizeOf.get(name)?.bytes ?? 0), 0);
    return { used, some };
  } finally {
    db.close();
  }
};

const timelineTrees = (db: Database.Database): string[] =>
  db.prepare<[string, string], { name: string }>("SELECT name FROM sqlite_schema WHERE tbl_name = ? OR tbl_name LIKE ? ESCAPE '\\'").all(`c_${TIMELINE}`, `a\\_${TIMELINE}\\_%`).map((r) => r.name);

const sqliteSizes = (dataDir: string, withBus: boolean): Sizes => {
  const file = (n: string) => path.join(dataDir, n);
  const read = sqliteUsed(file('read.db'), timelineTrees);
  const db = new Database(file('events.db'), { readonly: true, fileMustExist: true });
  const events = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
  db.close();
  const disk: Record<string, number> = {};
  for (const n of ['events.db', 'read.db', 'keys.db', ...(withBus ? ['bus.db'] : [])]) disk[n] = fileSize(file(n)) + fileSize(file(`${n}-wal`));
  return {
    bytes: { events: sqliteUsed(file('events.db')).used, read: read.used - read.some, timeline: read.some, vault: sqliteUsed(file('keys.db')).used, bus: withBus ? sqliteUsed(file('bus.db')).used : 0 },
    disk,
    events,
  };
};

const pgSizes = async (url: string, into: StoreBytes, readModels: boolean): Promise<number> => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query(
      `SELECT n.nspname AS schema, c.relname AS rel, pg_total_relation_size(c.oid)::bigint AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname IN ('public', 'notify_read', 'notify_keyvault')`,
    );
    for (const row of r.rows as { schema: string; rel: string; bytes: string }[]) {
      if (row.schema !== 'public' && !readModels) continue;
      const k = row.schema === 'public' ? 'events' : row.schema === 'notify_keyvault' ? 'vault' : row.rel.startsWith(`c_${TIMELINE}`) ? 'timeline' : 'read';
      into[k] += Number(row.bytes);
    }
    return Number((await c.query('SELECT count(*)::bigint AS n FROM public.events').catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n);
  } finally {
    await c.end();
  }
};

const mongoSizes = async (url: string, database: string, into: StoreBytes): Promise<void> => {
  const client = await MongoClient.connect(url);
  try {
    for (const [db, vault] of [[database, false], [`${database}_keyvault`, true]] as const) {
      const d = client.db(db);
      for (const { name } of await d.listCollections({}, { nameOnly: true }).toArray()) {
        const s = await d.command({ collStats: name });
        const bytes = Number(s.storageSize ?? 0) + Number(s.totalIndexSize ?? 0);
        into[vault ? 'vault' : name === `r_${TIMELINE}` ? 'timeline' : 'read'] += bytes;
      }
    }
  } finally {
    await client.close();
  }
};

/** The broker's log directory, when it runs on this machine as deploy/local/up.sh starts it. */
export const kafkaLogDir = (): string | null => {
  const dir = process.env.KAFKA_LOG_DIR ?? path.join(process.env.NOTIFY_LOCAL_DIR ?? path.join(root, '.local'), 'kafka/data');
  return fs.existsSync(dir) ? dir : null;
};

/** Bytes of the log segments of every partition of the topics named `<prefix>.*`; NaN where the log directory is not here. */
export const kafkaTopicBytes = (prefix: string): number => {
  const dir = kafkaLogDir();
  if (!dir) return NaN;
  let total = 0;
  for (const p of fs.readdirSync(dir)) {
    if (!p.startsWith(`${prefix}.`) || !/-\d+$/.test(p)) continue;
    // The .log files hold the records; a partition's index files are preallocated (sparse) and ignored.
    for (const f of fs.readdirSync(path.join(dir, p))) if (f.endsWith('.log')) total += fileSize(path.join(dir, p, f));
  }
  return total;
};

export const storeSizes = async (d: Deployment): Promise<Sizes> => {
  const t = d.topology;
  if (t.kind === 'embedded') return sqliteSizes(d.dataDir, true);
  const bytes: StoreBytes = { events: 0, read: 0, timeline: 0, vault: 0, bus: 0 };
  let events = 0;
  if (t.eventStore === 'postgres' || t.readStore === 'postgres') events = await pgSizes(d.env.POSTGRES_URL!, bytes, t.readStore === 'postgres');
  if (t.readStore === 'mongodb') await mongoSizes(d.env.MONGODB_URL!, d.env.MONGODB_DATABASE!, bytes);
  let disk: Record<string, number> | undefined;
  if (t.eventStore === 'sqlite') {
    const s = sqliteSizes(d.dataDir, false);
    bytes.events = s.bytes.events;
    events = s.events;
    disk = s.disk;
  }
  bytes.bus = t.bus === 'kafka' ? kafkaTopicBytes(d.env.KAFKA_PREFIX!) : sqliteUsed(path.join(d.dataDir, 'bus.db')).used;
  return { bytes, events, ...(disk ? { disk } : {}) };
};

/** Records the deployment's job bus still holds: rows of the SQLite bus, or Kafka's log end minus log start over the delivery topic's partitions. */
export const busRecords = async (d: Deployment): Promise<number> => {
  if (d.topology.kind === 'cluster' && d.topology.bus === 'kafka') {
    const admin = new Kafka({ brokers: d.env.KAFKA_BROKERS!.split(','), clientId: `${d.run}-bench`, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(`${d.env.KAFKA_PREFIX}.${DELIVERY_TOPIC}`);
      return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    } finally {
      await admin.disconnect();
    }
  }
  const file = path.join(d.dataDir, 'bus.db');
  if (!fs.existsSync(file)) return 0;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

/** What bench:fanout records of the stores (results.json `storage`). */
export type StorageFigures = Readonly<{
  /** Bytes per user seeded, per delivery sent (at completion) and per delivery still held once the bus reclaimed its records. */
  perUser: StoreBytes;
  perDelivery: StoreBytes;
  perDeliveryAfterReclaim: StoreBytes;
  /** The bus's records not reclaimed by the end of the wait (0: all of the send's were), and its bytes after seeding, at completion and after reclaim. */
  busRecordsLeft: number;
  busBytes: Readonly<{ seeded: number; completed: number; reclaimed: number }>;
  /** SQLite files with their WAL, bytes: after seeding, at completion, after reclaim. */
  disk?: Readonly<{ seeded: Record<string, number>; completed: Record<string, number>; reclaimed: Record<string, number> }>;
  eventsPerDelivery: number;
  eventAppendsPerSecond: number;
}>;

const LABELS: Record<(typeof STORES)[number], string> = { events: 'log', read: 'read models', timeline: '  of which timeline', vault: 'key vault', bus: 'bus' };
const MB = (b: number) => `${(b / 1e6).toFixed(1)}`;

/** One line per store: bytes per user after registration, per delivery at completion, per delivery after the bus's reclaim. */
export const printStorage = (
  d: Deployment,
  s: StorageFigures,
  reclaimSeconds: number,
): void => {
  const t = d.topology;
  const how = t.kind === 'embedded'
    ? 'SQLite pages in use'
    : `${[t.eventStore === 'postgres' || t.readStore === 'postgres' ? 'PostgreSQL pg_total_relation_size' : '', t.readStore === 'mongodb' ? 'MongoDB collStats' : '', t.bus === 'kafka' ? 'Kafka log segments' : 'SQLite bus pages in use'].filter(Boolean).join(', ')}`;
  const withTimeline = (x: StoreBytes): StoreBytes => ({ ...x, read: x.read + x.timeline });
  const [u, p, r] = [withTimeline(s.perUser), withTimeline(s.perDelivery), withTimeline(s.perDeliveryAfterReclaim)];
  const cell = (n: number) => (Number.isNaN(n) ? 'n/a' : fmtN(n)).padStart(14);
  console.log(`storage (${how}), bytes:`);
  console.log(`  ${''.padEnd(22)}${'per user'.padStart(14)}${'per delivery'.padStart(14)}${'after reclaim'.padStart(14)}`);
  for (const k of STORES) console.log(`  ${LABELS[k].padEnd(22)}${cell(u[k])}${cell(p[k])}${cell(r[k])}`);
  const b = s.busBytes;
  console.log(`  bus: ${fmtN(b.seeded)} B after seeding, ${fmtN(b.completed)} B at completion, ${fmtN(b.reclaimed)} B after reclaim; ${s.busRecordsLeft === 0 ? `every record of the send reclaimed ${reclaimSeconds.toFixed(0)} s after completion` : `${fmtN(s.busRecordsLeft)} records not reclaimed ${reclaimSeconds.toFixed(0)} s after completion`}${t.kind === 'cluster' && t.bus === 'kafka' ? " (Kafka frees a segment's file once it is closed and all below the log start)" : ''}`);
  if (s.disk) {
    const files = Object.keys(s.disk.seeded);
    console.log(`  files with their WAL, MB (seeded → completed → reclaimed): ${files.map((f) => `${f} ${MB(s.disk!.seeded[f]!)} → ${MB(s.disk!.completed[f]!)} → ${MB(s.disk!.reclaimed[f]!)}`).join(', ')}`);
  }
};
