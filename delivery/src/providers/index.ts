import { applicationDefault, cert, type Credential, type ServiceAccount } from 'firebase-admin/app';
import type { SandboxDescription } from '#sandbox/types';
import { FcmAndroidProvider } from './android/fcm/fcm-android-provider';
import { SendgridProvider } from './email/sendgrid/sendgrid-provider';
import { SmtpProvider } from './email/smtp/smtp-provider';
import { ApnsProvider } from './ios/apns/apns-provider';
import { FcmIosProvider } from './ios/fcm/fcm-ios-provider';
import type { Channel, Provider } from './port';
import { SnsProvider } from './sms/sns/sns-provider';
import { TwilioProvider } from './sms/twilio/twilio-provider';

export type { Channel, OutboundMessage, Provider, SendOutcome } from './port';
export { ProviderUnavailableError } from './outcomes';
export { ApnsProvider, FcmAndroidProvider, FcmIosProvider, SendgridProvider, SmtpProvider, SnsProvider, TwilioProvider };

export type FcmProjectConfig = {
  /** Sandbox mode: taken from the sandbox instance. */
  projectId?: string;
  /** A service account (object or JSON file path); neither this nor credential: applicationDefault(). */
  serviceAccount?: ServiceAccount | string;
  credential?: Credential;
  /** The project's send quota (messages/s), reported in `quotas` for token buckets and admission. */
  quotaPerSecond?: number;
  /** Reported on QUOTA_EXCEEDED (firebase-admin hides Retry-After). Default 60 s; 1 s in sandbox mode. */
  quotaRetryAfterMs?: number;
};

export type ProvidersConfig = {
  /** Sandbox mode: every endpoint and credential comes from the sandbox (a Sandbox or its describe()). */
  sandbox: Pick<SandboxDescription, 'endpoints' | 'ca' | 'credentials'> | null;
  apns?: { key: string; keyId: string; teamId: string; topic: string; production?: boolean };
  fcm?: { primary?: FcmProjectConfig; secondary?: FcmProjectConfig; ios?: FcmProjectConfig };
  email?: { from?: string; subject?: string };
  sendgrid?: { apiKey: string };
  smtp?: { host: string; port: number; secure?: boolean; user?: string; pass?: string };
  twilio?: { accountSid: string; authToken: string; from?: string; messagingServiceSid?: string; statusCallbackUrl?: string };
  sns?: { region: string; accessKeyId?: string; secretAccessKey?: string; senderId?: string };
  /** Per-request limit for every adapter; default 10 s. */
  timeoutMs?: number;
  /** HTTP sockets per adapter; default 256. */
  maxSockets?: number;
};

export type Providers = Readonly<{
  /** Ordered failover chain per channel, primary first. */
  chains: Readonly<Record<Channel, readonly Provider[]>>;
  all: readonly Provider[];
  /** Configured quotas (messages/s) by provider name; undefined where none is configured. */
  quotas: Readonly<Record<string, number | undefined>>;
  close(): Promise<void>;
}>;

/**
 * Builds the default chains: ios [apns, fcm-ios], android [fcm-primary, fcm-secondary],
 * email [sendgrid, smtp], sms [twilio, sns]. Provider names equal the sandbox instance names.
 */
export function createProviders(config: ProvidersConfig): Providers {
  const sb = config.sandbox;
  const timeoutMs = config.timeoutMs ?? 10_000;
  const maxSockets = config.maxSockets ?? 256;
  const from = config.email?.from ?? (sb ? 'notify@example.com' : undefined);
  const subject = config.email?.subject;
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`createProviders: ${what} is required outside sandbox mode`);
    return value;
  };
  const endpoint = (name: string) => {
    const ep = sb?.endpoints[name];
    if (!ep) throw new Error(`createProviders: the sandbox has no "${name}" instance`);
    return ep;
  };

  const fcm = (name: 'fcm-primary' | 'fcm-secondary' | 'fcm-ios', c: FcmProjectConfig | undefined) => {
    const base = {
      name,
      ...(c?.quotaPerSecond !== undefined ? { quotaPerSecond: c.quotaPerSecond } : {}),
      quotaRetryAfterMs: c?.quotaRetryAfterMs ?? (sb ? 1000 : 60_000),
      timeoutMs,
      maxSockets,
    };
    if (sb) {
      const ep = endpoint(name);
      const sandbox = { host: ep.host, port: ep.port, ca: sb.ca, accessToken: sb.credentials.fcmAccessToken };
      return { ...base, projectId: ep.project ?? c?.projectId ?? name, sandbox };
    }
    const credential = c?.credential ?? (c?.serviceAccount !== undefined ? cert(c.serviceAccount) : applicationDefault());
    return { ...base, projectId: need(c?.projectId, `fcm.${name.replace('fcm-', '')}.projectId`), credential };
  };

  const created: Provider[] = [];
  const track = <P extends Provider>(p: P): P => {
    created.push(p);
    return p;
  };
  try {
    const apnsCfg = sb ? { ...sb.credentials.apns, production: false } : need(config.apns, 'apns');
    const apns = track(
      new ApnsProvider({
        token: { key: apnsCfg.key, keyId: apnsCfg.keyId, teamId: apnsCfg.teamId },
        topic: apnsCfg.topic,
        production: apnsCfg.production ?? true,
        requestTimeoutMs: timeoutMs,
        ...(sb ? { address: endpoint('apns').host, port: endpoint('apns').port, ca: sb.ca } : {}),
      }),
    );
    const fcmIos = track(new FcmIosProvider(fcm('fcm-ios', config.fcm?.ios)));
    const fcmPrimary = track(new FcmAndroidProvider(fcm('fcm-primary', config.fcm?.primary)));
    const fcmSecondary = track(new FcmAndroidProvider(fcm('fcm-secondary', config.fcm?.secondary)));

    const sendgrid = track(
      new SendgridProvider({
        apiKey: sb ? sb.credentials.sendgridApiKey : need(config.sendgrid, 'sendgrid').apiKey,
        from: need(from, 'email.from'),
        ...(subject !== undefined ? { subject } : {}),
        timeoutMs,
        maxSockets,
        ...(sb ? { baseUrl: endpoint('sendgrid').url, ca: sb.ca } : {}),
      }),
    );
    const smtpCfg = sb
      ? { host: endpoint('smtp').host, port: endpoint('smtp').port, user: sb.credentials.smtp.user, pass: sb.credentials.smtp.pass }
      : need(config.smtp, 'smtp');
    const smtp = track(
      new SmtpProvider({
        ...smtpCfg,
        from: need(from, 'email.from'),
        ...(subject !== undefined ? { subject } : {}),
        timeoutMs,
        ...(sb ? { ca: sb.ca } : {}),
      }),
    );

    const twilioCfg = sb
      ? { ...sb.credentials.twilio, statusCallbackUrl: config.twilio?.statusCallbackUrl ?? `${endpoint('twilio').url}/status-callback` }
      : need(config.twilio, 'twilio');
    const twilio = track(
      new TwilioProvider({
        ...twilioCfg,
        timeoutMs,
        maxSockets,
        ...(sb ? { baseUrl: endpoint('twilio').url, ca: sb.ca } : {}),
      }),
    );
    const snsCfg = sb ? sb.credentials.sns : need(config.sns, 'sns');
    const sns = track(
      new SnsProvider({
        region: snsCfg.region,
        ...(snsCfg.accessKeyId !== undefined && snsCfg.secretAccessKey !== undefined
          ? { credentials: { accessKeyId: snsCfg.accessKeyId, secretAccessKey: snsCfg.secretAccessKey } }
          : {}),
        ...(config.sns?.senderId !== undefined ? { senderId: config.sns.senderId } : {}),
        timeoutMs,
        maxSockets,
        ...(sb ? { endpoint: endpoint('sns').url, ca: sb.ca } : {}),
      }),
    );

    const chains: Record<Channel, readonly Provider[]> = {
      ios: [apns, fcmIos],
      android: [fcmPrimary, fcmSecondary],
      email: [sendgrid, smtp],
      sms: [twilio, sns],
    };
    const quotas: Record<string, number | undefined> = Object.fromEntries(
      created.map((p) => [p.name, (p as { quotaPerSecond?: number }).quotaPerSecond]),
    );
    let closing: Promise<void> | undefined;
    return {
      chains,
      all: [...created],
      quotas,
      close: () => (closing ??= Promise.allSettled(created.map((p) => p.close())).then(() => undefined)),
    };
  } catch (err) {
    void Promise.allSettled(created.map((p) => p.close()));
    throw err;
  }
}
