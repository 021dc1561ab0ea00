import type { RecordedEvent } from '#schema/events';
import type { Doc, Filter } from '#platform/read-store/port';
import { matchesFilter, type ReadModel } from './read-model';

export type Folded<D extends Doc> = Readonly<{
  /** Every document the events touched (null: absent), after the last event. */
  docs: ReadonlyMap<string, D | null>;
  /** Purge filters in log order; the store must apply them to the documents it holds. */
  purges: readonly Filter[];
}>;

/**
 * Folds events through one read model over the documents given. `docs` must hold every id that
 * `documentIds` names for these events (null when absent), so each document is read once and
 * later events see earlier results. Pure: the runner and the specs share it.
 */
export const foldEvents = <D extends Doc>(
  model: ReadModel<D>,
  docs: ReadonlyMap<string, D | null>,
  events: readonly RecordedEvent[],
): Folded<D> => {
  const current = new Map(docs);
  const purges: Filter[] = [];
  for (const event of events) {
    if (!model.handles.includes(event.type)) continue;
    const purge = model.purge?.(event) ?? null;
    if (purge) {
      purges.push(purge);
      for (const [id, doc] of current) if (doc && matchesFilter(doc, purge)) current.set(id, null);
    }
    // Every document sees the others as they were before this event.
    const ids = model.documentIds(event);
    const peek = (id: string): D | null => current.get(id) ?? null;
    const next = ids.map((id) => model.evolve(peek(id), event, id, peek));
    ids.forEach((id, i) => current.set(id, next[i]!));
  }
  return { docs: current, purges };
};

/** The ids an event batch touches, each once. */
export const touchedIds = <D extends Doc>(model: ReadModel<D>, events: readonly RecordedEvent[]): string[] => {
  const ids = new Set<string>();
  for (const event of events) {
    if (model.handles.includes(event.type)) for (const id of model.documentIds(event)) ids.add(id);
  }
  return [...ids];
};
