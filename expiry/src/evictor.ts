import { userKeyId } from '#schema/streams';
import type { EventStore, Subscription } from '#platform/event-store/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';

const ERASURE = ['ConsentExpired', 'UserErasureRequested', 'UserDataShredded'] as const;

/**
 * Drops cached data keys when another process erases a user, so a key destroyed in the vault
 * is not kept alive in this process's memory. Follows the log from its head.
 */
export const evictErasedKeys = async (eventStore: EventStore, cipher: PersonalDataCipher, onError: (e: unknown) => void): Promise<Subscription> =>
  eventStore.subscribe({
    after: await eventStore.headPosition(),
    types: ERASURE,
    handler: async (events) => {
      for (const e of events) cipher.forget(userKeyId(e.metadata.tenantId, (e.data as { userId: string }).userId));
    },
    onError,
  });
