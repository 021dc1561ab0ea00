import { AsyncLocalStorage } from 'node:async_hooks';
import type http2 from 'node:http2';
import apn from '@parse/node-apn';
import type { Channel, OutboundMessage, Provider, SendOptions, SendOutcome } from '../../port';
import { accepted, collapseIdFor, credentialsRejected, describeError, givenUp, givenUpError, mayHaveArrived, permanent, retryAfterMs, sendEachWithin, transient, type Draft } from '../../outcomes';

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
  /** Per request (node-apn's own stream timeout, and our deadline for the whole send); default 5000. */
  requestTimeoutMs?: number;
};

/** One message's request as it goes through node-apn. */
type Call = { signal: AbortSignal; written: boolean; stream?: http2.ClientHttp2Stream; retryAfterMs?: number };
type Session = { request(headers: http2.OutgoingHttpHeaders): http2.ClientHttp2Stream };
type ClientInternals = { request: (session: Session, ...rest: unknown[]) => Promise<unknown> };

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
export function classifyApnsFailure(deliveryId: string, status: number, reason: string | undefined, retryAfter?: number): Draft {
  const token = reason !== undefined && REASON_TOKEN.test(reason) ? reason : 'no reason';
  if (status === 403 && CREDENTIALS_REFUSED.has(token)) return credentialsRejected(deliveryId, token);
  if (INVALID_DEVICE.has(token)) return permanent(deliveryId, `apns ${status} ${token}`, true);
  if (status === 429) return transient(deliveryId, `apns 429 ${token}`, { providerFault: false, retryAfterMs: retryAfter });
  if (status >= 500 || status === 403 || status === 404 || status === 405) {
    // Server errors, an expired provider token, a wrong path: not the device.
    return transient(deliveryId, `apns ${status} ${token}`, { providerFault: true, ...(status >= 500 ? { retryAfterMs: retryAfter } : {}) });
  }
  return permanent(deliveryId, `apns ${status} ${token}`, false);
}

/**
 * iOS push over APNs with @parse/node-apn (HTTP/2, token auth). The delivery id is sent as
 * apns-collapse-id (hashed when over 64 bytes) so a resend replaces the first on the device, and
 * as the custom payload key `deliveryId`; the deadline as apns-expiration. node-apn's own retries
 * are switched off (connectionRetryLimit 0): it retries 429/5xx immediately, without reading
 * Retry-After (it looks up 'Retry-After' in HTTP/2's lower-case headers), so the saga's backoff
 * does it instead, with the Retry-After read here off the stream. A call given up has its HTTP/2
 * stream destroyed (RST_STREAM), or, if node-apn has not opened it yet, never opens it: node-apn
 * has no cancellation of its own, so the adapter wraps the client's request step. Errors:
 * classifyApnsFailure.
 */
export class ApnsProvider implements Provider {
  readonly name: string;
  readonly channel: Channel;
  readonly maxBatch = 1;
  private readonly provider: apn.Provider;
  private readonly topic: string;
  private readonly timeoutMs: number;
  private readonly calls = new AsyncLocalStorage<Call>();

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
    this.timeoutMs = options.requestTimeoutMs ?? 5000;
    this.cancellable();
  }

  /**
   * node-apn's client writes each notification with request(session, ...), which opens the stream
   * with session.request(headers) and nothing else of the session: the session handed to it here
   * notes the stream for the current call, or opens none once the call is given up.
   */
  private cancellable(): void {
    const client = (this.provider as unknown as { client?: ClientInternals }).client;
    const request = client?.request;
    if (!client || typeof request !== 'function') throw new Error(`${this.name}: @parse/node-apn's client changed; its requests cannot be cancelled`);
    client.request = (session: Session, ...rest: unknown[]) => {
      const call = this.calls.getStore();
      if (!call) return request.call(client, session, ...rest);
      if (call.signal.aborted) return Promise.reject({ error: givenUpError(call.signal, false) });
      const tracked: Session = {
        request: (headers) => {
          const stream = session.request(headers);
          call.written = true;
          call.stream = stream;
          stream.once('response', (h: http2.IncomingHttpHeaders) => {
            const status = Number(h[':status']);
            if (status === 429 || status >= 500) call.retryAfterMs = retryAfterMs(h['retry-after']);
          });
          return stream;
        },
      };
      return request.call(client, tracked, ...rest);
    };
  }

  send(messages: readonly OutboundMessage[], options: SendOptions = {}): Promise<readonly SendOutcome[]> {
    return sendEachWithin(this.name, messages, options.signal, this.timeoutMs, (i, signal) => this.sendOne(messages[i]!, signal));
  }

  private sendOne(m: OutboundMessage, signal: AbortSignal): Promise<Draft> {
    const call: Call = { signal, written: false };
    const abort = () => call.stream?.destroy(givenUpError(signal, true));
    signal.addEventListener('abort', abort, { once: true });
    return this.calls.run(call, () => this.write(m, call)).finally(() => signal.removeEventListener('abort', abort));
  }

  private async write(m: OutboundMessage, call: Call): Promise<Draft> {
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
      if (call.signal.aborted) return givenUp(m.deliveryId, call.signal, call.written, 'apns');
      return transient(m.deliveryId, `apns: ${describeError(err, m.address)}`, { providerFault: true, maybeDelivered: mayHaveArrived(err) });
    }
    const sent = result.sent[0] as (apn.ResponseSent & { 'apns-id'?: string }) | undefined;
    if (sent) return accepted(m.deliveryId, sent['apns-id']);
    const failure = result.failed[0];
    if (failure?.status === undefined && call.signal.aborted) return givenUp(m.deliveryId, call.signal, call.written, 'apns');
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
    return classifyApnsFailure(m.deliveryId, status, reason, call.retryAfterMs);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.provider.shutdown(() => resolve()));
  }
}
