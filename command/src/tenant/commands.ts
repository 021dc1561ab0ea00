import { streams } from '#schema/streams';
import type { TenantEvent } from '#schema/events';
import type { Scope } from '#schema/scopes';
import { parseApiKeyName, parseTenantId } from '#schema/values';
import { handleCommand, StreamCache } from '../handler';
import { metadataOf, type Actor, type CommandContext } from '../context';
import { newApiKey } from './api-keys';
import { tenantDecider, type TenantState } from './decider';

export type RegisterTenantInput = Readonly<{ tenantId?: string | null; name: string; deliveryDeadlineMinutes: number }>;

/** Tenants and their API keys. Tenant state is cached: authentication reads it on every request. */
export class TenantCommands {
  readonly cache: StreamCache<TenantEvent, TenantState>;

  constructor(private readonly ctx: CommandContext) {
    this.cache = new StreamCache(ctx.eventStore, tenantDecider);
  }

  /** `maxAgeMs`: a state a read confirmed that recently will do (see `StreamCache.load`); authentication never passes it. */
  async state(tenantId: string, options: Readonly<{ maxAgeMs?: number }> = {}): Promise<TenantState> {
    return (await this.cache.load(streams.tenant(tenantId), options)).state;
  }

  /** One append: the tenant never exists without its first admin key. */
  async register(actor: Actor, input: RegisterTenantInput) {
    const tenantId = input.tenantId == null ? `t-${this.ctx.ids.shortId('', 10)}` : parseTenantId('tenantId', input.tenantId);
    const key = newApiKey(tenantId);
    const result = await handleCommand(this.ctx.eventStore, streams.tenant(tenantId), tenantDecider, {
      type: 'RegisterTenant',
      data: { tenantId, name: input.name, deliveryDeadlineMinutes: input.deliveryDeadlineMinutes, adminKey: { keyId: key.keyId, secretHash: key.secretHash } },
      now: this.ctx.clock.now(),
    }, metadataOf(this.ctx, tenantId, actor), { cache: this.cache });
    return { ...result, adminKey: { keyId: key.keyId, token: key.token, scopes: ['admin'] as Scope[] } };
  }

  async changeDeliveryDeadline(actor: Actor, tenantId: string, minutes: number) {
    return handleCommand(this.ctx.eventStore, streams.tenant(tenantId), tenantDecider,
      { type: 'ChangeDeliveryDeadline', data: { deliveryDeadlineMinutes: minutes }, now: this.ctx.clock.now() },
      metadataOf(this.ctx, tenantId, actor), { cache: this.cache });
  }

  async changeDeliveryHistory(actor: Actor, tenantId: string, days: number) {
    return handleCommand(this.ctx.eventStore, streams.tenant(tenantId), tenantDecider,
      { type: 'ChangeDeliveryHistory', data: { deliveryHistoryDays: days }, now: this.ctx.clock.now() },
      metadataOf(this.ctx, tenantId, actor), { cache: this.cache });
  }

  async issueApiKey(actor: Actor, tenantId: string, input: Readonly<{ name: string; scopes: readonly string[] }>) {
    const name = parseApiKeyName('name', input.name);
    const key = newApiKey(tenantId);
    const { appended } = await handleCommand(this.ctx.eventStore, streams.tenant(tenantId), tenantDecider,
      { type: 'IssueApiKey', data: { keyId: key.keyId, name, scopes: input.scopes as Scope[], secretHash: key.secretHash }, now: this.ctx.clock.now() },
      metadataOf(this.ctx, tenantId, actor), { cache: this.cache });
    const issued = appended[0];
    return { keyId: key.keyId, token: key.token, name, scopes: issued?.type === 'ApiKeyIssued' ? [...issued.data.scopes] : [] };
  }

  async revokeApiKey(actor: Actor, tenantId: string, keyId: string) {
    return handleCommand(this.ctx.eventStore, streams.tenant(tenantId), tenantDecider,
      { type: 'RevokeApiKey', data: { keyId }, now: this.ctx.clock.now() },
      metadataOf(this.ctx, tenantId, actor), { cache: this.cache });
  }
}
