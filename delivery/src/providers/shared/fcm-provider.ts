import crypto from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import { applicationDefault, cert, deleteApp, initializeApp, type App, type Credential, type ServiceAccount } from 'firebase-admin/app';
import { getMessaging, type BatchResponse, type Message, type Messaging } from 'firebase-admin/messaging';
import type { Channel, OutboundMessage, Provider, SendOptions, SendOutcome } from '../port';
import { ABANDONED, accepted, collapseIdFor, credentialsRejected, givenUp, mayHaveArrived, permanent, settle, transient, UNSENT, withDeadline, type Draft } from '../outcomes';
import { CallAgent } from './call-agent';

/** FCM's fixed host; the sandbox's certificate covers it, so TLS verifies against the sandbox CA. */
export const FCM_HOST = 'fcm.googleapis.com';
/** Where google-auth-library exchanges a service account's signed JWT for an access token. */
export const GOOGLE_OAUTH_HOST = 'oauth2.googleapis.com';

/** A service account's identity and key, as its JSON key file gives them. */
export type FcmServiceAccount = Readonly<{ projectId: string; clientEmail: string; privateKey: string; privateKeyId?: string }>;

export type FcmCredentials =
  | Readonly<{ type: 'serviceAccount'; serviceAccount: FcmServiceAccount }>
  /** The platform's own Google identity (GOOGLE_APPLICATION_CREDENTIALS, metadata server): never a tenant's. */
  | Readonly<{ type: 'applicationDefault' }>
  /** A fixed OAuth token, as the sandbox accepts; Google's expire within the hour. */
  | Readonly<{ type: 'accessToken'; accessToken: string }>;

/** Where every HTTPS connection of the app goes instead of Google: a sandbox, a relay. */
export type FcmRedirect = Readonly<{ host: string; port: number; ca: string }>;

export type FcmProviderOptions = {
  /** Unique: "fcm-primary", "fcm-secondary", "fcm-ios". */
  name: string;
  channel: Channel;
  /** How the message is shaped: android.collapse_key, or APNs headers for iOS devices via FCM. */
  platform: 'android' | 'ios';
  projectId: string;
  credentials: FcmCredentials;
  /**
   * firebase-admin's hosts are fixed, so this is a TLS redirect: an https.Agent whose
   * createConnection opens TLS to host:port with servername set to the host asked for
   * (fcm.googleapis.com, and oauth2.googleapis.com where a service account fetches its tokens),
   * trusting `ca`. A service account exchanges its tokens through the same agent.
   * firebase-admin's HTTP/2 transport ignores `httpAgent`, so a redirect switches to the legacy
   * HTTP/1.1 transport (which every FCM client here uses: see FcmProvider).
   */
  redirect?: FcmRedirect;
  /** The project's send quota, for the scheduler's token bucket and admission estimate. */
  quotaPerSecond?: number;
  /**
   * firebase-admin does not expose the Retry-After of a 429, so QUOTA_EXCEEDED reports this.
   * Default 60 s (FCM's advice for quota errors).
   */
  quotaRetryAfterMs?: number;
  /**
   * Whole-call limit, enforced like the caller's signal: the call's requests are cancelled (the
   * SDK's own limit is 15 s per request). Default 10 s.
   */
  timeoutMs?: number;
  /**
   * HTTP/1.1 sockets (one request in flight on each). Default 256; the router keeps it at least the
   * integration's concurrency, so no request waits in the agent's queue.
   */
  maxSockets?: number;
};

let appSeq = 0;

const INVALID_DEVICE_CODES = new Set(['messaging/registration-token-not-registered', 'messaging/invalid-registration-token']);
/** What a code means, in our words: FCM's messages may quote the request. */
const WORDS: Readonly<Record<string, string>> = {
  'messaging/registration-token-not-registered': 'token no longer registered',
  'messaging/invalid-registration-token': 'invalid registration token',
  'messaging/message-rate-exceeded': 'sending too fast',
  'messaging/device-message-rate-exceeded': 'sending too fast to this device',
  'messaging/server-unavailable': 'server unavailable',
  'messaging/internal-error': 'server error',
  'messaging/payload-size-limit-exceeded': 'message too large',
};

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
]);
/** Errors from the OAuth token exchange that mean the service account itself was refused. */
const OAUTH_REFUSALS = /\b(invalid_grant|invalid_client|unauthorized_client|access_denied)\b/;

const TOKEN_URL = `https://${GOOGLE_OAUTH_HOST}/token`;

/** firebase-admin's retries (4, on 503s, resets and timeouts, honouring Retry-After up to 60 s): none. */
const NO_RETRIES = { maxRetries: 0, statusCodes: [], ioErrorCodes: [], backOffFactor: 0, maxDelayInMillis: 0 };
type RetryingClient = { retry?: unknown };

/**
 * firebase-admin has no option for its HTTP retries, so they are switched off on the messaging
 * request handler's clients (its RetryConfig, as RequestClient reads it on each failure). Throws
 * when a release moves them: retries hidden from the breaker must not come back unnoticed.
 */
function disableSdkRetries(messaging: Messaging, name: string): void {
  const handler = (messaging as unknown as { messagingRequestHandler?: { httpClient?: RetryingClient; http2Client?: RetryingClient } }).messagingRequestHandler;
  const clients = [handler?.httpClient, handler?.http2Client];
  if (clients.some((c) => c === undefined || !('retry' in c))) {
    throw new Error(`${name}: firebase-admin's request handler changed; its retries cannot be switched off`);
  }
  for (const c of clients) c!.retry = { ...NO_RETRIES };
}
const TOKEN_SCOPES = 'https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/firebase.messaging';

/**
 * A service account's access tokens fetched through `agent`: Google's JWT-bearer exchange (RFC
 * 7523), as google-auth-library makes it. Used behind a redirect only, because firebase-admin
 * 13's cert(account, agent) does not hand the agent to its token client (google-auth-library's
 * fromJSON is called without the client options), so its exchange would go to Google itself.
 * firebase-admin caches the token and asks again five minutes before it expires.
 */
export function serviceAccountCredential(sa: FcmServiceAccount, agent: https.Agent, timeoutMs = 10_000): Credential {
  // Every call waiting for a token shares this request: no one call's cancellation may end it.
  const detached = <T,>(fn: () => T): T => (agent instanceof CallAgent ? agent.outside(fn) : fn());
  const key = crypto.createPrivateKey(sa.privateKey);
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return {
    getAccessToken: () => {
      const iat = Math.floor(Date.now() / 1000);
      const unsigned = `${b64({ alg: 'RS256', typ: 'JWT', ...(sa.privateKeyId ? { kid: sa.privateKeyId } : {}) })}.${b64({
        iss: sa.clientEmail,
        scope: TOKEN_SCOPES,
        aud: TOKEN_URL,
        iat,
        exp: iat + 3600,
      })}`;
      const assertion = `${unsigned}.${crypto.sign('RSA-SHA256', Buffer.from(unsigned), key).toString('base64url')}`;
      const form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString();
      return new Promise((resolve, reject) => {
        const req = detached(() => https.request(
          TOKEN_URL,
          { method: 'POST', agent, timeout: timeoutMs, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(form) } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('error', reject);
            res.on('end', () => {
              let body: { access_token?: unknown; expires_in?: unknown; error?: unknown } = {};
              try {
                body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
              } catch {
                // not JSON: reported by status below
              }
              if (res.statusCode === 200 && typeof body.access_token === 'string') {
                resolve({ access_token: body.access_token, expires_in: typeof body.expires_in === 'number' ? body.expires_in : 3600 });
                return;
              }
              // OAuth's error code only (invalid_grant...): the description may echo the request.
              const code = typeof body.error === 'string' && /^[a-z_]{1,40}$/.test(body.error) ? body.error : `status ${res.statusCode}`;
              reject(new Error(`token exchange refused: ${code}`));
            });
          },
        ));
        req.on('timeout', () => req.destroy(Object.assign(new Error('token exchange timed out'), { code: 'ETIMEDOUT' })));
        req.on('error', reject);
        req.end(form);
      });
    },
  };
}

function credentialOf(c: FcmCredentials, agent: https.Agent | undefined, redirected: boolean): Credential {
  switch (c.type) {
    case 'serviceAccount': {
      const sa = c.serviceAccount;
      if (redirected && agent) return serviceAccountCredential(sa, agent);
      // google-auth-library reads the key id (the token request's JWT kid) from the file's snake_case name.
      const account = { projectId: sa.projectId, clientEmail: sa.clientEmail, privateKey: sa.privateKey, ...(sa.privateKeyId ? { private_key_id: sa.privateKeyId } : {}) };
      return cert(account as ServiceAccount, agent);
    }
    case 'applicationDefault':
      return applicationDefault(agent);
    case 'accessToken': {
      const token = c.accessToken;
      return { getAccessToken: async () => ({ access_token: token, expires_in: 3600 }) };
    }
    default: {
      const never: never = c;
      throw new Error(`unknown FCM credential type ${(never as { type: string }).type}`);
    }
  }
}

/**
 * FCM HTTP v1 through firebase-admin's `sendEach` (up to 500 messages, one request each). The
 * delivery id is the Android collapse key (or apns-collapse-id for iOS devices), and travels as
 * data.deliveryId; the deadline as android.ttl (time left) or apns-expiration. Error mapping:
 * unregistered / invalid token → permanent + invalidDevice (INVALID_ARGUMENT counts as a bad
 * token when FCM's message names the registration token); other invalid requests → permanent;
 * quota → transient with quotaRetryAfterMs; refused credentials (see classifyFcmError) →
 * credentialsRejected; unavailable, internal and network errors → transient provider faults.
 * firebase-admin's own retries (4 on 503s and resets) are switched off: the router retries, inside
 * its deadline, and the breaker sees every failure. Its HTTP/1.1 transport is used everywhere
 * (the HTTP/2 one ignores the agent), through a CallAgent: a call given up has its requests
 * cancelled, those not yet on a socket never written. Retry-After of a 429 or 503 is read off the
 * responses (the SDK drops it).
 */
export class FcmProvider implements Provider {
  readonly name: string;
  readonly channel: Channel;
  readonly maxBatch = 500;
  readonly quotaPerSecond: number | undefined;
  readonly projectId: string;
  private readonly app: App;
  private readonly messaging: Messaging;
  private readonly agent: CallAgent;
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
    const redirect = options.redirect;
    if (redirect && options.credentials.type === 'applicationDefault') {
      throw new Error(`${options.name}: a redirect needs a service account or an access token, not the application default`);
    }
    const agent = new CallAgent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 });
    if (redirect) {
      // Every HTTPS request of this app (FCM sends, OAuth token fetches) goes to the redirect,
      // presenting the name it asked for, verified against the redirect's CA (one context for all
      // connections: making one per connection parses the CA again each time).
      const secureContext = tls.createSecureContext({ ca: redirect.ca });
      (agent as unknown as { createConnection: (o: { host?: string; servername?: string }) => tls.TLSSocket }).createConnection = (o) =>
        tls.connect({ host: redirect.host, port: redirect.port, servername: o.servername || o.host || FCM_HOST, secureContext, ALPNProtocols: ['http/1.1'] });
    }
    this.agent = agent;
    const credential = credentialOf(options.credentials, this.agent, redirect !== undefined);
    this.app = initializeApp({ projectId: options.projectId, credential, httpAgent: this.agent }, `${options.name}#${++appSeq}`);
    this.messaging = getMessaging(this.app);
    // HTTP/1.1 through the agent: the HTTP/2 transport ignores it, and with it the cancellation.
    this.messaging.enableLegacyHttpTransport();
    disableSdkRetries(this.messaging, options.name);
  }

  private toMessage(m: OutboundMessage, now: number): Message {
    const base = { token: m.address, notification: { body: m.text }, data: { deliveryId: m.deliveryId } };
    if (this.platform === 'android') {
      // firebase-admin takes ttl in ms; 0 means "now or never".
      return { ...base, android: { collapseKey: m.deliveryId, priority: 'high', ttl: Math.max(0, m.expiresAt - now) } };
    }
    return {
      ...base,
      apns: {
        headers: {
          'apns-collapse-id': collapseIdFor(m.deliveryId),
          'apns-push-type': 'alert',
          'apns-priority': '10',
          'apns-expiration': String(Math.floor(m.expiresAt / 1000)),
        },
        payload: { aps: {} },
      },
    };
  }

  /** One request per message. */
  requestsPerCall(messages: number): number {
    return messages;
  }

  async send(messages: readonly OutboundMessage[], options: SendOptions = {}): Promise<readonly SendOutcome[]> {
    if (messages.length === 0) return [];
    if (messages.length > this.maxBatch) throw new RangeError(`${this.name}: ${messages.length} messages, at most ${this.maxBatch}`);
    const deadline = withDeadline(options.signal, this.timeoutMs);
    const signal = deadline.signal;
    const now = Date.now();
    try {
      return await this.agent.run(signal, async (call) => {
        let response: BatchResponse;
        try {
          // Nothing leaves once the call is given up: sendEach's requests meet the cancelled call.
          response = await this.messaging.sendEach(messages.map((m) => this.toMessage(m, now)));
        } catch (err) {
          if (signal.aborted) return settle(this.name, messages.map((m) => givenUp(m.deliveryId, signal, call.written, 'fcm')));
          return settle(this.name, messages.map((m) => classifyFcmError(m.deliveryId, err, this.quotaRetryAfterMs, call.retryAfterMs)));
        }
        const drafts = response.responses.map((r, i): Draft => {
          const id = messages[i]!.deliveryId;
          if (r.success) return accepted(id, r.messageId);
          const cancelled = cancelledCode(r.error);
          if (cancelled !== null) return givenUp(id, signal, cancelled === ABANDONED, 'fcm');
          return classifyFcmError(id, r.error, this.quotaRetryAfterMs, call.retryAfterMs);
        });
        return settle(this.name, drafts);
      }, options.onAnswer);
    } finally {
      deadline.done();
    }
  }

  async close(): Promise<void> {
    await deleteApp(this.app);
    this.agent.destroy();
  }
}

/**
 * One message's error from firebase-admin (its `code` and message; the HTTP status is not kept).
 * Credentials refused, the integration's and not the device's:
 *  - messaging/third-party-auth-error: FCM's UNAUTHENTICATED (our OAuth token refused) →
 *    'UNAUTHENTICATED'; otherwise the project's own APNs or web push credentials → 'THIRD_PARTY_AUTH_ERROR';
 *  - messaging/authentication-error (a 401/403 without Google's JSON) → 'UNAUTHENTICATED';
 *  - messaging/mismatched-credential when Google says the permission to send is denied on the
 *    project → 'PERMISSION_DENIED' (SENDER_ID_MISMATCH about a token stays a permanent failure);
 *  - app/invalid-credential when the token exchange answered invalid_grant and kin → that code
 *    (a token fetch that failed on the network is an outage, not a refusal).
 * The reason is the code and our words, never FCM's message (it may quote the request).
 */
export function classifyFcmError(deliveryId: string, error: unknown, quotaRetryAfterMs: number, retryAfterMs?: number): Draft {
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : 'unknown';
  const message = typeof (error as { message?: unknown })?.message === 'string' ? (error as { message: string }).message : String(error);
  if (code === 'messaging/third-party-auth-error') {
    return credentialsRejected(deliveryId, /authentication credential|OAuth/i.test(message) ? 'UNAUTHENTICATED' : 'THIRD_PARTY_AUTH_ERROR');
  }
  if (code === 'messaging/authentication-error') return credentialsRejected(deliveryId, 'UNAUTHENTICATED');
  if (code === 'messaging/mismatched-credential') {
    if (/permission\b.*\bdenied/i.test(message)) return credentialsRejected(deliveryId, 'PERMISSION_DENIED');
    return permanent(deliveryId, `fcm ${code}: token belongs to another sender`, false);
  }
  if (code === 'app/invalid-credential') {
    const refusal = OAUTH_REFUSALS.exec(message);
    if (refusal) return credentialsRejected(deliveryId, refusal[1]!);
  }
  const words = WORDS[code];
  if (INVALID_DEVICE_CODES.has(code)) return permanent(deliveryId, `fcm ${code}: ${words ?? 'invalid token'}`, true);
  if (code === 'messaging/invalid-argument') {
    const badToken = /registration token/i.test(message);
    return permanent(deliveryId, `fcm ${code}: ${badToken ? 'invalid registration token' : 'request refused'}`, badToken);
  }
  if (BAD_REQUEST_CODES.has(code)) return permanent(deliveryId, `fcm ${code}: ${words ?? 'request refused'}`, false);
  // One device's rate is that device's: the usual backoff, no Retry-After (which pauses the whole project).
  if (code === 'messaging/device-message-rate-exceeded') return transient(deliveryId, `fcm ${code}: ${words}`, { providerFault: false });
  if (RATE_CODES.has(code)) return transient(deliveryId, `fcm ${code}: ${words ?? 'sending too fast'}`, { providerFault: false, retryAfterMs: retryAfterMs ?? quotaRetryAfterMs });
  // server-unavailable, internal-error, unknown-error (whose message quotes the response), and
  // the client's own network errors (messaging/app/network-error, app/invalid-credential without a
  // refusal: the token host unreachable...), whose message is about the connection.
  const detail = words ?? (/(^|\/)app\//.test(code) ? message : 'failed');
  const unavailable = code === 'messaging/server-unavailable' || code === 'messaging/internal-error';
  return transient(deliveryId, `fcm ${code}: ${detail}`, {
    providerFault: true,
    maybeDelivered: mayHaveArrived(error),
    ...(unavailable && retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/** A request the CallAgent cancelled (firebase-admin keeps the code in its message): which way, if so. */
function cancelledCode(error: unknown): typeof UNSENT | typeof ABANDONED | null {
  const message = typeof (error as { message?: unknown })?.message === 'string' ? (error as { message: string }).message : '';
  const code = /Error code: (\w+)/.exec(message)?.[1];
  return code === UNSENT || code === ABANDONED ? code : null;
}
