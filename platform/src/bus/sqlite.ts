import Database from 'better-sqlite3';
import { deferCheckpoints } from '../sqlite-checkpointer';
import { EventEmitter } from 'node:events';
import { Waker } from '../waker';
import type { BusMessage, ConsumeOptions, Consumer, JobBus, OutgoingMessage } from './port';

const POLL_MS = 100;

const BUSY_MS = 5000;

/**
 * The embedded job bus: partitions as rows of one SQLite table, committed offsets beside them.
 * Durable across crashes like Kafka; one process consumes all partitions (the embedded default
 * runs one delivery worker). Committed messages are deleted as the consumer moves on, and their
 * space leaves the file: freed pages are given back (incremental vacuum), and once the bus holds
 * no message the WAL is emptied too, so the file returns to its size before the sends.
 */
export const openSqliteBus = (
  options: Readonly<{
    path: string;
    /** Whether this connection's commits checkpoint the WAL (see openSqliteEventStore's). */
    checkpoints?: boolean;
  }>,
): JobBus => {
  const db = new Database(options.path);
  // Set before the first table exists; a file made before this is converted once, below.
  db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${BUSY_MS}`);
  if (options.checkpoints === false) deferCheckpoints(db);
  db.exec(`
    CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, partitions INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS messages (topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS committed (topic TEXT NOT NULL, grp TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY (topic, grp, partition)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS heads (topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY (topic, partition)) WITHOUT ROWID;
  `);
  // Headers (trace context) came after the first files: added to a file that lacks them.
  if (!(db.prepare("SELECT name FROM pragma_table_info('messages')").all() as { name: string }[]).some((c) => c.name === 'headers')) {
    db.exec('ALTER TABLE messages ADD COLUMN headers TEXT');
  }
  if ((db.pragma('auto_vacuum', { simple: true }) as number) !== 2) {
    // A bus holds few messages: rewriting it is quick. Another connection at work on the file
    // (the other thread) makes it fail; the next open tries again.
    try {
      db.exec('VACUUM');
    } catch {
      // the file keeps its free pages meanwhile
    }
  }
  const getTopic = db.prepare<[string], { partitions: number }>('SELECT partitions FROM topics WHERE topic = ?');
  const putTopic = db.prepare('INSERT OR IGNORE INTO topics (topic, partitions) VALUES (?, ?)');
  const getHead = db.prepare<[string, number], { offset: number }>('SELECT offset FROM heads WHERE topic = ? AND partition = ?');
  const putHead = db.prepare('INSERT INTO heads (topic, partition, offset) VALUES (?, ?, ?) ON CONFLICT (topic, partition) DO UPDATE SET offset = excluded.offset');
  const insert = db.prepare('INSERT INTO messages (topic, partition, offset, key, value, headers) VALUES (?, ?, ?, ?, ?, ?)');
  const read = db.prepare<[string, number, number, number], { offset: number; key: string; value: string; headers: string | null }>(
    'SELECT offset, key, value, headers FROM messages WHERE topic = ? AND partition = ? AND offset > ? ORDER BY offset LIMIT ?',
  );
  const getCommitted = db.prepare<[string, string, number], { offset: number }>('SELECT offset FROM committed WHERE topic = ? AND grp = ? AND partition = ?');
  const putCommitted = db.prepare(
    'INSERT INTO committed (topic, grp, partition, offset) VALUES (?, ?, ?, ?) ON CONFLICT (topic, grp, partition) DO UPDATE SET offset = MAX(offset, excluded.offset)',
  );
  const lagOf = db.prepare<[string, string], { partition: number; lag: number }>(
    'SELECT h.partition AS partition, h.offset - COALESCE(c.offset, -1) AS lag FROM heads h LEFT JOIN committed c ON c.topic = h.topic AND c.partition = h.partition AND c.grp = ? WHERE h.topic = ? ORDER BY h.partition',
  );
  const prune = db.prepare(
    'DELETE FROM messages WHERE topic = ? AND partition = ? AND offset <= (SELECT MIN(offset) FROM committed WHERE topic = ? AND partition = ?)',
  );
  const anyMessage = db.prepare('SELECT 1 FROM messages LIMIT 1').pluck();
  /**
   * After messages were deleted: their pages leave the file; when none is left, the WAL is
   * checkpointed and truncated as well, without waiting if another connection is using it (the
   * next drained bus tries again).
   */
  const reclaim = () => {
    db.pragma('incremental_vacuum');
    if (anyMessage.get() !== undefined) return;
    db.pragma('busy_timeout = 0');
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (e) {
      if (!String((e as { code?: string }).code).startsWith('SQLITE_BUSY')) throw e;
    } finally {
      db.pragma(`busy_timeout = ${BUSY_MS}`);
    }
  };
  const published = new EventEmitter();
  published.setMaxListeners(0);
  const consumers = new Set<Consumer>();

  const publishTx = db.transaction((topic: string, messages: readonly OutgoingMessage[]) => {
    const partitions = getTopic.get(topic)?.partitions;
    if (partitions === undefined) throw new Error(`topic ${topic} does not exist`);
    const heads = new Map<number, number>();
    for (const m of messages) {
      if (!Number.isInteger(m.partition) || m.partition < 0 || m.partition >= partitions) throw new Error(`partition ${m.partition} is out of range for ${topic} (${partitions} partitions)`);
      const offset = (heads.get(m.partition) ?? getHead.get(topic, m.partition)?.offset ?? -1) + 1;
      heads.set(m.partition, offset);
      insert.run(topic, m.partition, offset, m.key, JSON.stringify(m.value), m.headers ? JSON.stringify(m.headers) : null);
    }
    for (const [p, o] of heads) putHead.run(topic, p, o);
  });

  return {
    sharedGroups: false,
    ensureTopic: async (topic, partitions) => {
      putTopic.run(topic, partitions);
      const actual = getTopic.get(topic)!.partitions;
      if (actual !== partitions) throw new Error(`topic ${topic} has ${actual} partitions, not ${partitions}`);
    },
    lag: async (topic, group) => lagOf.all(group, topic).map((r) => ({ partition: r.partition, lag: Math.max(0, r.lag) })),
    partitions: async (topic) => {
      const p = getTopic.get(topic)?.partitions;
      if (p === undefined) throw new Error(`topic ${topic} does not exist`);
      return p;
    },
    publish: async (topic, messages) => {
      if (messages.length === 0) return;
      publishTx(topic, messages);
      published.emit(topic);
    },
    consume: async (o: ConsumeOptions): Promise<Consumer> => {
      const partitions = getTopic.get(o.topic)?.partitions;
      if (partitions === undefined) throw new Error(`topic ${o.topic} does not exist`);
      const all = Array.from({ length: partitions }, (_, i) => i);
      const position = all.map((p) => getCommitted.get(o.topic, o.group, p)?.offset ?? -1);
      let stopped = false;
      const waker = new Waker(POLL_MS);
      const onPublish = waker.notify;
      published.on(o.topic, onPublish);
      o.onAssigned?.(all);
      const maxBatch = o.maxBatch ?? 100;
      const loop = (async () => {
        try {
          while (!stopped) {
            waker.consume();
            let delivered = 0;
            for (const p of all) {
              const rows = read.all(o.topic, p, position[p]!, maxBatch);
              if (rows.length === 0) continue;
              const batch: BusMessage[] = rows.map((r) => ({ topic: o.topic, partition: p, offset: r.offset, key: r.key, value: JSON.parse(r.value), ...(r.headers ? { headers: JSON.parse(r.headers) as Record<string, string> } : {}) }));
              position[p] = rows[rows.length - 1]!.offset;
              delivered += rows.length;
              await o.handler(batch);
              if (stopped) return;
            }
            if (delivered > 0) continue;
            await waker.sleep();
          }
        } catch (e) {
          stopped = true;
          o.onError?.(e);
        } finally {
          published.off(o.topic, onPublish);
        }
      })();
      const consumer: Consumer = {
        commit: async (partition, offset) => {
          putCommitted.run(o.topic, o.group, partition, offset);
          if (prune.run(o.topic, partition, o.topic, partition).changes > 0) reclaim();
        },
        stop: async () => {
          stopped = true;
          waker.notify();
          await loop;
          consumers.delete(consumer);
        },
      };
      consumers.add(consumer);
      return consumer;
    },
    close: async () => {
      await Promise.all([...consumers].map((c) => c.stop()));
      db.close();
    },
  };
};
