import { Worker } from 'node:worker_threads';

/**
 * Pages a connection's commits leave in the WAL before that connection checkpoints it anyway:
 * the stores whose checkpoints moved to the checkpointer thread still bound their WAL if that
 * thread falls behind or is gone (64 MB of 4 KB pages, against SQLite's default of 1,000).
 */
export const FALLBACK_CHECKPOINT_PAGES = 16_384;

/** WAL pages past which the checkpointer restarts the WAL, taking the write lock for a moment (16 MB). */
const RESTART_PAGES = 4_096;

/** What the writers of a file checkpointed by a `WalCheckpointer` set on their connections. */
export const deferCheckpoints = (db: { pragma: (source: string) => unknown }): void => {
  db.pragma(`wal_autocheckpoint = ${FALLBACK_CHECKPOINT_PAGES}`);
};

export type WalCheckpointer = Readonly<{
  /** Checkpoints every file once more, then closes the thread's connections. */
  stop: () => Promise<void>;
}>;

// The thread's code, evaluated rather than loaded from a file so that it runs alike from the
// sources (tests) and from the build. PASSIVE never waits for readers or writers: the frames a
// reader still needs stay in the WAL until the next round.
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const dbs = workerData.paths.map((p) => { const db = new Database(p); db.pragma('busy_timeout = 0'); return db; });
const failing = new Set();
const round = () => {
  for (const db of dbs) {
    try {
      const [r] = db.pragma('wal_checkpoint(PASSIVE)');
      // A writer that never pauses long enough for the WAL to be all copied keeps appending to it:
      // past restartPages, take the write lock between two of its commits (if free) to restart it.
      if (r && r.log > workerData.restartPages) db.pragma('wal_checkpoint(RESTART)');
      failing.delete(db);
    }
    catch (e) {
      if (String(e && e.code).startsWith('SQLITE_BUSY') || failing.has(db)) continue;
      failing.add(db); // reported once until it works again
      parentPort.postMessage({ type: 'error', message: db.name + ': ' + String(e && e.message) });
    }
  }
};
const timer = setInterval(round, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  round();
  for (const db of dbs) db.close();
  parentPort.postMessage({ type: 'stopped' });
});
parentPort.postMessage({ type: 'ready' });
`;

/**
 * Checkpoints the WAL of SQLite files from a thread of its own, so that no commit of the threads
 * that write them (the pipeline's read-model batches, a request's append) pays for copying pages
 * into the database file and the fsyncs around it. The files' writers call `deferCheckpoints`.
 */
export const startWalCheckpointer = async (
  options: Readonly<{ paths: readonly string[]; intervalMs?: number; onError?: (message: string) => void }>,
): Promise<WalCheckpointer> => {
  const worker = new Worker(THREAD, {
    eval: true,
    workerData: { paths: options.paths, intervalMs: options.intervalMs ?? 200, restartPages: RESTART_PAGES, driver: require.resolve('better-sqlite3') },
  });
  let stopped: (() => void) | null = null;
  let ready = false;
  await new Promise<void>((resolve, reject) => {
    // A thread that died leaves the writers' fallback checkpoints (FALLBACK_CHECKPOINT_PAGES).
    worker.on('error', (e) => (ready ? options.onError?.(`the checkpointer thread stopped: ${e.message}`) : reject(e)));
    worker.on('message', (m: { type: string; message?: string }) => {
      if (m.type === 'ready') {
        ready = true;
        resolve();
      }
      else if (m.type === 'error') options.onError?.(m.message ?? 'checkpoint failed');
      else if (m.type === 'stopped') stopped?.();
    });
  });
  // Its own connections only: the process may exit without waiting for it.
  worker.unref();
  return {
    stop: async () => {
      await new Promise<void>((resolve) => {
        stopped = resolve;
        worker.once('exit', () => resolve());
        worker.postMessage('stop');
      });
      await worker.terminate();
    },
  };
};
