/** How long a statement waits for a lock holding its thread; a write then retries asynchronously. */
export const SYNC_BUSY_MS = 1;
/** How long a write waits for the file's write lock in all. */
const BUSY_WAIT_MS = 5_000;

/**
 * Runs a write transaction, retrying it on timers while another connection holds the write lock:
 * SQLite's own busy handler sleeps holding the thread, so one thread's long commit would stall
 * every other piece of work of the thread that waits.
 */
export const whenWritable = async <T>(write: () => T): Promise<T> => {
  const until = Date.now() + BUSY_WAIT_MS;
  for (let pause = 1; ; pause = Math.min(pause * 2, 16)) {
    try {
      return write();
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > until) throw e;
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
};
