import type { AnyEventType, RecordedEvent } from '#schema/events';
import type { CollectionSpec, Doc, Filter } from '#platform/read-store/port';

/**
 * One read model: a collection and the pure function that folds events into its documents.
 * The runner owns loading, batching and checkpoints, so a definition stays testable on plain
 * events.
 */
export interface ReadModel<D extends Doc> {
  /** Also names the checkpoint: `projection:<name>`. */
  name: string;
  collection: CollectionSpec;
  handles: readonly AnyEventType[];
  /** The documents an event changes, each once; empty when it changes none. */
  documentIds(event: RecordedEvent): readonly string[];
  /**
   * Next state of document `id` (null = delete, or stay absent). Returns `doc` itself when the
   * event changes nothing, so the runner writes only what changed. `id` is one of
   * `documentIds(event)`: one event may create several documents that share no field with it.
   * `peek` gives another of those documents as it stands before this event changes it (null when
   * absent or not named by `documentIds`), for a document whose fate depends on a marker.
   */
  evolve(doc: D | null, event: RecordedEvent, id: string, peek: (id: string) => D | null): D | null;
  /** deleteWhere on the model's collection, applied before evolve; for erasure events. */
  purge?(event: RecordedEvent): Filter | null;
}

export type AnyReadModel = ReadModel<Doc>;

/**
 * The collection as the runner declares it: with the empty index (every document by id) added,
 * so `rebuild` can page through a whole collection. It costs nothing: it is the primary key.
 */
export const declaredCollection = (spec: CollectionSpec): CollectionSpec =>
  spec.indexes.some((i) => i.length === 0) ? spec : { ...spec, indexes: [...spec.indexes, []] };

export const checkpointName = (model: Readonly<{ name: string }>): string => `projection:${model.name}`;

/** Widens a model for heterogeneous lists; documents come back from the store untyped anyway. */
export const readModel = <D extends Doc>(model: ReadModel<D>): AnyReadModel => model as unknown as AnyReadModel;

/** The in-memory counterpart of the store's filter: equality, or "contains" on an array field. */
export const matchesFilter = (doc: Doc, filter: Filter): boolean =>
  Object.entries(filter).every(([field, value]) => {
    const actual = doc[field];
    return Array.isArray(actual) ? actual.includes(value) : actual === value;
  });

/** Position padded so that ids sort in log order. */
export const padPosition = (position: number): string => String(position).padStart(16, '0');

/** Every type of an event union, checked by the compiler: a missing or unknown key fails the build. */
export const eventTypes = <T extends AnyEventType>(types: Readonly<Record<T, true>>): readonly T[] =>
  Object.keys(types) as T[];

export const isOneOf = <T extends AnyEventType>(
  types: readonly T[],
  event: RecordedEvent,
): event is Extract<RecordedEvent, { type: T }> => (types as readonly string[]).includes(event.type);

export const unreachable = (value: never): never => {
  throw new Error(`unhandled event ${JSON.stringify(value)}`);
};
