import type { DeviceKind } from '#schema/events';

/** A channel is a device kind: each has its own message shape and provider chain. */
export type Channel = DeviceKind;

/** One message to one device. `deliveryId` is deterministic (notification, user, device). */
export type OutboundMessage = Readonly<{
  deliveryId: string;
  /** Push token, email address or E.164 number, in clear (decrypted just before sending). */
  address: string;
  text: string;
  /** Epoch ms: the notification's deadline. Adapters pass it on where the vendor has a field for it. */
  expiresAt: number;
  /**
   * Opaque token (receipts.ts) the provider echoes back in its delivery receipt: Twilio's status
   * callback (?r=), SendGrid's custom_args.r. Ids only, so it may leave the service.
   */
  receipt?: string;
}>;

/**
 * `reason` is the vendor's code (HTTP status, Apple's or Google's reason token, Twilio's numeric
 * code, AWS's error code, the SMTP reply and enhanced status) and our own words, never the
 * provider's free text: that quotes the address, and reasons are stored in clear.
 */
export type SendOutcome =
  /** The provider took the message. */
  | Readonly<{ deliveryId: string; outcome: 'accepted'; providerMessageId?: string }>
  /** Retrying cannot help: bad or unregistered token, invalid address. The device is invalid. */
  | Readonly<{ deliveryId: string; outcome: 'permanent'; reason: string; invalidDevice: boolean }>
  /**
   * Worth retrying later (or on another provider): 429, 5xx, timeouts, connection errors.
   * `maybeDelivered`: the request may have reached the provider before the answer was lost (a
   * timeout, a connection dropped mid-request), so a retry may deliver the message twice.
   * `credentialsRejected`: the provider refused the integration's credentials (the account, not
   * the device); `reason` is then the vendor's code alone, e.g. 'InvalidProviderToken',
   * 'UNAUTHENTICATED', 'sendgrid 401', 'twilio 20003', 'InvalidClientTokenId', 'smtp 535'.
   */
  | Readonly<{
      deliveryId: string;
      outcome: 'transient';
      reason: string;
      retryAfterMs?: number;
      maybeDelivered?: true;
      credentialsRejected?: true;
    }>;

export type SendOptions = Readonly<{
  /**
   * Aborted when the caller gives the call up (its deadline, the breaker's timeout). From then on
   * the adapter writes nothing more: a request not yet written (queued behind a connection, waiting
   * for a token, not yet built) never will be; one on the wire is cancelled (its socket, HTTP/2
   * stream or SMTP connection destroyed); the SDK retries nothing. `send` then settles at once,
   * each unanswered message transient with `maybeDelivered` only where its request may have been
   * written. An already aborted signal sends nothing.
   */
  signal?: AbortSignal;
  /**
   * Called each time the provider answers one of the call's requests (any status), before the
   * call settles: a batch call (FCM's sendEach) shows the provider alive while its slowest
   * message is still out. Optional for adapters whose calls carry one request.
   */
  onAnswer?: () => void;
}>;

/**
 * One vendor for one channel, using the vendor's own client library. `send` never throws for a
 * per-message failure: each message gets an outcome. It throws only when the whole call failed
 * (connection refused, timeout, 5xx for a batch endpoint), which the circuit breaker counts.
 * Adapters never retry (their SDKs' own retries are off): every attempt is the router's, inside
 * its deadline, so the breaker sees every failure.
 */
export interface Provider {
  /** Unique, stable: used in events, metrics and breaker names, e.g. "apns", "fcm-primary". */
  readonly name: string;
  readonly channel: Channel;
  /** Most messages one `send` call may carry (FCM sendEach 500, SendGrid 1000, others 1). */
  readonly maxBatch: number;
  /**
   * Requests a call of `messages` puts on connections at once: one per message by default (FCM's
   * sendEach), one per call for a batch endpoint (SendGrid). The router counts these against the
   * integration's concurrency, which the adapter's connection pool is at least as large as, so no
   * request ever waits in an HTTP agent's queue.
   */
  requestsPerCall?(messages: number): number;
  send(messages: readonly OutboundMessage[], options?: SendOptions): Promise<readonly SendOutcome[]>;
  close(): Promise<void>;
}
