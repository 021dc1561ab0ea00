/**
 * Keeps each user's data key, wrapped (encrypted) by the master key. Destroying a key is what
 * shreds a user's personal data, so `destroy` must leave no readable copy in the store's files.
 */
export interface KeyVault {
  /** Stores the wrapped key unless one exists; returns the key now stored under `keyId`. */
  putIfAbsent(keyId: string, wrapped: Buffer): Promise<Buffer>;
  get(keyId: string): Promise<Buffer | null>;
  /** Returns false when there was no such key. */
  destroy(keyId: string): Promise<boolean>;
  close(): Promise<void>;
}
