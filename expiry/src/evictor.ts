import { userKeyId } from '#schema/streams';
import type { EventStore } from '#platform/event-store/port';
import { followLog, type FollowedLog } from '#platform/event-store/follow';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { ComponentHealth } from '#platform/health';

const ERASURE = ['ConsentExpired', 'UserErasureRequested', 'UserDataShredded'] as const;

export type EvictorOptions = Readonly<{
  health?: ComponentHealth;
  /** Told of each failure (logs); the evictor restarts by itself. */
  onError: (e: unknown) => void;
  backoff?: Readonly<{ baseMs: number; maxMs: number }>;
}>;

/**
 * Drops cached data keys when another process erases a user, so a key destroyed in the vault
 * is not kept alive in this process's memory. Follows the log from its head. A store error does
 * not stop it: it resumes after the last event it handled (so an erasure appended meanwhile is
 * still seen), and while it is down the cipher caches nothing, reading every key from the vault.
 */
export const evictErasedKeys = async (eventStore: EventStore, cipher: PersonalDataCipher, options: EvictorOptions | ((e: unknown) => void)): Promise<FollowedLog> => {
  const o: EvictorOptions = typeof options === 'function' ? { onError: options } : options;
  let handled = await eventStore.headPosition();
  return followLog({
    eventStore,
    types: ERASURE,
    resumeAfter: async () => handled,
    handler: async (events) => {
      for (const e of events) cipher.forget(userKeyId(e.metadata.tenantId, (e.data as { userId: string }).userId));
      handled = events.at(-1)?.position ?? handled;
    },
    onFailure: (e) => {
      cipher.suspendCache();
      o.onError(e);
    },
    // Caught up with every erasure appended while it was down: caching is safe again.
    onRecovered: () => cipher.resumeCache(),
    ...(o.health ? { health: o.health } : {}),
    ...(o.backoff ? { backoff: o.backoff } : {}),
  });
};
