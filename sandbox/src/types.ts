/** The wire protocols the sandbox speaks; each instance speaks exactly one. */
export type SandboxKind = 'fcm' | 'apns' | 'sendgrid' | 'twilio' | 'sns' | 'smtp';

/**
 * Fault settings of one provider instance, changeable at run time (programmatically or with
 * `PUT /control/<instance>`). Latency = latencyMs + uniform[0, jitterMs) + normal(0, latencyStddevMs),
 * clamped at 0; it applies to every answer, errors included.
 */
export type Faults = {
  latencyMs: number;
  jitterMs: number;
  latencyStddevMs: number;
  /** Share (0..1) of requests answered with a transient server error (500/503 or SMTP 451). */
  errorRate: number;
  /** Every request answered 503 (SMTP: 421 on connect and MAIL FROM). */
  outage: boolean;
  /** Requests are read and never answered (the connection stays open). */
  hang: boolean;
  /** Token bucket refilled at this rate; an empty bucket answers 429 with Retry-After. null: none. */
  rateLimitPerSecond: number | null;
  /** Bucket size; defaults to rateLimitPerSecond. */
  rateLimitBurst: number | null;
  /** Retry-After (seconds) sent with outage and error 503s. */
  retryAfterSeconds: number;
  /** Delay before each delivery receipt (Twilio status callback, SendGrid event) is sent. */
  receiptDelayMs: number;
};

export const DEFAULT_FAULTS: Readonly<Faults> = Object.freeze({
  latencyMs: 0,
  jitterMs: 0,
  latencyStddevMs: 0,
  errorRate: 0,
  outage: false,
  hang: false,
  rateLimitPerSecond: null,
  rateLimitBurst: null,
  retryAfterSeconds: 1,
  receiptDelayMs: 50,
});

/** Why an address is refused for good: a malformed one, or one that no longer exists. */
export type PermanentKind = 'invalid' | 'unregistered';

/**
 * The receipt outcome of an accepted message other than delivered: Twilio's final statuses
 * (undelivered, failed), SendGrid's events (bounce, dropped, deferred).
 */
export type ReceiptFailure = 'undelivered' | 'failed' | 'bounce' | 'dropped' | 'deferred';

/**
 * A credential an instance accepts, as given to `registerCredential` or
 * `POST /control/<instance>/credentials`; which shape fits depends on the instance's kind.
 * A public key may be given as its private key's PEM (the public half is derived).
 */
export type CredentialInput =
  /** APNs token auth: the .p8 key's public half (EC P-256). */
  | { keyId: string; teamId: string; publicKey: string }
  /** FCM: a fixed OAuth access token. */
  | { accessToken: string }
  /** FCM: a service account, which gets access tokens from the instance's OAuth token endpoint. */
  | { clientEmail: string; publicKey: string; projectId?: string }
  | { apiKey: string }
  | { accountSid: string; authToken: string }
  /** Twilio API key; `authToken` (the account's) signs status callbacks when no auth token is registered. */
  | { accountSid: string; apiKeySid: string; apiKeySecret: string; authToken?: string }
  | { accessKeyId: string; secretAccessKey: string; region?: string }
  | { user: string; pass: string };

/** A registered credential as listed (no secrets). */
export type CredentialListing = Readonly<{ id: string; type: string; revoked: boolean }>;

export type AcceptedMessage = Readonly<{
  /** The id the provider answered with (FCM name, apns-id, SendGrid X-Message-Id, Twilio sid...). */
  id: string;
  instance: string;
  /** Push token, email address or phone number. */
  address: string;
  text: string;
  /** apns-collapse-id / android.collapse_key, when sent. */
  collapseId?: string;
  /** The sender's delivery id when the protocol carries one (collapse id, custom_args, X-Delivery-Id...). */
  deliveryId?: string;
  /** Id of the registered credential the request authenticated with ("apns:TEAM.KEY", "sendgrid:…"). */
  credential?: string;
  /** Epoch seconds after which the push may be dropped: apns-expiration (APNs, or FCM's apns headers). */
  expiration?: number;
  /** FCM message.android.ttl in seconds ("598s" → 598, "1.5s" → 1.5). */
  ttlSeconds?: number;
  /** Twilio ValidityPeriod, seconds. */
  validityPeriod?: number;
  /** Twilio StatusCallback URL. */
  statusCallback?: string;
  /** SendGrid custom_args (top-level merged with the personalization's). */
  customArgs?: Readonly<Record<string, string>>;
  /** Epoch ms when the request reached the sandbox (before latency). */
  receivedAt: number;
  /** Epoch ms when the sandbox answered. */
  at: number;
}>;

/** `since` compares with `at` (answered), `receivedSince` with `receivedAt`. */
export type AcceptedFilter = {
  address?: string;
  deliveryId?: string;
  credential?: string;
  since?: number;
  receivedSince?: number;
  limit?: number;
};

export type RecordingOptions = {
  /** Count accepted messages per address (a Map entry per distinct address). */
  countByAddress: boolean;
  /** Count accepted messages per delivery id. */
  countByDeliveryId: boolean;
  /** Keep the last N accepted messages in full (a ring buffer); 0 keeps none. */
  logLimit: number;
};

export const DEFAULT_RECORDING: Readonly<RecordingOptions> = Object.freeze({
  countByAddress: true,
  countByDeliveryId: true,
  logLimit: 10_000,
});

export type InstanceStats = {
  requests: number;
  accepted: number;
  /** Refused for good (bad or unregistered address). */
  permanent: number;
  /** Answered with a transient 5xx (error rate or outage). */
  serverErrors: number;
  rateLimited: number;
  hung: number;
  unauthorized: number;
  /** Malformed requests (400 other than a bad address). */
  invalid: number;
  /** Receipts (Twilio status callbacks, SendGrid events) delivered with a 2xx answer. */
  receiptsSent: number;
  /** Receipts given up on after retries (connection refused, non-2xx, timeout). */
  receiptsFailed: number;
};

export type SandboxEndpoint = Readonly<{
  name: string;
  kind: SandboxKind;
  host: string;
  port: number;
  /** https://host:port for HTTP protocols, smtp://host:port for SMTP. */
  url: string;
  /** FCM only: the Firebase project this instance serves. */
  project?: string;
}>;

export type SandboxCredentials = Readonly<{
  /** The OAuth2 access token the FCM instances accept. */
  fcmAccessToken: string;
  /** APNs token-auth signing key (PKCS#8 PEM, ES256 P-256) and its ids. */
  apns: Readonly<{ key: string; keyId: string; teamId: string; topic: string }>;
  sendgridApiKey: string;
  twilio: Readonly<{ accountSid: string; authToken: string; from: string }>;
  sns: Readonly<{ accessKeyId: string; secretAccessKey: string; region: string }>;
  smtp: Readonly<{ user: string; pass: string }>;
  /**
   * The first SendGrid instance's event-webhook verification key, as SendGrid shows it: base64 of
   * the DER SubjectPublicKeyInfo (ECDSA P-256). Each SendGrid instance has its own (see
   * `GET /control/<instance>/event-webhook`).
   */
  sendgridWebhookPublicKey?: string;
}>;

/** What a client (in this process or another) needs: JSON-serialisable. */
export type SandboxDescription = Readonly<{
  control: string;
  ca: string;
  endpoints: Readonly<Record<string, SandboxEndpoint>>;
  credentials: SandboxCredentials;
}>;

export type InstanceSpec = {
  name: string;
  kind: SandboxKind;
  /** 0 (default): an ephemeral port. */
  port?: number;
  /** FCM: the project id in `/v1/projects/{project}/messages:send`; defaults to "notify-<name>". */
  project?: string;
  faults?: Partial<Faults>;
};

export type SandboxOptions = {
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Default: apns, fcm-ios, fcm-primary, fcm-secondary, sendgrid, smtp, twilio, sns. */
  instances?: InstanceSpec[];
  /** Port of the JSON control endpoint; 0 (default): ephemeral. */
  controlPort?: number;
  /** Applied to every instance at start (an instance's own `faults` win). */
  faults?: Partial<Faults>;
  recording?: Partial<RecordingOptions>;
  /** The credentials every instance of their kind is started with (made up when not given). */
  credentials?: Partial<Omit<SandboxCredentials, 'apns' | 'sendgridWebhookPublicKey'>> & { apns?: Partial<SandboxCredentials['apns']> };
};
