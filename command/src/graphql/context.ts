import type { EventStore } from '../../../platform/src/event-store/port';
import type { ReadStore } from '../../../platform/src/read-store/port';
import type { PersonalDataCipher } from '../../../platform/src/crypto/personal-data';
import type { CommandService, Actor } from '../application';
import type { Principal } from '../auth/api-keys';
import type { LiveHub } from '../../../query/src/live/hub';

export type Services = Readonly<{
  commands: CommandService;
  eventStore: EventStore;
  readStore: ReadStore;
  cipher: PersonalDataCipher;
  live: LiveHub;
}>;

export type GraphQLContext = Readonly<{ principal: Principal; requestId: string; services: Services }>;

export const actorOf = (ctx: GraphQLContext): Actor => ({ keyId: ctx.principal.keyId, requestId: ctx.requestId });
