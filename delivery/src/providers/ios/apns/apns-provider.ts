import apn from '@parse/node-apn';
import type { Channel, OutboundMessage, Provider, SendOutcome } from '../../port';
import { accepted, collapseIdFor, describeError, mayHaveArrived, permanent, settle, transient, type Draft } from '../../outcomes';

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
 * iOS push over APNs with @parse/node-apn (HTTP/2, token auth). The delivery id is sent as
 * apns-collapse-id (hashed when over 64 bytes) so a resend replaces the first on the device, and
 * as the custom payload key `deliveryId`. node-apn's own retries are switched off
 * (connectionRetryLimit 0): it retries 429/5xx immediately, without reading Retry-After (it
 * looks up 'Retry-After' in HTTP/2's lower-case headers), so the saga's backoff does it instead.
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
    let result: apn.Responses<apn.ResponseSent, apn.ResponseFailure>;
    try {
      result = await this.provider.send(note, m.address);
    } catch (err) {
      return transient(m.deliveryId, `apns: ${describeError(err)}`, { providerFault: true, maybeDelivered: mayHaveArrived(err) });
    }
    const sent = result.sent[0] as (apn.ResponseSent & { 'apns-id'?: string }) | undefined;
    if (sent) return accepted(m.deliveryId, sent['apns-id']);
    const failure = result.failed[0];
    if (!failure) return transient(m.deliveryId, 'apns: no response', { providerFault: true, maybeDelivered: true });
    const status = failure.status;
    if (status === undefined) {
      // Timeouts, resets, TLS and connection errors come back as `error` without a status.
      return transient(m.deliveryId, `apns: ${failure.error ? describeError(failure.error) : 'request failed'}`, {
        providerFault: true,
        maybeDelivered: failure.error ? mayHaveArrived(failure.error) : true,
      });
    }
    // node-apn keeps Apple's {reason} except for 500 and 403 ExpiredProviderToken (an error instead).
    const reason = failure.response?.reason ?? (failure.error ? describeError(failure.error) : 'no reason');
    if (INVALID_DEVICE.has(reason)) return permanent(m.deliveryId, `apns ${status} ${reason}`, true);
    if (status === 429) return transient(m.deliveryId, `apns 429 ${reason}`, { providerFault: false });
    if (status >= 500 || status === 403 || status === 404 || status === 405) {
      // Server errors, and rejected provider tokens (our credentials, not the device).
      return transient(m.deliveryId, `apns ${status} ${reason}`, { providerFault: true });
    }
    return permanent(m.deliveryId, `apns ${status} ${reason}`, false);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.provider.shutdown(() => resolve()));
  }
}
