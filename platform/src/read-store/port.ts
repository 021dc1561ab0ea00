/**
 * A small document store: collections of JSON documents keyed by `id`, equality filters on
 * declared index fields (an array field matches when it contains the value), keyset paging, and
 * atomic commits that carry the projections' checkpoints in the same write as their changes.
 * Small on purpose: SQLite and MongoDB both do all of it well.
 */
export type Doc = Readonly<{ id: string }> & Readonly<Record<string, unknown>>;

export type Scalar = string | number | boolean;
/** Field equality; on an array field, "contains". Only fields of a declared index may be used. */
export type Filter = Readonly<Record<string, Scalar>>;

export type CollectionSpec = Readonly<{
  name: string;
  /**
   * Each index is a list of fields. At most one field of an index may be an array (listed in
   * `arrayFields`). A `find` must use a filter whose fields equal one index's fields, optionally
   * followed by sorting on one more scalar field named in `sortFields`.
   */
  indexes: readonly (readonly string[])[];
  arrayFields?: readonly string[];
  sortFields?: readonly string[];
  /**
   * Scalar fields whose values begin every id, in this order, each followed by ':' (the timeline's
   * `<tenant>:<user>:<position>`). A filter on exactly these fields is then served by the ids' own
   * order where the adapter can (SQLite): one index fewer to write per document. Values may
   * themselves hold ':', so an adapter checks the fields of what the id range finds.
   */
  idPrefix?: readonly string[];
}>;

export type Sort = Readonly<{ field: string; direction: 'asc' | 'desc' }>;

/** Opaque to callers: pass `page.next` back as `after` to continue. */
export type Cursor = string;

export type FindOptions = Readonly<{
  limit: number;
  after?: Cursor;
  /** Default: by id ascending. */
  sort?: Sort;
  /**
   * With `sort`: only documents whose sort field is less than this and of its type (a string
   * bound leaves out numbers, and documents without the field); one index range, however many
   * documents lie above it.
   */
  below?: string | number;
}>;

export type Page<D> = Readonly<{ items: readonly D[]; next: Cursor | null }>;

export type Change =
  | Readonly<{ op: 'put'; collection: string; doc: Doc }>
  | Readonly<{ op: 'delete'; collection: string; id: string }>
  | Readonly<{ op: 'deleteWhere'; collection: string; filter: Filter }>;

export type CheckpointUpdate = Readonly<{
  name: string;
  /** The checkpoint the writer read (null: none yet); the commit fails if it moved since. */
  expected: number | null;
  next: number;
}>;

export class CheckpointConflictError extends Error {
  constructor(
    readonly checkpointName: string,
    readonly expected: number | null,
    readonly actual: number | null,
  ) {
    super(`checkpoint ${checkpointName}: expected ${String(expected)}, actual ${String(actual)}`);
    this.name = 'CheckpointConflictError';
  }
}

export interface ReadStore {
  /** Creates collections and their indexes if missing. Idempotent. */
  ensureCollections(specs: readonly CollectionSpec[]): Promise<void>;
  get<D extends Doc>(collection: string, id: string): Promise<D | null>;
  getMany<D extends Doc>(collection: string, ids: readonly string[]): Promise<readonly D[]>;
  find<D extends Doc>(collection: string, filter: Filter, options: FindOptions): Promise<Page<D>>;
  checkpoint(name: string): Promise<number | null>;
  /** Applies every change and moves every checkpoint, all or nothing. */
  commit(batch: Readonly<{ checkpoints: readonly CheckpointUpdate[]; changes: readonly Change[] }>): Promise<void>;
  close(): Promise<void>;
}

/** The check of a `below` bound every adapter makes: it comes with a sort, and is a string or a finite number. */
export const checkBelow = (spec: CollectionSpec, o: FindOptions): void => {
  if (o.below === undefined) return;
  if (!o.sort) throw new Error(`${spec.name}: below needs a sort (it bounds the sort field)`);
  if (typeof o.below !== 'string' && !(typeof o.below === 'number' && Number.isFinite(o.below))) {
    throw new Error(`${spec.name}: below must be a string or a finite number, got ${String(o.below)}`);
  }
};

/** The ids a filter on `idPrefix`'s fields can match: at least `from`, below `to`. */
export const idPrefixRange = (fields: readonly string[], filter: Filter): Readonly<{ from: string; to: string }> => {
  const prefix = fields.map((f) => String(filter[f])).join(':');
  return { from: `${prefix}:`, to: `${prefix};` };
};

/** A document of a collection with `idPrefix` must have an id that begins with those fields' values. */
export const checkIdPrefix = (spec: CollectionSpec, doc: Doc): void => {
  if (!spec.idPrefix) return;
  const prefix = `${spec.idPrefix.map((f) => String(doc[f])).join(':')}:`;
  if (!doc.id.startsWith(prefix)) throw new Error(`${spec.name}: document id ${doc.id} does not begin with its ${spec.idPrefix.join(', ')} ("${prefix}")`);
};

/** For an adapter that serves `idPrefix` with an index of its own: the spec with that index declared. */
export const withIdPrefixIndex = (spec: CollectionSpec): CollectionSpec =>
  spec.idPrefix && !spec.indexes.some((i) => i.length === spec.idPrefix!.length && i.every((f, n) => f === spec.idPrefix![n])) ? { ...spec, indexes: [...spec.indexes, spec.idPrefix] } : spec;

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/** Collection and field names: safe as table, column and MongoDB collection names alike. */
export const safeName = (kind: string, name: string): string => {
  if (!NAME.test(name)) throw new Error(`invalid ${kind} name "${name}": use letters, digits and '_', starting with a letter`);
  return name;
};

/**
 * Which of a collection's index plans serves a filter (one on exactly the filter's fields), or a
 * clear error naming the declared indexes; filter values must be scalars. For the SQL adapters.
 */
export const planForFilter = <P extends Readonly<{ fields: readonly string[] }>>(spec: CollectionSpec, plans: readonly P[], filter: Filter): P => {
  const keys = Object.keys(filter);
  for (const k of keys) {
    const v = filter[k];
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new Error(`${spec.name}: filter value of ${k} must be a string, number or boolean, got ${v === null ? 'null' : typeof v}`);
    }
  }
  const plan = plans.find((p) => p.fields.length === keys.length && p.fields.every((f) => keys.includes(f)));
  if (!plan) {
    const declared = spec.indexes.map((i) => `[${i.join(', ')}]`).join(' ');
    throw new Error(`no index of ${spec.name} serves a filter on [${keys.join(', ')}]; declared: ${declared || 'none'}`);
  }
  return plan;
};
