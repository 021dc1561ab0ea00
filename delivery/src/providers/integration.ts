import { applicationDefault, cert, type Credential, type ServiceAccount } from 'firebase-admin/app';
import { FcmAndroidProvider } from './android/fcm/fcm-android-provider';
import { SendgridProvider } from './email/sendgrid/sendgrid-provider';
import { SmtpProvider } from './email/smtp/smtp-provider';
import { ApnsProvider } from './ios/apns/apns-provider';
import { FcmIosProvider } from './ios/fcm/fcm-ios-provider';
import type { Provider } from './port';
import { SnsProvider } from './sms/sns/sns-provider';
import { TwilioProvider } from './sms/twilio/twilio-provider';

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

export type FcmCredentials =
  | Readonly<{ type: 'serviceAccount'; serviceAccount: ServiceAccount }>
  /** The platform's own Google identity (GOOGLE_APPLICATION_CREDENTIALS, metadata server): never a tenant's. */
  | Readonly<{ type: 'applicationDefault' }>
  /** A fixed OAuth token, as the sandbox accepts; Google's expire within the hour. */
  | Readonly<{ type: 'accessToken'; accessToken: string }>;

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
     * firebase-admin's host is fixed, so an endpoint is a TLS redirect: connections for
     * fcm.googleapis.com go here and must present a certificate for that name, signed by `ca`
     * (required with an endpoint). The redirect authenticates with an accessToken credential.
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
    credentials: Readonly<{ type: 'authToken'; accountSid: string; authToken: string }>;
    /** The sender: a number (E.164), or a messaging service; at least one. */
    from?: string;
    messagingServiceSid?: string;
    /** Our status webhook; the delivery id is added as ?deliveryId=. */
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
  /** Per-request limit for every client; default 10 s. */
  timeoutMs?: number;
  /** HTTP sockets per client; default 256. */
  maxSockets?: number;
}>;

const fcmCredential = (c: FcmCredentials): Credential => {
  switch (c.type) {
    case 'serviceAccount':
      return cert(c.serviceAccount);
    case 'applicationDefault':
      return applicationDefault();
    case 'accessToken': {
      const token = c.accessToken;
      return { getAccessToken: async () => ({ access_token: token, expires_in: 3600 }) };
    }
    default: {
      const never: never = c;
      throw new Error(`unknown FCM credential type ${(never as { type: string }).type}`);
    }
  }
};

const fcmProvider = (i: FcmIntegration, timeoutMs: number, maxSockets: number): Provider => {
  let target: { sandbox: { host: string; port: number; ca: string; accessToken: string } } | { credential: Credential };
  if (i.endpoint) {
    if (i.credentials.type !== 'accessToken' || i.ca === undefined) {
      throw new Error(`${i.name}: an FCM endpoint (a TLS redirect of fcm.googleapis.com) needs an accessToken credential and a ca`);
    }
    target = { sandbox: { host: i.endpoint.host, port: i.endpoint.port, ca: i.ca, accessToken: i.credentials.accessToken } };
  } else {
    target = { credential: fcmCredential(i.credentials) };
  }
  const options = {
    name: i.name,
    projectId: i.projectId,
    ...target,
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
        authToken: i.credentials.authToken,
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
