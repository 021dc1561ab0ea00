import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Actor, Commands } from '#command/application';
import type { LiveHub } from '#query/live/hub';
import type { Principal } from './auth';

export type Services = Readonly<{
  commands: Commands;
  eventStore: EventStore;
  readStore: ReadStore;
  cipher: PersonalDataCipher;
  live: LiveHub;
}>;

export type GraphQLContext = Readonly<{ principal: Principal; requestId: string; services: Services }>;

export const actorOf = (ctx: GraphQLContext): Actor => ({ keyId: ctx.principal.keyId, requestId: ctx.requestId });
