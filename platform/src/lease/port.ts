/**
 * A named lease with a time to live: the holder renews it well before it lapses; when the
 * holder dies, another instance takes it over once it has lapsed.
 */
export interface LeaseStore {
  /** Takes the lease when free or lapsed, or renews it for its holder. True: `holder` holds it for `ttlMs` from now. */
  acquire(name: string, holder: string, ttlMs: number): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
  close(): Promise<void>;
}
