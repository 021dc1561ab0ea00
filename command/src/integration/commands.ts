import { streams, tenantKeyId } from '#schema/streams';
import { conflict } from '#schema/errors';
import { PLATFORM, type IntegrationInput, type IntegrationSecret } from '#schema/integrations';
import type { IntegrationEvent, Sealed } from '#schema/events';
import { fingerprintOf, hintOf, parseIntegrationInput } from '#schema/values';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import { handleCommand, StreamCache } from '../handler';
import { metadataOf, type Actor, type CommandContext } from '../context';
import { integrationDecider, type IntegrationsState } from './decider';
import { sealContexts } from '#schema/sealed';

const SYSTEM: Actor = { keyId: 'system', requestId: 'delivery' };

/**
 * Provider integrations of a tenant, or the platform defaults (owner `platform`). The secret part
 * is sealed with the owner's data key before the decider sees it: no event, store or log holds it
 * in clear, and destroying the owner's key destroys it.
 */
export class IntegrationCommands {
  readonly cache: StreamCache<IntegrationEvent, IntegrationsState>;

  constructor(private readonly ctx: CommandContext) {
    this.cache = new StreamCache(ctx.eventStore, integrationDecider, 1_000);
  }

  async state(owner: string): Promise<IntegrationsState> {
    return (await this.cache.load(streams.integrations(owner))).state;
  }

  /** Creates or replaces one integration. `allowEndpoint`: the operator allows custom endpoints. */
  async configure(actor: Actor, owner: string, input: IntegrationInput, options: Readonly<{ allowEndpoint: boolean }>) {
    const { spec, secret } = parseIntegrationInput(input, options);
    if (owner !== PLATFORM && (await this.state(PLATFORM)).integrations.has(spec.name)) {
      throw conflict(`"${spec.name}" names a platform default integration; choose another name`);
    }
    const key = await this.ctx.cipher.keyFor(tenantKeyId(owner), { create: true });
    if (!key) throw new Error(`no data key for ${owner}`);
    const credentials = this.ctx.cipher.seal(key, JSON.stringify(secret), sealContexts.integrationCredentials);
    return handleCommand(this.ctx.eventStore, streams.integrations(owner), integrationDecider, {
      type: 'ConfigureProvider',
      data: { owner, spec, credentials, fingerprint: fingerprintOf(secret), hint: hintOf(secret) },
      now: this.ctx.clock.now(),
    }, metadataOf(this.ctx, owner, actor), { cache: this.cache });
  }

  async remove(actor: Actor, owner: string, name: string) {
    return handleCommand(this.ctx.eventStore, streams.integrations(owner), integrationDecider,
      { type: 'RemoveProvider', data: { owner, name }, now: this.ctx.clock.now() },
      metadataOf(this.ctx, owner, actor), { cache: this.cache });
  }

  /** Recorded by delivery when a provider refuses the credentials: the integration is skipped until configured again. */
  async rejectCredentials(owner: string, name: string, fingerprint: string, code: string) {
    return handleCommand(this.ctx.eventStore, streams.integrations(owner), integrationDecider,
      { type: 'RejectProviderCredentials', data: { owner, name, fingerprint, code }, now: this.ctx.clock.now() },
      metadataOf(this.ctx, owner, SYSTEM), { cache: this.cache });
  }
}

/** The secret of an integration, opened with its owner's key; null once that key is destroyed. */
export const openIntegrationSecret = async (cipher: PersonalDataCipher, owner: string, sealed: Sealed): Promise<IntegrationSecret | null> => {
  const key = await cipher.keyFor(tenantKeyId(owner), { create: false });
  if (!key) return null;
  return JSON.parse(cipher.open(key, sealed, sealContexts.integrationCredentials)) as IntegrationSecret;
};
