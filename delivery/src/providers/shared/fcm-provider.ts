import https from 'node:https';
import tls from 'node:tls';
import { deleteApp, initializeApp, type App, type Credential } from 'firebase-admin/app';
import { getMessaging, type BatchResponse, type Message, type Messaging } from 'firebase-admin/messaging';
import type { Channel, OutboundMessage, Provider, SendOutcome } from '../port';
import { accepted, collapseIdFor, describeError, mayHaveArrived, permanent, settle, transient, type Draft } from '../outcomes';

/** FCM's fixed host; the sandbox's certificate covers it, so TLS verifies against the sandbox CA. */
export const FCM_HOST = 'fcm.googleapis.com';

export type FcmSandboxTarget = { host: string; port: number; ca: string; accessToken: string };

export type FcmProviderOptions = {
  /** Unique: "fcm-primary", "fcm-secondary", "fcm-ios". */
  name: string;
  channel: Channel;
  /** How the message is shaped: android.collapse_key, or APNs headers for iOS devices via FCM. */
  platform: 'android' | 'ios';
  projectId: string;
  /** Production: a firebase-admin credential (cert(), applicationDefault()). Ignored with `sandbox`. */
  credential?: Credential;
  /**
   * Sandbox mode only: a static access token, and an https.Agent whose createConnection opens TLS
   * to the sandbox with servername fcm.googleapis.com and the sandbox CA. firebase-admin's HTTP/2
   * transport ignores `httpAgent`, so sandbox mode switches to the legacy HTTP/1.1 transport.
   */
  sandbox?: FcmSandboxTarget;
  /** Production: use the HTTP/1.1 transport too (the SDK's default is HTTP/2). */
  legacyHttpTransport?: boolean;
  /** The project's send quota, for the scheduler's token bucket and admission estimate. */
  quotaPerSecond?: number;
  /**
   * firebase-admin does not expose the Retry-After of a 429, so QUOTA_EXCEEDED reports this.
   * Default 60 s (FCM's advice for quota errors).
   */
  quotaRetryAfterMs?: number;
  /** Whole-call limit: the SDK's own timeout is 15 s per attempt with up to 4 retries. Default 10 s. */
  timeoutMs?: number;
  /** Sockets to the sandbox (HTTP/1.1: one request in flight per socket). Default 256. */
  maxSockets?: number;
};

let appSeq = 0;

const INVALID_DEVICE_CODES = new Set(['messaging/registration-token-not-registered', 'messaging/invalid-registration-token']);
const RATE_CODES = new Set([
  'messaging/message-rate-exceeded',
  'messaging/device-message-rate-exceeded',
  'messaging/topics-message-rate-exceeded',
]);
/** Our own request is wrong: retrying or failing over cannot help, but the device is fine. */
const BAD_REQUEST_CODES = new Set([
  'messaging/payload-size-limit-exceeded',
  'messaging/invalid-options',
  'messaging/invalid-data-payload-key',
  'messaging/invalid-package-name',
  'messaging/invalid-payload',
  'messaging/invalid-recipient',
  'messaging/mismatched-credential',
]);

/**
 * FCM HTTP v1 through firebase-admin's `sendEach` (up to 500 messages, one request each). The
 * delivery id is the Android collapse key (or apns-collapse-id for iOS devices), and travels as
 * data.deliveryId. Error mapping: unregistered / invalid token → permanent + invalidDevice
 * (INVALID_ARGUMENT counts as a bad token when FCM's message names the registration token);
 * other invalid requests → permanent; quota → transient with quotaRetryAfterMs; unavailable,
 * internal, auth and network errors → transient provider faults.
 * Note: firebase-admin itself retries 503s and connection resets up to 4 times, honouring
 * Retry-After up to 60 s, before a message comes back as unavailable.
 */
export class FcmProvider implements Provider {
  readonly name: string;
  readonly channel: Channel;
  readonly maxBatch = 500;
  readonly quotaPerSecond: number | undefined;
  readonly projectId: string;
  private readonly app: App;
  private readonly messaging: Messaging;
  private readonly agent: https.Agent | undefined;
  private readonly platform: 'android' | 'ios';
  private readonly quotaRetryAfterMs: number;
  private readonly timeoutMs: number;

  constructor(options: FcmProviderOptions) {
    this.name = options.name;
    this.channel = options.channel;
    this.platform = options.platform;
    this.projectId = options.projectId;
    this.quotaPerSecond = options.quotaPerSecond;
    this.quotaRetryAfterMs = options.quotaRetryAfterMs ?? 60_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const sandbox = options.sandbox;
    let credential: Credential;
    if (sandbox) {
      const agent = new https.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 });
      // Every request for fcm.googleapis.com:443 goes to the sandbox, verified against its CA.
      (agent as unknown as { createConnection: () => tls.TLSSocket }).createConnection = () =>
        tls.connect({ host: sandbox.host, port: sandbox.port, servername: FCM_HOST, ca: sandbox.ca, ALPNProtocols: ['http/1.1'] });
      this.agent = agent;
      const token = sandbox.accessToken;
      credential = { getAccessToken: async () => ({ access_token: token, expires_in: 3600 }) };
    } else {
      if (!options.credential) throw new Error(`${options.name}: a credential is required outside sandbox mode`);
      credential = options.credential;
      this.agent = options.legacyHttpTransport ? new https.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 }) : undefined;
    }
    this.app = initializeApp(
      { projectId: options.projectId, credential, ...(this.agent ? { httpAgent: this.agent } : {}) },
      `${options.name}#${++appSeq}`,
    );
    this.messaging = getMessaging(this.app);
    if (sandbox || options.legacyHttpTransport) this.messaging.enableLegacyHttpTransport();
  }

  private toMessage(m: OutboundMessage): Message {
    const base = { token: m.address, notification: { body: m.text }, data: { deliveryId: m.deliveryId } };
    if (this.platform === 'android') {
      return { ...base, android: { collapseKey: m.deliveryId, priority: 'high' } };
    }
    return {
      ...base,
      apns: {
        headers: { 'apns-collapse-id': collapseIdFor(m.deliveryId), 'apns-push-type': 'alert', 'apns-priority': '10' },
        payload: { aps: {} },
      },
    };
  }

  async send(messages: readonly OutboundMessage[]): Promise<readonly SendOutcome[]> {
    if (messages.length === 0) return [];
    if (messages.length > this.maxBatch) throw new RangeError(`${this.name}: ${messages.length} messages, at most ${this.maxBatch}`);
    let timer: NodeJS.Timeout | undefined;
    let response: BatchResponse | 'timeout';
    try {
      response = await Promise.race([
        this.messaging.sendEach(messages.map((m) => this.toMessage(m))),
        new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.timeoutMs))),
      ]);
    } catch (err) {
      const reason = `fcm: ${describeError(err)}`;
      const maybeDelivered = mayHaveArrived(err);
      return settle(this.name, messages.map((m) => transient(m.deliveryId, reason, { providerFault: true, maybeDelivered })));
    } finally {
      clearTimeout(timer);
    }
    if (response === 'timeout') {
      const reason = `fcm: no answer within ${this.timeoutMs} ms`;
      return settle(this.name, messages.map((m) => transient(m.deliveryId, reason, { providerFault: true, maybeDelivered: true })));
    }
    const drafts = response.responses.map((r, i): Draft => {
      const id = messages[i]!.deliveryId;
      if (r.success) return accepted(id, r.messageId);
      return this.classify(id, r.error);
    });
    return settle(this.name, drafts);
  }

  private classify(deliveryId: string, error: unknown): Draft {
    const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : 'unknown';
    const message = error instanceof Error ? error.message : String(error);
    const reason = `fcm ${code}: ${message}`;
    if (INVALID_DEVICE_CODES.has(code)) return permanent(deliveryId, reason, true);
    if (code === 'messaging/invalid-argument') return permanent(deliveryId, reason, /registration token/i.test(message));
    if (BAD_REQUEST_CODES.has(code)) return permanent(deliveryId, reason, false);
    if (RATE_CODES.has(code)) return transient(deliveryId, reason, { providerFault: false, retryAfterMs: this.quotaRetryAfterMs });
    // server-unavailable, internal-error, unknown-error, third-party-auth-error,
    // authentication-error, app/network-error, app/network-timeout, ...
    return transient(deliveryId, reason, { providerFault: true, maybeDelivered: mayHaveArrived(error) });
  }

  async close(): Promise<void> {
    await deleteApp(this.app);
    this.agent?.destroy();
  }
}
