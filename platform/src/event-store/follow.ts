import { backoffMs, untracked, type ComponentHealth } from '../health';
import type { EventStore, SubscribeOptions, Subscription } from './port';

export type FollowOptions = Readonly<{
  eventStore: EventStore;
  /**
   * Where to resume, asked on the first start and again on every restart: a stored checkpoint,
   * or the last position this component handled (never the head: events appended while it was
   * down would be skipped).
   */
  resumeAfter: () => Promise<number>;
  handler: SubscribeOptions['handler'];
  types?: readonly string[];
  batchSize?: number;
  health?: ComponentHealth;
  /** Told of each failure before the restart waits `waitMs` (logs). */
  onFailure?: (error: unknown, failures: number, waitMs: number) => void;
  /** Told when a restarted subscription has caught up with the log (healthy again). */
  onRecovered?: () => void;
  backoff?: Readonly<{ baseMs: number; maxMs: number }>;
}>;

/** A subscription that outlives store errors. */
export type FollowedLog = Subscription & Readonly<{ readonly healthy: boolean }>;

/**
 * Follows the log like `subscribe`, but a failure (a read error, a throwing handler) does not end
 * it: it reports unhealthy, waits with exponential backoff and jitter, asks `resumeAfter` where
 * to continue and subscribes again; it is healthy again once it has caught up with the log's
 * head. `caughtUp` waits across restarts. The first start fails loudly (the caller's start
 * fails, as before); only later failures are retried.
 */
export const followLog = async (o: FollowOptions): Promise<FollowedLog> => {
  const health = o.health ?? untracked('log follower');
  let current: Subscription | null = null;
  let stopped = false;
  let failures = 0;
  let timer: NodeJS.Timeout | null = null;
  let generation = 0;
  const restarted = new Set<() => void>();

  const open = (after: number): void => {
    const gen = ++generation;
    const sub = o.eventStore.subscribe({
      after,
      handler: o.handler,
      ...(o.types ? { types: o.types } : {}),
      ...(o.batchSize ? { batchSize: o.batchSize } : {}),
      onError: (e) => {
        if (gen === generation && !stopped) fail(e);
      },
    });
    current = sub;
    for (const r of restarted) r();
    restarted.clear();
    if (failures > 0) {
      o.eventStore.headPosition().then(
        (head) => sub.caughtUp(head),
        () => Promise.reject(new Error('head unknown')),
      ).then(
        () => {
          if (gen !== generation || stopped) return;
          failures = 0;
          health.ok();
          o.onRecovered?.();
        },
        () => undefined,
      );
    }
  };

  const fail = (error: unknown): void => {
    current = null;
    health.failing(error);
    failures++;
    const waitMs = backoffMs(failures, o.backoff?.baseMs ?? 100, o.backoff?.maxMs ?? 30_000);
    o.onFailure?.(error, failures, waitMs);
    timer = setTimeout(() => {
      timer = null;
      if (stopped) return;
      o.resumeAfter().then(
        (after) => {
          if (stopped) return;
          try {
            open(after);
          } catch (e) {
            fail(e);
          }
        },
        (e) => {
          if (!stopped) fail(e);
        },
      );
    }, waitMs);
    timer.unref();
  };

  open(await o.resumeAfter());
  health.ok();

  const next = (): Promise<Subscription> =>
    current ? Promise.resolve(current) : new Promise<Subscription>((resolve) => restarted.add(() => resolve(current!)));

  let lastProgress = 0;
  return {
    get healthy() {
      return health.healthy;
    },
    progress: () => (lastProgress = Math.max(lastProgress, current?.progress() ?? 0)),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const r of restarted) r();
      restarted.clear();
      await current?.stop();
      health.remove();
    },
    caughtUp: async (position) => {
      for (;;) {
        if (stopped) throw new Error('subscription stopped');
        const sub = await next();
        if (stopped || !sub) throw new Error('subscription stopped');
        try {
          return await sub.caughtUp(position);
        } catch (e) {
          // Ended by a failure: the next subscription takes over the wait.
          if (stopped) throw e;
          if (current === sub) await new Promise((r) => setTimeout(r, 10));
        }
      }
    },
  };
};
