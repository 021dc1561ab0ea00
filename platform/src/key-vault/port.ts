/** One wrapped data key as the vault holds it. */
export type WrappedKey = Readonly<{ keyId: string; wrapped: Buffer }>;

/** A wrapped key to replace, only if the vault still holds `expected` under its id. */
export type KeyReplacement = Readonly<{ keyId: string; expected: Buffer; wrapped: Buffer }>;

/**
 * Keeps each user's data key, wrapped (encrypted) by the master key. Destroying a key is what
 * shreds a user's personal data, so `destroy` must leave no readable copy in the store's files.
 */
export interface KeyVault {
  /** Stores the wrapped key unless one exists; returns the key now stored under `keyId`. */
  putIfAbsent(keyId: string, wrapped: Buffer): Promise<Buffer>;
  get(keyId: string): Promise<Buffer | null>;
  /** The keys of those ids that exist, in one read (a dispatch round opens hundreds of users' addresses at once). */
  getMany(keyIds: readonly string[]): Promise<ReadonlyMap<string, Buffer>>;
  /** Returns false when there was no such key. */
  destroy(keyId: string): Promise<boolean>;
  /**
   * Wrapped keys in key id order, after `after` (null: from the first), at most `limit`: the
   * batch read of a master key rotation, which pages through every key.
   */
  list(after: string | null, limit: number): Promise<readonly WrappedKey[]>;
  /**
   * Replaces each key whose stored bytes are still `expected` (compare and set, per key), and
   * returns how many were replaced. A key destroyed or changed meanwhile is left as it is: a
   * rotation never brings a shredded key back.
   */
  replaceMany(replacements: readonly KeyReplacement[]): Promise<number>;
  /** How many keys the vault holds (may be an estimate on large stores): for progress bars. */
  count(): Promise<number>;
  close(): Promise<void>;
}
