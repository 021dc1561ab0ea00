import type { EventStore } from '#platform/event-store/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Clock } from '#platform/clock';
import type { IdGenerator } from '#platform/ids';
import type { EventMetadata } from '#schema/events';
import { currentTraceparent } from '#platform/tracing';

/** Who is acting, and on which request; tenant ids come from here, never from the input. */
export type Actor = Readonly<{ keyId: string; requestId: string }>;

/** What every use case is given: the log, the cipher for personal data, time and ids. */
export type CommandContext = Readonly<{
  eventStore: EventStore;
  cipher: PersonalDataCipher;
  clock: Clock;
  ids: IdGenerator;
}>;

export const metadataOf = (ctx: Pick<CommandContext, 'clock'>, tenantId: string, actor: Actor): EventMetadata => ({
  tenantId,
  actor: actor.keyId,
  requestId: actor.requestId,
  at: ctx.clock.now().toISOString(),
  ...currentTraceparent(),
});
