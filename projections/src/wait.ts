import type { ReadStore } from '#platform/read-store/port';
import { checkpointName } from './read-model';

/**
 * For processes that do not run the projections themselves: resolves once the named read models'
 * stored checkpoints have reached `position` (polling the store).
 */
export const waitForReadModels = async (readStore: ReadStore, models: readonly string[], position: number, pollMs = 20, timeoutMs = 60_000): Promise<void> => {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const checkpoints = await Promise.all(models.map((m) => readStore.checkpoint(checkpointName({ name: m }))));
    if (checkpoints.every((c) => c !== null && c >= position)) return;
    if (Date.now() > end) throw new Error(`read models ${models.join(', ')} did not reach position ${position} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
};
