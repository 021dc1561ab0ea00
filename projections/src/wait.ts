import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import { checkpointName } from './read-model';

/**
 * For processes that do not run the projections themselves: resolves once the named read models
 * hold every change of the log before `position`. Either their stored checkpoints have reached
 * it, or (given the log and the models' event types) no event they handle lies between their
 * checkpoints and it: a checkpoint trails the log's head by a pass of the projections' process
 * (another process, a busy one while a large send is delivered), and a send's one catch-up must
 * not wait for that pass when nothing it would apply came in meanwhile.
 */
export const waitForReadModels = async (
  readStore: ReadStore,
  models: readonly Readonly<{ name: string; handles?: readonly string[] }>[],
  position: number,
  options: Readonly<{ eventStore?: EventStore; pollMs?: number; timeoutMs?: number }> = {},
): Promise<void> => {
  const { eventStore, pollMs = 20, timeoutMs = 60_000 } = options;
  const end = Date.now() + timeoutMs;
  // A model holds every change before `position` when its checkpoint reached it, or when the log
  // has no event of its types between the two.
  const holds = async (model: (typeof models)[number], checkpoint: number | null): Promise<boolean> => {
    if (checkpoint !== null && checkpoint >= position) return true;
    if (!eventStore || !model.handles?.length) return false;
    const [next] = await eventStore.readAll({ after: checkpoint ?? 0, maxCount: 1, types: model.handles });
    return !next || next.position >= position;
  };
  for (;;) {
    const checkpoints = await Promise.all(models.map((m) => readStore.checkpoint(checkpointName(m))));
    if ((await Promise.all(models.map((m, i) => holds(m, checkpoints[i] ?? null)))).every(Boolean)) return;
    if (Date.now() > end) throw new Error(`read models ${models.map((m) => m.name).join(', ')} did not reach position ${position} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
};
