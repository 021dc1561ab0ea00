import type { RecordedEvent } from '#schema/events';
import type { EventStore, Subscription } from '#platform/event-store/port';
import { backoffMs, untracked, type ComponentHealth } from '#platform/health';
import {
  CheckpointConflictError,
  type Change,
  type CheckpointUpdate,
  type Doc,
  type ReadStore,
} from '#platform/read-store/port';
import { foldEvents, touchedIds } from './fold';
import { checkpointName, declaredCollection, matchesFilter, type ReadModel } from './read-model';

export type ProjectionDeps = Readonly<{
  eventStore: EventStore;
  readStore: ReadStore;
  models: readonly ReadModel<Doc>[];
  batchSize?: number;
  /** After each commit, with the events it applied (for live status). Errors go to onError. */
  onCommitted?: (events: readonly RecordedEvent[]) => void;
  /**
   * A failure of the subscription (a store error: the runner restarts from its stored
   * checkpoints with backoff, reporting unhealthy meanwhile), or a throwing onCommitted.
   */
  onError?: (e: unknown) => void;
  /** Where the runner reports whether it works (unhealthy from a failure until caught up again). */
  health?: ComponentHealth;
  /** Backoff of restarts after a failure (tests shorten it). */
  restartBackoff?: Readonly<{ baseMs: number; maxMs: number }>;
}>;

export type RunningProjections = Readonly<{
  stop(): Promise<void>;
  /**
   * Resolves when every model's checkpoint has reached `position`; rejects if the runner stops
   * first. A failure does not reject it: the runner restarts and the wait goes on.
   */
  caughtUp(position: number): Promise<void>;
  /** False from a failure until the restarted runner has caught up with the log. */
  readonly healthy: boolean;
}>;

/** Checkpoint value while `rebuild` clears a model: runners leave the model alone until it is 0. */
export const REBUILDING = -1;

const MAX_CONFLICTS = 50;
/** Documents one commit may touch, about: a bound on each synchronous step of the runner. */
const MAX_UNITS = 1_000;

/** The documents an event makes these models touch: an event none of them handles costs nothing. */
const unitsOf = (models: readonly ReadModel<Doc>[], e: RecordedEvent): number =>
  models.reduce((n, m) => n + ((m.handles as readonly string[]).includes(e.type) ? m.documentIds(e).length : 0), 0);
const GET_MANY_CHUNK = 500;
const POLL_MS = 100;
/** How often checkpoints follow what the filtered subscription has seen past its last event. */
const ADVANCE_MS = 25;

type Checkpoints = Map<string, number | null>;

const readCheckpoints = async (store: ReadStore, models: readonly ReadModel<Doc>[]): Promise<Checkpoints> =>
  new Map(await Promise.all(models.map(async (m) => [m.name, await store.checkpoint(checkpointName(m))] as const)));

const assertDistinct = (models: readonly ReadModel<Doc>[]): void => {
  for (const key of ['name', 'collection'] as const) {
    const seen = new Set<string>();
    for (const m of models) {
      const value = key === 'name' ? m.name : m.collection.name;
      if (seen.has(value)) throw new Error(`two read models share the ${key} "${value}"`);
      seen.add(value);
    }
  }
};

const loadDocs = async (store: ReadStore, collection: string, ids: readonly string[]): Promise<Map<string, Doc | null>> => {
  const docs = new Map<string, Doc | null>(ids.map((id) => [id, null]));
  for (let i = 0; i < ids.length; i += GET_MANY_CHUNK) {
    for (const doc of await store.getMany<Doc>(collection, ids.slice(i, i + GET_MANY_CHUNK))) docs.set(doc.id, doc);
  }
  return docs;
};

/**
 * The changes that bring one model's collection past `events`. Each touched document is read
 * once; purges go first in the commit, so a document is put again only when it survives them.
 */
const changesFor = async (store: ReadStore, model: ReadModel<Doc>, events: readonly RecordedEvent[]): Promise<Change[]> => {
  const collection = model.collection.name;
  const original = await loadDocs(store, collection, touchedIds(model, events));
  const { docs, purges } = foldEvents(model, original, events);
  const changes: Change[] = purges.map((filter) => ({ op: 'deleteWhere', collection, filter }));
  for (const [id, doc] of docs) {
    const before = original.get(id) ?? null;
    const stored = before !== null && !purges.some((f) => matchesFilter(before, f));
    if (doc !== null && (doc !== before || !stored)) changes.push({ op: 'put', collection, doc });
    else if (doc === null && stored) changes.push({ op: 'delete', collection, id });
  }
  return changes;
};

/**
 * Runs the read models from one subscription. Every batch becomes ONE commit holding all the
 * models' changes and their checkpoints, so a crash or a second runner can never apply an event
 * twice: a checkpoint that moved makes the commit fail, and the batch is redone from the
 * checkpoints as they now are.
 */
export const startProjections = async (deps: ProjectionDeps): Promise<RunningProjections> => {
  const { eventStore, readStore, models } = deps;
  assertDistinct(models);
  await readStore.ensureCollections(models.map((m) => declaredCollection(m.collection)));

  let checkpoints = await readCheckpoints(readStore, models);
  const handledTypes = [...new Set(models.flatMap((m) => m.handles as readonly string[]))];
  /** Every event up to here was delivered by the current subscription. */
  let streamFrom = 0;
  let generation = 0;
  let subscription: Subscription | null = null;
  const retired: Promise<void>[] = [];
  let stopped = false;
  const health = deps.health ?? untracked('projections');
  health.ok();
  let failures = 0;
  let restartTimer: NodeJS.Timeout | null = null;
  const waiters = new Set<{ position: number; resolve: () => void; reject: (e: unknown) => void; internal?: boolean }>();
  let poller: NodeJS.Timeout | null = null;

  // Batches, reloads and resubscriptions take turns, so the checkpoints in memory stay coherent.
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  };

  const position = (name: string): number => checkpoints.get(name) ?? 0;
  const active = () => models.filter((m) => position(m.name) >= 0);
  const reached = (p: number) => models.every((m) => position(m.name) >= p);

  const settleWaiters = (): void => {
    for (const w of waiters) {
      if (stopped) w.reject(new Error('projections stopped'));
      else if (reached(w.position)) w.resolve();
      else continue;
      waiters.delete(w);
    }
    if (![...waiters].some((w) => !w.internal) && poller) {
      clearInterval(poller);
      poller = null;
    }
  };

  /**
   * A failed subscription (a store error, a commit that kept conflicting) must not stop the read
   * models for good: the runner reports unhealthy, waits (exponential backoff with jitter),
   * reloads its checkpoints from the store and subscribes again from them. Waiters keep waiting.
   */
  const fail = (error: unknown): void => {
    deps.onError?.(error);
    if (stopped) return;
    health.failing(error);
    failures++;
    const waitMs = backoffMs(failures, deps.restartBackoff?.baseMs ?? 100, deps.restartBackoff?.maxMs ?? 30_000);
    if (restartTimer) clearTimeout(restartTimer);
    restartTimer = setTimeout(() => {
      restartTimer = null;
      if (stopped) return;
      exclusive(async () => {
        checkpoints = await readCheckpoints(readStore, models);
        if (!stopped) subscribe();
      }).then(
        () => markHealthyWhenCaughtUp(generation),
        (e) => fail(e),
      );
    }, waitMs);
    restartTimer.unref();
  };

  /** Healthy again once the restarted subscription has reached the log's head as it was then. */
  const markHealthyWhenCaughtUp = (gen: number): void => {
    eventStore.headPosition().then(
      (head) => {
        if (stopped || gen !== generation) return;
        waiters.add({
          position: head,
          internal: true,
          resolve: () => {
            if (gen !== generation) return;
            failures = 0;
            health.ok();
          },
          reject: () => undefined,
        });
        settleWaiters();
      },
      () => undefined,
    );
  };

  const subscribe = (): void => {
    const gen = ++generation;
    const running = active();
    streamFrom = running.length === 0 ? 0 : Math.min(...running.map((m) => position(m.name)));
    if (subscription) {
      const old = subscription;
      // Not awaited: this may run inside the old subscription's handler, which stop() waits for.
      retired.push(old.stop().catch(() => undefined));
    }
    subscription = eventStore.subscribe({
      after: streamFrom,
      types: handledTypes,
      ...(deps.batchSize ? { batchSize: deps.batchSize } : {}),
      handler: (events) => exclusive(() => (gen === generation ? handle(events) : Promise.resolve())),
      onError: (e) => {
        if (gen === generation) fail(e);
      },
    });
  };

  /**
   * The subscription reads only the types the models handle (the log's index on type): the
   * audience's models never read the flood of delivery events. It has seen the log further than
   * the last event it handed over, though; the checkpoints follow it (a commit of checkpoints
   * alone), so a wait for a position in this process or another ends without a matching event.
   */
  const advance = async (): Promise<void> => {
    if (stopped || !subscription) return;
    const seen = subscription.progress();
    const behind = active().filter((m) => position(m.name) < seen);
    if (behind.length === 0) return;
    try {
      await readStore.commit({ checkpoints: behind.map((m) => ({ name: checkpointName(m), expected: checkpoints.get(m.name) ?? null, next: seen })), changes: [] });
    } catch (e) {
      if (e instanceof CheckpointConflictError) return reload();
      throw e;
    }
    for (const m of behind) checkpoints.set(m.name, seen);
    streamFrom = Math.max(streamFrom, seen);
    settleWaiters();
  };
  const advancer = setInterval(() => {
    if (!stopped) exclusive(advance).catch((e) => deps.onError?.(e));
  }, ADVANCE_MS);
  advancer.unref();

  /** A model whose checkpoint went back (a rebuild) below what the subscription has passed needs a replay. */
  const needsReplay = (): boolean => active().some((m) => position(m.name) < streamFrom);

  const reload = async (): Promise<void> => {
    checkpoints = await readCheckpoints(readStore, models);
    if (needsReplay() && !stopped) subscribe();
    settleWaiters();
  };

  const applyBatch = async (events: readonly RecordedEvent[], last: number): Promise<void> => {
    const changes: Change[] = [];
    const updates: CheckpointUpdate[] = [];
    let from = Infinity;
    for (const model of active()) {
      const after = position(model.name);
      if (after >= last) continue;
      from = Math.min(from, after);
      const pending = events.filter((e) => e.position > after);
      changes.push(...(await changesFor(readStore, model, pending)));
      updates.push({ name: checkpointName(model), expected: checkpoints.get(model.name) ?? null, next: last });
    }
    if (updates.length === 0) return;
    await readStore.commit({ checkpoints: updates, changes });
    for (const model of active()) if (position(model.name) < last) checkpoints.set(model.name, last);
    settleWaiters();
    if (deps.onCommitted) {
      try {
        deps.onCommitted(events.filter((e) => e.position > from));
      } catch (e) {
        deps.onError?.(e);
      }
    }
  };

  /**
   * A batch is applied in chunks of at most MAX_UNITS documents' worth (a delivery event carries
   * up to a few hundred deliveries), each its own commit with its checkpoint, the event loop let
   * go between them: the API's requests never wait behind one huge synchronous commit.
   */
  const handle = async (events: readonly RecordedEvent[]): Promise<void> => {
    let chunk: RecordedEvent[] = [];
    let units = 0;
    for (const e of events) {
      chunk.push(e);
      units += unitsOf(models, e);
      if (units < MAX_UNITS) continue;
      await handleChunk(chunk);
      await new Promise<void>((resolve) => setImmediate(resolve));
      chunk = [];
      units = 0;
    }
    if (chunk.length > 0) await handleChunk(chunk);
  };

  const handleChunk = async (events: readonly RecordedEvent[]): Promise<void> => {
    const last = events.at(-1)?.position;
    if (last === undefined || stopped) return;
    if (active().length < models.length) {
      // A rebuild is under way; its end moves no checkpoint of ours, so look for it.
      const gen = generation;
      await reload();
      if (gen !== generation) return;
    }
    for (let conflicts = 0; ; conflicts++) {
      try {
        await applyBatch(events, last);
        streamFrom = Math.max(streamFrom, last);
        return;
      } catch (e) {
        if (!(e instanceof CheckpointConflictError) || conflicts >= MAX_CONFLICTS) throw e;
        const gen = generation;
        await reload();
        if (gen !== generation) return;
      }
    }
  };

  subscribe();

  return {
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(advancer);
      if (restartTimer) clearTimeout(restartTimer);
      await subscription?.stop();
      await Promise.all(retired);
      settleWaiters();
      health.remove();
    },
    get healthy() {
      return health.healthy;
    },
    caughtUp: (target) =>
      new Promise<void>((resolve, reject) => {
        const waiter = { position: target, resolve, reject };
        waiters.add(waiter);
        if (stopped) return settleWaiters();
        // From the store, not memory: a rebuild elsewhere may have moved a checkpoint back.
        exclusive(reload).catch((e) => {
          waiters.delete(waiter);
          reject(e);
        });
        // Another runner may be doing the work, or a rebuild may end while the log is idle:
        // keep looking at the stored checkpoints while someone waits.
        poller ??= setInterval(() => {
          if (!stopped && health.healthy) exclusive(reload).catch((e) => deps.onError?.(e));
        }, POLL_MS);
        poller.unref();
      }),
  };
};

/**
 * Empties the named models' collections and sets their checkpoints to 0, so runners replay them
 * from the start of the log. The checkpoints read REBUILDING while documents are deleted (in
 * pages, as collections can be large): runners leave those models alone meanwhile, and a crash
 * half-way leaves them REBUILDING until rebuild runs again, never half-empty and "up to date".
 */
export const rebuild = async (
  deps: Pick<ProjectionDeps, 'readStore' | 'models'> & Partial<ProjectionDeps> & Readonly<{ modelNames: readonly string[]; pageSize?: number }>,
): Promise<void> => {
  const { readStore } = deps;
  const chosen = deps.modelNames.map((name) => {
    const model = deps.models.find((m) => m.name === name);
    if (!model) throw new Error(`no read model named "${name}"`);
    return model;
  });
  if (chosen.length === 0) return;
  await readStore.ensureCollections(chosen.map((m) => declaredCollection(m.collection)));

  for (let conflicts = 0; ; conflicts++) {
    const current = await readCheckpoints(readStore, chosen);
    try {
      await readStore.commit({
        checkpoints: chosen.map((m) => ({ name: checkpointName(m), expected: current.get(m.name) ?? null, next: REBUILDING })),
        changes: [],
      });
      break;
    } catch (e) {
      if (!(e instanceof CheckpointConflictError) || conflicts >= MAX_CONFLICTS) throw e;
    }
  }

  const pageSize = deps.pageSize ?? 500;
  for (const model of chosen) {
    const collection = model.collection.name;
    // Always the first page: what was just deleted is gone, so no cursor is needed.
    for (;;) {
      const page = await readStore.find<Doc>(collection, {}, { limit: pageSize });
      if (page.items.length === 0) break;
      await readStore.commit({ checkpoints: [], changes: page.items.map((d) => ({ op: 'delete', collection, id: d.id })) });
    }
  }

  await readStore.commit({
    checkpoints: chosen.map((m) => ({ name: checkpointName(m), expected: REBUILDING, next: 0 })),
    changes: [],
  });
};
