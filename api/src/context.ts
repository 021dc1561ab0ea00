import type { EventStore } from '#platform/event-store/port';
import type { ChainKeys } from '#platform/event-store/chain';
import type { ReadStore } from '#platform/read-store/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Actor, Commands } from '#command/application';
import type { LiveHub } from '#query/live/hub';
import type { Principal } from './auth';
import type { RateLimits, TenantLimitOverrides } from './rate-limits';

/** Provider integrations as the API needs them beyond the log: testing one, and the operator's rule on endpoints. */
export type ProviderServices = Readonly<{
  /** Sends one message through an integration, answering with the provider's verdict. */
  test: (owner: string, name: string, address: string) => Promise<Readonly<{ outcome: string; reason: string | null; credentialsRejected: boolean; latencyMs: number }>>;
  /** Whether tenants may point their integrations at custom endpoints (the operator's choice). */
  allowTenantEndpoints: boolean;
}>;

export type Services = Readonly<{
  commands: Commands;
  eventStore: EventStore;
  readStore: ReadStore;
  cipher: PersonalDataCipher;
  live: LiveHub;
  providers: ProviderServices;
  /** Authenticates chain heads when the tenant's audit chain is verified (null: hashes only). */
  chainKeys?: ChainKeys | null;
}>;

/** What the API layer itself keeps: its rate limits, the operator's overrides of them, its limits on reads. */
export type ApiServices = Readonly<{
  rateLimits: RateLimits;
  overrides: TenantLimitOverrides;
  /** Events one filtered auditLog request reads at most. */
  auditScanLimit: number;
}>;

export type GraphQLContext = Readonly<{ principal: Principal; requestId: string; services: Services; api: ApiServices }>;

export const actorOf = (ctx: GraphQLContext): Actor => ({ keyId: ctx.principal.keyId, requestId: ctx.requestId });
