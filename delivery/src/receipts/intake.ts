import { PLATFORM } from '#schema/integrations';
import type { Logger } from '#platform/logger';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Commands } from '#command/application';
import { openIntegrationSecret } from '#command/integration/commands';
import { sendgridReceipts, twilioReceipt, verifySendgridEvents, verifyTwilioCallback, type ProviderReceipt } from '../providers/receipts';

export type Callback = Readonly<{
  vendor: string;
  owner: string;
  name: string;
  url: string;
  headers: Readonly<Record<string, string | undefined>>;
  body: string;
}>;

type IntegrationOf = NonNullable<ReturnType<Awaited<ReturnType<Commands['integrations']['state']>>['integrations']['get']>>;

/** What a callback may claim: a tenant's own integration only its own deliveries, a platform default any tenant's. */
const mayClaim = (owner: string, receipt: ProviderReceipt): boolean => owner === PLATFORM || receipt.ref.tenantId === owner;

/**
 * Providers' delivery receipts in: the callback's signature is checked against the integration's
 * own credentials (Twilio: HMAC-SHA1 with the account's auth token over the URL and parameters;
 * SendGrid: ECDSA with the event webhook's verification key), then each receipt is recorded once
 * per delivery. An unsigned, wrongly signed or unknown callback is refused with 403 and recorded
 * nowhere; one that claims another tenant's deliveries likewise.
 */
export const createReceiptIntake = (
  deps: Readonly<{
    commands: Pick<Commands, 'integrations' | 'receipts'>;
    cipher: PersonalDataCipher;
    logger: Logger;
    /**
     * How long an integration's state and opened secret serve its callbacks (a provider sends
     * one per message): a change of credentials takes effect on callbacks within this time.
     */
    credentialsTtlMs?: number;
    now?: () => number;
  }>,
) => {
  const ttl = deps.credentialsTtlMs ?? 1_000;
  const now = deps.now ?? Date.now;
  type Opened = Readonly<{ integration: IntegrationOf; secret: Awaited<ReturnType<typeof openIntegrationSecret>> }>;
  const opened = new Map<string, Readonly<{ at: number; value: Promise<Opened | null> }>>();
  const openCached = (owner: string, name: string): Promise<Opened | null> => {
    const key = `${owner}\u0000${name}`;
    const t = now();
    const hit = opened.get(key);
    if (hit && t - hit.at < ttl) return hit.value;
    if (opened.size > 10_000) opened.clear();
    const value = (async () => {
      const integration = (await deps.commands.integrations.state(owner)).integrations.get(name);
      if (!integration) return null;
      return { integration, secret: await openIntegrationSecret(deps.cipher, owner, integration.credentials).catch(() => null) };
    })();
    opened.set(key, { at: t, value });
    // A failed read is not kept.
    value.catch(() => opened.delete(key));
    return value;
  };
  const record = async (owner: string, name: string, receipts: readonly ProviderReceipt[], requestId: string): Promise<number> => {
    if (receipts.some((r) => !mayClaim(owner, r))) return 403;
    for (const r of receipts) {
      await deps.commands.receipts.record({
        tenantId: r.ref.tenantId,
        notificationId: r.ref.notificationId,
        requestedPosition: r.ref.requestedPosition,
        requestedAt: r.ref.requestedAt,
        delivery: { deliveryId: r.ref.deliveryId, userId: r.ref.userId, deviceId: r.ref.deviceId, channel: r.ref.channel },
        provider: name,
        status: r.status,
        providerStatus: r.providerStatus,
        errorCode: r.errorCode ?? null,
      }, requestId);
    }
    return 200;
  };

  const handle = async (c: Callback): Promise<number> => {
    const found = await openCached(c.owner, c.name);
    if (!found || found.integration.vendor !== c.vendor) return 403;
    const { integration, secret } = found;
    if (!secret) return 403;
    const requestId = `receipt-${c.vendor}-${c.owner}.${c.name}`;
    if (secret.vendor === 'twilio' && integration.settings.vendor === 'twilio') {
      // Twilio signs with the account's auth token; an integration with an API key only cannot verify.
      if (!('authToken' in secret)) return 403;
      const params = Object.fromEntries(new URLSearchParams(c.body));
      if (!verifyTwilioCallback(secret.authToken, c.headers['x-twilio-signature'] ?? '', c.url, params)) return 403;
      if (params['AccountSid'] !== integration.settings.accountSid) return 403;
      const receipt = twilioReceipt(params, new URL(c.url).searchParams.get('r'));
      return receipt ? record(c.owner, c.name, [receipt], requestId) : 200;
    }
    if (secret.vendor === 'sendgrid' && integration.settings.vendor === 'sendgrid') {
      const key = integration.settings.webhookPublicKey;
      if (!key) return 403;
      const signature = c.headers['x-twilio-email-event-webhook-signature'] ?? '';
      const timestamp = c.headers['x-twilio-email-event-webhook-timestamp'] ?? '';
      if (!verifySendgridEvents(key, c.body, signature, timestamp)) return 403;
      let events: unknown;
      try {
        events = JSON.parse(c.body);
      } catch {
        return 400;
      }
      return record(c.owner, c.name, sendgridReceipts(events), requestId);
    }
    return 403;
  };

  return {
    handle: async (c: Callback): Promise<number> => {
      try {
        return await handle(c);
      } catch (e) {
        deps.logger.error({ err: e, vendor: c.vendor, owner: c.owner, integration: c.name }, 'recording a delivery receipt failed');
        return 500;
      }
    },
  };
};
