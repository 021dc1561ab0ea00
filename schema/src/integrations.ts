import type { DeviceKind } from './events';

/**
 * Provider integrations: a tenant's own APNs key, Firebase project, SendGrid or SMTP account,
 * Twilio or AWS SNS account, or a platform default serving every tenant without its own for a
 * channel. What is secret (keys, tokens, passwords) is `IntegrationSecret`, sealed with the
 * owner's data key before any store sees it; everything else is `IntegrationSettings`, in clear.
 */
export const VENDORS = ['apns', 'fcm', 'sendgrid', 'smtp', 'twilio', 'sns'] as const;
export type Vendor = (typeof VENDORS)[number];

/** The channels each vendor can serve (FCM also delivers to iOS through its APNs route). */
export const VENDOR_CHANNELS: Readonly<Record<Vendor, readonly DeviceKind[]>> = {
  apns: ['ios'],
  fcm: ['android', 'ios'],
  sendgrid: ['email'],
  smtp: ['email'],
  twilio: ['sms'],
  sns: ['sms'],
};

/** Integrations one owner (a tenant, or the platform) may have. */
export const MAX_INTEGRATIONS = 50;

/** Owner of the platform defaults (reserved: no tenant may take this id). */
export const PLATFORM = 'platform';

export type IntegrationSettings =
  | Readonly<{ vendor: 'apns'; keyId: string; teamId: string; topic: string; environment: 'production' | 'development' }>
  | Readonly<{ vendor: 'fcm'; projectId: string; clientEmail: string | null }>
  | Readonly<{ vendor: 'sendgrid'; from: string; replyTo: string | null; webhookPublicKey: string | null }>
  | Readonly<{ vendor: 'smtp'; host: string; port: number; secure: boolean; from: string }>
  | Readonly<{ vendor: 'twilio'; accountSid: string; from: string | null; messagingServiceSid: string | null }>
  | Readonly<{ vendor: 'sns'; region: string; senderId: string | null }>;

export type IntegrationSecret =
  /** The .p8 key (PEM, EC P-256) that signs the provider tokens. */
  | Readonly<{ vendor: 'apns'; key: string }>
  /** A service account's RSA private key (PEM); or, for sandboxes and proxies, a fixed access token. */
  | Readonly<{ vendor: 'fcm'; privateKey: string; privateKeyId: string | null } | { vendor: 'fcm'; accessToken: string }>
  | Readonly<{ vendor: 'sendgrid'; apiKey: string }>
  | Readonly<{ vendor: 'smtp'; user: string | null; pass: string | null }>
  /** An auth token, or an API key (SID and secret) of the account. */
  | Readonly<{ vendor: 'twilio'; authToken: string } | { vendor: 'twilio'; apiKeySid: string; apiKeySecret: string }>
  | Readonly<{ vendor: 'sns'; accessKeyId: string; secretAccessKey: string }>;

/** Where a client connects instead of the vendor's production host: operator-enabled only. */
export type IntegrationEndpoint = Readonly<{ url: string }>;

/** A validated integration, without its secret. */
export type IntegrationSpec = Readonly<{
  name: string;
  channel: DeviceKind;
  /** Position in the channel's failover chain: lower first. */
  priority: number;
  settings: IntegrationSettings;
  /** Messages a second the account allows (its quota); null: the vendor's default policy. */
  quotaPerSecond: number | null;
  endpoint: IntegrationEndpoint | null;
  /** Extra CA (PEM) trusted for the endpoint. */
  ca: string | null;
}>;

export type ParsedIntegration = Readonly<{ spec: IntegrationSpec; secret: IntegrationSecret }>;

/**
 * What an admin gives: one vendor object with its fields (GraphQL input), unvalidated. Each
 * vendor's fields are documented where they are parsed (schema/src/values/integrations.ts).
 */
export type IntegrationInput = Readonly<{
  name: unknown;
  channel: unknown;
  priority?: unknown;
  quotaPerSecond?: unknown;
  endpoint?: unknown;
  ca?: unknown;
  apns?: unknown;
  fcm?: unknown;
  sendgrid?: unknown;
  smtp?: unknown;
  twilio?: unknown;
  sns?: unknown;
}>;
