import { randomBytes } from 'node:crypto';
import { streams, tenantKeyId } from '#schema/streams';
import { parseEntityId } from '#schema/values';
import { parseWebhookEventTypes, parseWebhookUrl, type WebhookUrlPolicy } from '#schema/webhooks';
import type { Sealed } from '#schema/events';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import { handleCommand, load } from '../handler';
import { metadataOf, type Actor, type CommandContext } from '../context';
import { webhookDecider, type WebhookEndpoint, type WebhooksState } from './decider';
import { sealContexts } from '#schema/sealed';

/** Random bytes of a signing secret (Standard Webhooks allows 24 to 64). */
const SECRET_BYTES = 32;

/** `whsec_<base64>`, the Standard Webhooks format; shown once, then kept only sealed. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(SECRET_BYTES).toString('base64')}`;

/** The last characters of the secret, enough to tell two apart, far too few to guess it. */
export const secretHintOf = (secret: string): string => `whsec_…${secret.replace(/=+$/, '').slice(-4)}`;

export type RegisterWebhookInput = Readonly<{ url: string; events: readonly string[] }>;
export type ChangeWebhookInput = Readonly<{ endpointId: string; url?: string | null; events?: readonly string[] | null }>;

/**
 * A tenant's webhook endpoints. The URL is checked against the policy here (configuration); the
 * secret is made here and sealed with the tenant's data key before the decider sees it.
 */
export class WebhookCommands {
  constructor(private readonly ctx: CommandContext & Readonly<{ webhookUrls?: WebhookUrlPolicy }>) {}

  async state(tenantId: string): Promise<WebhooksState> {
    return (await load(this.ctx.eventStore, streams.webhooks(tenantId), webhookDecider)).state;
  }

  async list(tenantId: string): Promise<readonly WebhookEndpoint[]> {
    return [...(await this.state(tenantId)).endpoints.values()];
  }

  /** The secret is in this answer only. */
  async register(actor: Actor, tenantId: string, input: RegisterWebhookInput) {
    const url = parseWebhookUrl('url', input.url, this.ctx.webhookUrls);
    const events = parseWebhookEventTypes('events', input.events);
    const endpointId = this.ctx.ids.shortId('ep_', 16);
    const secret = newWebhookSecret();
    const sealed = await sealSecret(this.ctx.cipher, tenantId, secret);
    const result = await handleCommand(this.ctx.eventStore, streams.webhooks(tenantId), webhookDecider, {
      type: 'RegisterWebhookEndpoint',
      data: { endpointId, url, events, secret: sealed, secretHint: secretHintOf(secret) },
      now: this.ctx.clock.now(),
    }, metadataOf(this.ctx, tenantId, actor));
    return { endpoint: result.state.endpoints.get(endpointId)!, secret };
  }

  async change(actor: Actor, tenantId: string, input: ChangeWebhookInput) {
    const endpointId = parseEntityId('endpointId', input.endpointId);
    const url = input.url == null ? undefined : parseWebhookUrl('url', input.url, this.ctx.webhookUrls);
    const events = input.events == null ? undefined : parseWebhookEventTypes('events', input.events);
    const result = await handleCommand(this.ctx.eventStore, streams.webhooks(tenantId), webhookDecider, {
      type: 'ChangeWebhookEndpoint',
      data: { endpointId, ...(url === undefined ? {} : { url }), ...(events === undefined ? {} : { events }) },
      now: this.ctx.clock.now(),
    }, metadataOf(this.ctx, tenantId, actor));
    return result.state.endpoints.get(endpointId)!;
  }

  async remove(actor: Actor, tenantId: string, endpointIdInput: string) {
    const endpointId = parseEntityId('endpointId', endpointIdInput);
    await handleCommand(this.ctx.eventStore, streams.webhooks(tenantId), webhookDecider,
      { type: 'RemoveWebhookEndpoint', data: { endpointId }, now: this.ctx.clock.now() }, metadataOf(this.ctx, tenantId, actor));
    return endpointId;
  }

  /** Sending resumes where it stopped; enabling an enabled endpoint changes nothing. */
  async enable(actor: Actor, tenantId: string, endpointIdInput: string) {
    const endpointId = parseEntityId('endpointId', endpointIdInput);
    const result = await handleCommand(this.ctx.eventStore, streams.webhooks(tenantId), webhookDecider,
      { type: 'EnableWebhookEndpoint', data: { endpointId }, now: this.ctx.clock.now() }, metadataOf(this.ctx, tenantId, actor));
    return result.state.endpoints.get(endpointId)!;
  }
}

export const sealSecret = async (cipher: PersonalDataCipher, tenantId: string, secret: string): Promise<Sealed> => {
  const key = await cipher.keyFor(tenantKeyId(tenantId), { create: true });
  if (!key) throw new Error(`no data key for tenant ${tenantId}`);
  return cipher.seal(key, secret, sealContexts.webhookSecret);
};

/** An endpoint's signing secret, opened with the tenant's key; null once that key is destroyed. */
export const openWebhookSecret = async (cipher: PersonalDataCipher, tenantId: string, sealed: Sealed): Promise<string | null> => {
  const key = await cipher.keyFor(tenantKeyId(tenantId), { create: false });
  return key ? cipher.open(key, sealed, sealContexts.webhookSecret) : null;
};
