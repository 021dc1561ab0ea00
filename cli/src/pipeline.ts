import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Role } from '#platform/config';
import type { Logger } from '#platform/logger';
import type { Callback } from '#delivery/receipts/intake';

/** The roles that run on pipeline threads when the process also serves the API. */
export const PIPELINE_ROLES: readonly Role[] = ['projections', 'delivery', 'expiry'];

/**
 * How the pipeline's roles of a process share its threads: all on one, or delivery on one and
 * projections and expiry on another (they share nothing but the stores). Delivery comes first:
 * each thread's registry holds delivery's families (empty where it does not deliver), and a
 * scrape keeps the first of each. The last thread takes the providers' receipts.
 */
export const pipelineGroups = (roles: readonly Role[], threads: 1 | 2): Role[][] =>
  (threads === 1 ? [PIPELINE_ROLES] : [['delivery'], ['projections', 'expiry']] as Role[][])
    .map((group) => group.filter((r) => roles.includes(r)))
    .filter((group) => group.length > 0);

/**
 * The pipeline thread's young generation (V8 keeps two semi-spaces of a third each). A fan-out
 * keeps thousands of deliveries in flight, so much of what a scavenge finds is still alive and is
 * copied: at V8's default the thread ran about 210 scavenges per 100,000 deliveries, 6% of its
 * time; at 384 MB about 110, for some 70 MB more RSS (docs/benchmarks.md).
 */
const PIPELINE_YOUNG_GENERATION_MB = 384;

/** What the main thread sends the pipeline thread, and what comes back. */
export type ToPipeline =
  | Readonly<{ type: 'stop' }>
  | Readonly<{ type: 'metrics'; id: number }>
  | Readonly<{ type: 'readiness'; id: number }>
  // Providers' callbacks and their answers go in batches, one message per turn of the sender's loop.
  | Readonly<{ type: 'receipts'; callbacks: readonly (readonly [id: number, callback: Callback])[] }>;
export type FromPipeline =
  | Readonly<{ type: 'ready' }>
  | Readonly<{ type: 'failed'; message: string }>
  | Readonly<{ type: 'metrics'; id: number; text: string }>
  | Readonly<{ type: 'readiness'; id: number; problem: string | null }>
  | Readonly<{ type: 'receipts'; statuses: readonly (readonly [id: number, status: number])[] }>
  | Readonly<{ type: 'stopped' }>;

/** What the pipeline thread is started with (the rest of its configuration it reads from the environment). */
export type PipelineData = Readonly<{ roles: readonly Role[]; publicUrl: string | null }>;

export type PipelineThread = Readonly<{
  /** The roles it runs. */
  roles: readonly Role[];
  /** The thread's Prometheus exposition (delivery metrics live where delivery runs). */
  metrics: () => Promise<string>;
  /** Resolves when the thread's stores answer and its components run; rejects with why not. */
  ready: () => Promise<void>;
  /** Records a provider's callback on the thread (its signature checked there); answers the HTTP status. */
  receipt: (callback: Callback) => Promise<number>;
  /** Drains the thread's roles (in-flight sends finish and are recorded), then ends it. */
  stop: () => Promise<void>;
}>;

/**
 * Starts projections, delivery and expiry on a worker thread of their own, on the same stores: requests
 * on the main thread then never wait behind a fan-out's batches. The thread failing ends the
 * process (`onExit`), for its supervisor to restart, rather than leave an API that accepts sends
 * nothing delivers.
 */
export const startPipelineThread = async (
  data: PipelineData,
  logger: Logger,
  onExit: (reason: string) => void,
): Promise<PipelineThread> => {
  // The in-flight deliveries are what survive scavenges; the projections' objects die young.
  const resourceLimits = data.roles.includes('delivery') ? { maxYoungGenerationSizeMb: PIPELINE_YOUNG_GENERATION_MB } : {};
  const worker = new Worker(path.join(__dirname, 'pipeline-thread.js'), { workerData: data, resourceLimits });
  let nextId = 0;
  const pending = new Map<number, (answer: string | number | null) => void>();
  let stopping: Promise<void> | null = null;
  let stopped: () => void = () => {};
  const stoppedOnce = new Promise<void>((resolve) => (stopped = resolve));

  try {
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: FromPipeline) => {
        if (m.type === 'ready') resolve();
        if (m.type === 'failed') reject(new Error(`the pipeline thread failed to start: ${m.message}`));
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the pipeline thread exited (code ${code}) before it started`)));
    });
  } catch (e) {
    await worker.terminate();
    throw e;
  }
  worker.removeAllListeners('message').removeAllListeners('error').removeAllListeners('exit');

  worker.on('message', (m: FromPipeline) => {
    if (m.type === 'metrics' || m.type === 'readiness') {
      pending.get(m.id)?.(m.type === 'metrics' ? m.text : m.problem);
      pending.delete(m.id);
    } else if (m.type === 'receipts') {
      for (const [id, status] of m.statuses) {
        pending.get(id)?.(status);
        pending.delete(id);
      }
    } else if (m.type === 'stopped') stopped();
  });
  worker.on('error', (e) => logger.error({ err: e }, 'the pipeline thread failed'));
  worker.on('exit', (code) => {
    for (const resolve of pending.values()) resolve('the pipeline thread has exited');
    pending.clear();
    stopped();
    if (!stopping) onExit(`the pipeline thread (${data.roles.join(', ')}) exited with code ${code}`);
  });

  const send = (m: ToPipeline) => worker.postMessage(m);
  /** Posts a question under a new id (`post`), resolved by the thread's answer to that id. */
  const answered = (post: (id: number) => void) =>
    new Promise<string | number | null>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      post(id);
    });
  const ask = (m: (id: number) => ToPipeline) => answered((id) => send(m(id)));
  // A provider sends a callback per message: at the delivery rate, one message per callback would
  // cost both threads more than recording them does.
  const batch = batcher<readonly [number, Callback]>((callbacks) => send({ type: 'receipts', callbacks }));
  return {
    roles: data.roles,
    metrics: async () => (stopping ? '' : String((await ask((id) => ({ type: 'metrics', id }))) ?? '')),
    ready: async () => {
      if (stopping) throw new Error('the pipeline thread is stopping');
      const problem = await ask((id) => ({ type: 'readiness', id }));
      if (problem !== null) throw new Error(String(problem));
    },
    // The provider tries again later: a callback that came while the thread stops is not lost.
    receipt: async (callback) => {
      if (stopping) return 503;
      const status = await answered((id) => batch([id, callback]));
      return typeof status === 'number' ? status : 503;
    },
    stop: () =>
      (stopping ??= (async () => {
        send({ type: 'stop' });
        await stoppedOnce;
        await worker.terminate();
      })()),
  };
};

/** Collects what comes in one turn of the event loop and hands it on at once, in the next. */
export const batcher = <T>(flush: (items: T[]) => void): ((item: T) => void) => {
  let items: T[] = [];
  return (item) => {
    if (items.push(item) > 1) return;
    setImmediate(() => {
      const out = items;
      items = [];
      flush(out);
    });
  };
};
