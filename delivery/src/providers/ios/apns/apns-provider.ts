import apn from '@parse/node-apn';
import type { Channel, OutboundMessage, Provider, SendOutcome } from '../../port';
import { accepted, collapseIdFor, credentialsRejected, describeError, mayHaveArrived, permanent, settle, transient, type Draft } from '../../outcomes';

export type ApnsProviderOptions = {
  /** Default "apns". */
  name?: string;
  channel?: Channel;
  /** Token-based auth: the .p8 signing key (PKCS#8 PEM, ES256) and its ids. */
  token: { key: string; keyId: string; teamId: string };
  /** The app's bundle id (apns-topic). */
  topic: string;
  /** api.push.apple.com when true, api.sandbox.push.apple.com otherwise (ignored with `address`). */
  production?: boolean;
  /** Sandbox mode: the sandbox's host, port and CA. */
  address?: string;
  port?: number;
  ca?: string;
  /** Per request; default 5000 (node-apn's default). */
  requestTimeoutMs?: number;
};

/** Reasons that say the token itself is bad for this app: the device is invalid. */
const INVALID_DEVICE = new Set(['BadDeviceToken', 'Unregistered', 'DeviceTokenNotForTopic', 'ExpiredToken']);
/**
 * 403 reasons that refuse the account: the signing key or its ids (token auth), or the
 * certificate (certificate auth). ExpiredProviderToken is not one: it says the JWT is over an
 * hour old, which the client fixes by signing a new one.
 */
const CREDENTIALS_REFUSED = new Set(['InvalidProviderToken', 'MissingProviderToken', 'BadCertificate', 'BadCertificateEnvironment']);
/** Apple's reasons are single words; anything else (an error's text) is not passed on. */
const REASON_TOKEN = /^[A-Za-z]{1,64}$/;

/**
 * An answer from APNs with a status. Reasons are Apple's tokens (BadDeviceToken...), which never
 * quote the device token.
 */
export function classifyApnsFailure(deliveryId: string, status: number, reason: string | undefined): Draft {
  const token = reason !== undefined && REASON_TOKEN.test(reason) ? reason : 'no reason';
  if (status === 403 && CREDENTIALS_REFUSED.has(token)) return credentialsRejected(deliveryId, token);
  if (INVALID_DEVICE.has(token)) return permanent(deliveryId, `apns ${status} ${token}`, true);
  if (status === 429) return transient(deliveryId, `apns 429 ${token}`, { providerFault: false });
  if (status >= 500 || status === 403 || status === 404 || status === 405) {
    // Server errors, an expired provider token, a wrong path: not the device.
    return transient(deliveryId, `apns ${status} ${token}`, { providerFault: true });
  }
  return permanent(deliveryId, `apns ${status} ${token}`, false);
}

/**
 * iOS push over APNs with @parse/node-apn (HTTP/2, token auth). The delivery id is sent as
 * apns-collapse-id (hashed when over 64 bytes) so a resend replaces the first on the device, and
 * as the custom payload key `deliveryId`; the deadline as apns-expiration. node-apn's own retries
 * are switched off (connectionRetryLimit 0): it retries 429/5xx immediately, without reading
 * Retry-After (it looks up 'Retry-After' in HTTP/2's lower-case headers), so the saga's backoff
 * does it instead. Errors: classifyApnsFailure.
 */
export class ApnsProvider implements Provider {
  readonly name: string;
  readonly channel: Channel;
  readonly maxBatch = 1;
  private readonly provider: apn.Provider;
  private readonly topic: string;

  constructor(options: ApnsProviderOptions) {
    this.name = options.name ?? 'apns';
    this.channel = options.channel ?? 'ios';
    this.topic = options.topic;
    this.provider = new apn.Provider({
      token: options.token,
      production: options.production ?? false,
      ...(options.address !== undefined ? { address: options.address } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.ca !== undefined ? { ca: [options.ca] } : {}),
      rejectUnauthorized: true,
      connectionRetryLimit: 0,
      requestTimeout: options.requestTimeoutMs ?? 5000,
    });
  }

  async send(messages: readonly OutboundMessage[]): Promise<readonly SendOutcome[]> {
    const drafts = await Promise.all(messages.map((m) => this.sendOne(m)));
    return settle(this.name, drafts);
  }

  private async sendOne(m: OutboundMessage): Promise<Draft> {
    const note = new apn.Notification();
    note.topic = this.topic;
    note.pushType = 'alert';
    note.priority = 10;
    note.alert = m.text;
    note.collapseId = collapseIdFor(m.deliveryId);
    note.payload = { deliveryId: m.deliveryId };
    note.expiry = Math.floor(m.expiresAt / 1000);
    let result: apn.Responses<apn.ResponseSent, apn.ResponseFailure>;
    try {
      result = await this.provider.send(note, m.address);
    } catch (err) {
      return transient(m.deliveryId, `apns: ${describeError(err, m.address)}`, { providerFault: true, maybeDelivered: mayHaveArrived(err) });
    }
    const sent = result.sent[0] as (apn.ResponseSent & { 'apns-id'?: string }) | undefined;
    if (sent) return accepted(m.deliveryId, sent['apns-id']);
    const failure = result.failed[0];
    if (!failure) return transient(m.deliveryId, 'apns: no response', { providerFault: true, maybeDelivered: true });
    const status = failure.status;
    if (status === undefined) {
      // Timeouts, resets, TLS and connection errors come back as `error` without a status.
      return transient(m.deliveryId, `apns: ${failure.error ? describeError(failure.error, m.address) : 'request failed'}`, {
        providerFault: true,
        maybeDelivered: failure.error ? mayHaveArrived(failure.error) : true,
      });
    }
    // node-apn keeps Apple's {reason} except for 500 and 403 ExpiredProviderToken (an error instead).
    const reason = failure.response?.reason ?? (failure.error?.message.match(/\b(ExpiredProviderToken|InternalServerError)\b/)?.[1]);
    return classifyApnsFailure(m.deliveryId, status, reason);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.provider.shutdown(() => resolve()));
  }
}
