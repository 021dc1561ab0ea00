import { FcmAndroidProvider } from './android/fcm/fcm-android-provider';
import { SendgridProvider } from './email/sendgrid/sendgrid-provider';
import { SmtpProvider } from './email/smtp/smtp-provider';
import { createProvider, type ProviderClientOptions, type ProviderIntegration } from './integration';
import { ApnsProvider } from './ios/apns/apns-provider';
import { FcmIosProvider } from './ios/fcm/fcm-ios-provider';
import type { Channel, Provider } from './port';
import { SnsProvider } from './sms/sns/sns-provider';
import { TwilioProvider } from './sms/twilio/twilio-provider';

export type { Channel, OutboundMessage, Provider, SendOutcome } from './port';
export type {
  ApnsCredentials,
  ApnsIntegration,
  FcmCredentials,
  FcmIntegration,
  FcmServiceAccount,
  HostEndpoint,
  ProviderClientOptions,
  ProviderIntegration,
  ProviderVendor,
  SendgridIntegration,
  SmtpIntegration,
  SnsIntegration,
  TwilioIntegration,
  UrlEndpoint,
} from './integration';
export { createProvider, toProviderIntegration } from './integration';
export type { ProviderReceipt, ReceiptRef } from './receipts';
export { decodeReceipt, encodeReceipt, sendgridReceipts, twilioReceipt, verifySendgridEvents, verifyTwilioCallback } from './receipts';
export { ProviderUnavailableError } from './outcomes';
export { ApnsProvider, FcmAndroidProvider, FcmIosProvider, SendgridProvider, SmtpProvider, SnsProvider, TwilioProvider };

export type Providers = Readonly<{
  /** Ordered failover chain per channel, primary first. */
  chains: Readonly<Record<Channel, readonly Provider[]>>;
  all: readonly Provider[];
  /** Configured quotas (messages/s) by provider name; undefined where none is configured. */
  quotas: Readonly<Record<string, number | undefined>>;
  close(): Promise<void>;
}>;

/**
 * One provider per integration, named after it; each channel's chain holds its integrations in
 * the order given. Names must be unique: breakers, metrics and delivery policies are keyed by them.
 */
export function createProviders(integrations: readonly ProviderIntegration[], options: ProviderClientOptions = {}): Providers {
  const seen = new Set<string>();
  for (const i of integrations) {
    if (seen.has(i.name)) throw new Error(`createProviders: two integrations are named "${i.name}"`);
    seen.add(i.name);
  }
  const created: Provider[] = [];
  try {
    for (const i of integrations) created.push(createProvider(i, options));
  } catch (err) {
    void Promise.allSettled(created.map((p) => p.close()));
    throw err;
  }
  const chains: Record<Channel, Provider[]> = { ios: [], android: [], email: [], sms: [] };
  for (const p of created) chains[p.channel].push(p);
  const quotas: Record<string, number | undefined> = Object.fromEntries(integrations.map((i) => [i.name, i.quotaPerSecond]));
  let closing: Promise<void> | undefined;
  return {
    chains,
    all: [...created],
    quotas,
    close: () => (closing ??= Promise.allSettled(created.map((p) => p.close())).then(() => undefined)),
  };
}
