import type { IntegrationSecret, IntegrationSpec } from '#schema/integrations';
import { FcmAndroidProvider } from './android/fcm/fcm-android-provider';
import { SendgridProvider } from './email/sendgrid/sendgrid-provider';
import { SmtpProvider } from './email/smtp/smtp-provider';
import { ApnsProvider } from './ios/apns/apns-provider';
import { FcmIosProvider } from './ios/fcm/fcm-ios-provider';
import type { Provider } from './port';
import type { FcmCredentials, FcmProviderOptions } from './shared/fcm-provider';
import { SnsProvider } from './sms/sns/sns-provider';
import { TwilioProvider } from './sms/twilio/twilio-provider';

export type { FcmCredentials, FcmServiceAccount } from './shared/fcm-provider';

/** Somewhere other than the vendor's production host: the sandbox, a relay. */
export type HostEndpoint = Readonly<{ host: string; port: number }>;
export type UrlEndpoint = Readonly<{ url: string }>;

type IntegrationCommon = Readonly<{
  /** Unique and stable: the provider's name in events, metrics, breakers and delivery policies. */
  name: string;
  /** Messages a second the account allows: reported in `Providers.quotas`. */
  quotaPerSecond?: number;
  /**
   * PEM of the CA that signs the endpoint's certificate. Like Node's `ca`, it replaces the system
   * roots for this integration's connections, so set it only with an endpoint that needs it.
   */
  ca?: string;
}>;

/*
 * `credentials` holds every secret of an integration and nothing else, so it can be stored sealed
 * while the rest stays readable. Each is a union on `type`: a vendor may gain another auth method.
 */

export type ApnsCredentials = Readonly<{ type: 'token'; key: string; keyId: string; teamId: string }>;

export type ApnsIntegration = IntegrationCommon &
  Readonly<{
    vendor: 'apns';
    channel: 'ios';
    /** Token auth: the .p8 signing key (PKCS#8 PEM, ES256) and its ids. */
    credentials: ApnsCredentials;
    /** The app's bundle id (apns-topic). */
    topic: string;
    /** api.push.apple.com (default) or api.sandbox.push.apple.com; ignored with an endpoint. */
    environment?: 'production' | 'development';
    endpoint?: HostEndpoint;
  }>;

export type FcmIntegration = IntegrationCommon &
  Readonly<{
    vendor: 'fcm';
    /** One Firebase project serves either: android shapes android.collapse_key, ios the APNs headers FCM relays. */
    channel: 'android' | 'ios';
    projectId: string;
    credentials: FcmCredentials;
    /** Reported on QUOTA_EXCEEDED, since firebase-admin hides Retry-After; default 60 s (FCM's advice). */
    quotaRetryAfterMs?: number;
    /**
     * firebase-admin's hosts are fixed, so an endpoint is a TLS redirect: connections for
     * fcm.googleapis.com, and for oauth2.googleapis.com where a service account fetches its
     * tokens, go here and must present a certificate for those names, signed by `ca` (required
     * with an endpoint). Works with a service account or an access token, not applicationDefault.
     */
    endpoint?: HostEndpoint;
  }>;

export type SendgridIntegration = IntegrationCommon &
  Readonly<{
    vendor: 'sendgrid';
    channel: 'email';
    credentials: Readonly<{ type: 'apiKey'; apiKey: string }>;
    /** A verified sender. */
    from: string;
    replyTo?: string;
    subject?: string;
    endpoint?: UrlEndpoint;
  }>;

export type SmtpIntegration = IntegrationCommon &
  Readonly<{
    vendor: 'smtp';
    channel: 'email';
    /** `none`: a relay that trusts our address. */
    credentials: Readonly<{ type: 'login'; user: string; pass: string }> | Readonly<{ type: 'none' }>;
    from: string;
    subject?: string;
    /** Required: SMTP has no vendor host. `secure`: implicit TLS (465); otherwise STARTTLS, required. */
    endpoint: HostEndpoint & Readonly<{ secure?: boolean }>;
  }>;

export type TwilioIntegration = IntegrationCommon &
  Readonly<{
    vendor: 'twilio';
    channel: 'sms';
    /** The account's auth token, or one of its API keys (SID and secret). */
    credentials:
      | Readonly<{ type: 'authToken'; accountSid: string; authToken: string }>
      | Readonly<{ type: 'apiKey'; accountSid: string; apiKeySid: string; apiKeySecret: string }>;
    /** The sender: a number (E.164), or a messaging service; at least one. */
    from?: string;
    messagingServiceSid?: string;
    /** Our status webhook; each message adds ?deliveryId= and, with a receipt token, &r=. */
    statusCallbackUrl?: string;
    /** Requests keep their path and go to this origin. */
    endpoint?: UrlEndpoint;
  }>;

export type SnsIntegration = IntegrationCommon &
  Readonly<{
    vendor: 'sns';
    channel: 'sms';
    region: string;
    credentials:
      | Readonly<{ type: 'accessKey'; accessKeyId: string; secretAccessKey: string }>
      /** The platform's own AWS identity (environment, IAM role): never a tenant's. */
      | Readonly<{ type: 'defaultChain' }>;
    /** AWS.SNS.SMS.SenderID, where the destination country supports it. */
    senderId?: string;
    endpoint?: UrlEndpoint;
  }>;

/** One account at one vendor, serving one channel: the configuration of one provider client. */
export type ProviderIntegration =
  | ApnsIntegration
  | FcmIntegration
  | SendgridIntegration
  | SmtpIntegration
  | TwilioIntegration
  | SnsIntegration;

export type ProviderVendor = ProviderIntegration['vendor'];

export type ProviderClientOptions = Readonly<{
  /**
   * Each client's own limit for a call, enforced by cancelling it (the router's deadline, derived
   * from observed latency, usually comes first); default 10 s.
   */
  timeoutMs?: number;
  /**
   * Connections per client: HTTP sockets, SMTP pooled connections (APNs multiplexes one HTTP/2
   * session). Default 256 (SMTP 32). The router passes at least the integration's concurrency, so
   * requests wait in its queue, never in an agent's.
   */
  maxSockets?: number;
}>;

const fcmProvider = (i: FcmIntegration, timeoutMs: number, maxSockets: number): Provider => {
  let redirect: FcmProviderOptions['redirect'];
  if (i.endpoint) {
    if (i.ca === undefined) throw new Error(`${i.name}: an FCM endpoint (a TLS redirect of Google's hosts) needs a ca`);
    redirect = { host: i.endpoint.host, port: i.endpoint.port, ca: i.ca };
  }
  const options = {
    name: i.name,
    projectId: i.projectId,
    credentials: i.credentials,
    ...(redirect ? { redirect } : {}),
    ...(i.quotaPerSecond !== undefined ? { quotaPerSecond: i.quotaPerSecond } : {}),
    ...(i.quotaRetryAfterMs !== undefined ? { quotaRetryAfterMs: i.quotaRetryAfterMs } : {}),
    timeoutMs,
    maxSockets,
  };
  return i.channel === 'ios' ? new FcmIosProvider(options) : new FcmAndroidProvider(options);
};

/**
 * Builds one provider client with the vendor's own SDK. Without an endpoint, each client talks
 * to the vendor's production host (the SDK's default); SMTP, having none, always names one.
 */
export function createProvider(integration: ProviderIntegration, options: ProviderClientOptions = {}): Provider {
  const i = integration;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxSockets = options.maxSockets ?? 256;
  const ca = i.ca !== undefined ? { ca: i.ca } : {};
  switch (i.vendor) {
    case 'apns':
      return new ApnsProvider({
        name: i.name,
        channel: i.channel,
        token: { key: i.credentials.key, keyId: i.credentials.keyId, teamId: i.credentials.teamId },
        topic: i.topic,
        production: (i.environment ?? 'production') === 'production',
        requestTimeoutMs: timeoutMs,
        ...(i.endpoint ? { address: i.endpoint.host, port: i.endpoint.port } : {}),
        ...ca,
      });
    case 'fcm':
      return fcmProvider(i, timeoutMs, maxSockets);
    case 'sendgrid':
      return new SendgridProvider({
        name: i.name,
        apiKey: i.credentials.apiKey,
        from: i.from,
        ...(i.replyTo !== undefined ? { replyTo: i.replyTo } : {}),
        ...(i.subject !== undefined ? { subject: i.subject } : {}),
        timeoutMs,
        maxSockets,
        ...(i.endpoint ? { baseUrl: i.endpoint.url } : {}),
        ...ca,
      });
    case 'smtp': {
      // The type requires it; configuration read from a store may still lack it.
      if (!i.endpoint) throw new Error(`${i.name}: SMTP has no vendor host, so an endpoint is required`);
      return new SmtpProvider({
        name: i.name,
        host: i.endpoint.host,
        port: i.endpoint.port,
        ...(i.endpoint.secure !== undefined ? { secure: i.endpoint.secure } : {}),
        ...(i.credentials.type === 'login' ? { user: i.credentials.user, pass: i.credentials.pass } : {}),
        from: i.from,
        ...(i.subject !== undefined ? { subject: i.subject } : {}),
        timeoutMs,
        maxConnections: options.maxSockets ?? 32,
        ...ca,
      });
    }
    case 'twilio':
      if (i.from === undefined && i.messagingServiceSid === undefined) {
        throw new Error(`${i.name}: Twilio needs a sender, from or messagingServiceSid`);
      }
      return new TwilioProvider({
        name: i.name,
        accountSid: i.credentials.accountSid,
        ...(i.credentials.type === 'authToken'
          ? { authToken: i.credentials.authToken }
          : { apiKey: { sid: i.credentials.apiKeySid, secret: i.credentials.apiKeySecret } }),
        ...(i.from !== undefined ? { from: i.from } : {}),
        ...(i.messagingServiceSid !== undefined ? { messagingServiceSid: i.messagingServiceSid } : {}),
        ...(i.statusCallbackUrl !== undefined ? { statusCallbackUrl: i.statusCallbackUrl } : {}),
        timeoutMs,
        maxSockets,
        ...(i.endpoint ? { baseUrl: i.endpoint.url } : {}),
        ...ca,
      });
    case 'sns':
      return new SnsProvider({
        name: i.name,
        region: i.region,
        ...(i.credentials.type === 'accessKey'
          ? { credentials: { accessKeyId: i.credentials.accessKeyId, secretAccessKey: i.credentials.secretAccessKey } }
          : {}),
        ...(i.senderId !== undefined ? { senderId: i.senderId } : {}),
        timeoutMs,
        maxSockets,
        ...(i.endpoint ? { endpoint: i.endpoint.url } : {}),
        ...ca,
      });
    default: {
      const never: never = i;
      throw new Error(`createProvider: unknown vendor ${(never as { vendor: string }).vendor}`);
    }
  }
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'https:': 443, 'http:': 80, 'smtp:': 587, 'smtps:': 465 };

/** Host and port of an endpoint URL (validated by parseIntegrationInput), the scheme's port by default. */
function hostOf(url: string): HostEndpoint & { secure: boolean } {
  const u = new URL(url);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port: u.port === '' ? (DEFAULT_PORTS[u.protocol] ?? 443) : Number(u.port), secure: u.protocol === 'smtps:' };
}

/**
 * The client configuration of a validated integration (schema/src/values/integrations.ts) and its
 * opened secret. The provider is named after the integration: a tenant's and the platform's may
 * share a name, so the router keys them by owner as well. `receiptsUrl` is where the vendor posts
 * delivery receipts for this integration (Twilio's status callback).
 */
export function toProviderIntegration(
  owner: string,
  spec: IntegrationSpec,
  secret: IntegrationSecret,
  options: { receiptsUrl?: string } = {},
): ProviderIntegration {
  const s = spec.settings;
  const where = `${owner}/${spec.name}`;
  if (s.vendor !== secret.vendor) throw new Error(`${where}: the settings are for ${s.vendor}, the secret for ${secret.vendor}`);
  const common = {
    name: spec.name,
    ...(spec.quotaPerSecond !== null ? { quotaPerSecond: spec.quotaPerSecond } : {}),
    ...(spec.ca !== null ? { ca: spec.ca } : {}),
  };
  const url = spec.endpoint?.url;
  const channel = <C extends string>(allowed: readonly C[]): C => {
    if (!(allowed as readonly string[]).includes(spec.channel)) throw new Error(`${where}: ${s.vendor} does not serve ${spec.channel}`);
    return spec.channel as C;
  };
  switch (s.vendor) {
    case 'apns': {
      const sec = secret as Extract<IntegrationSecret, { vendor: 'apns' }>;
      const at = url === undefined ? undefined : hostOf(url);
      return {
        ...common,
        vendor: 'apns',
        channel: channel(['ios'] as const),
        credentials: { type: 'token', key: sec.key, keyId: s.keyId, teamId: s.teamId },
        topic: s.topic,
        environment: s.environment,
        ...(at ? { endpoint: { host: at.host, port: at.port } } : {}),
      };
    }
    case 'fcm': {
      const sec = secret as Extract<IntegrationSecret, { vendor: 'fcm' }>;
      let credentials: FcmCredentials;
      if ('accessToken' in sec) {
        credentials = { type: 'accessToken', accessToken: sec.accessToken };
      } else {
        if (s.clientEmail === null) throw new Error(`${where}: a service account needs its client email`);
        credentials = {
          type: 'serviceAccount',
          serviceAccount: {
            projectId: s.projectId,
            clientEmail: s.clientEmail,
            privateKey: sec.privateKey,
            ...(sec.privateKeyId !== null ? { privateKeyId: sec.privateKeyId } : {}),
          },
        };
      }
      const at = url === undefined ? undefined : hostOf(url);
      return {
        ...common,
        vendor: 'fcm',
        channel: channel(['android', 'ios'] as const),
        projectId: s.projectId,
        credentials,
        ...(at ? { endpoint: { host: at.host, port: at.port } } : {}),
      };
    }
    case 'sendgrid': {
      const sec = secret as Extract<IntegrationSecret, { vendor: 'sendgrid' }>;
      return {
        ...common,
        vendor: 'sendgrid',
        channel: channel(['email'] as const),
        credentials: { type: 'apiKey', apiKey: sec.apiKey },
        from: s.from,
        ...(s.replyTo !== null ? { replyTo: s.replyTo } : {}),
        ...(url !== undefined ? { endpoint: { url } } : {}),
      };
    }
    case 'smtp': {
      const sec = secret as Extract<IntegrationSecret, { vendor: 'smtp' }>;
      // An endpoint (operator option) replaces the account's host: a relay, the sandbox.
      const at = url === undefined ? { host: s.host, port: s.port, secure: s.secure } : hostOf(url);
      return {
        ...common,
        vendor: 'smtp',
        channel: channel(['email'] as const),
        credentials: sec.user !== null && sec.pass !== null ? { type: 'login', user: sec.user, pass: sec.pass } : { type: 'none' },
        from: s.from,
        endpoint: at,
      };
    }
    case 'twilio': {
      const sec = secret as Extract<IntegrationSecret, { vendor: 'twilio' }>;
      return {
        ...common,
        vendor: 'twilio',
        channel: channel(['sms'] as const),
        credentials:
          'authToken' in sec
            ? { type: 'authToken', accountSid: s.accountSid, authToken: sec.authToken }
            : { type: 'apiKey', accountSid: s.accountSid, apiKeySid: sec.apiKeySid, apiKeySecret: sec.apiKeySecret },
        ...(s.from !== null ? { from: s.from } : {}),
        ...(s.messagingServiceSid !== null ? { messagingServiceSid: s.messagingServiceSid } : {}),
        ...(options.receiptsUrl !== undefined ? { statusCallbackUrl: options.receiptsUrl } : {}),
        ...(url !== undefined ? { endpoint: { url } } : {}),
      };
    }
    case 'sns': {
      const sec = secret as Extract<IntegrationSecret, { vendor: 'sns' }>;
      return {
        ...common,
        vendor: 'sns',
        channel: channel(['sms'] as const),
        region: s.region,
        credentials: { type: 'accessKey', accessKeyId: sec.accessKeyId, secretAccessKey: sec.secretAccessKey },
        ...(s.senderId !== null ? { senderId: s.senderId } : {}),
        ...(url !== undefined ? { endpoint: { url } } : {}),
      };
    }
    default: {
      const never: never = s;
      throw new Error(`${where}: unknown vendor ${(never as { vendor: string }).vendor}`);
    }
  }
}
