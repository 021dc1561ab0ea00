import type { SandboxDescription, SandboxEndpoint } from './types';

/** The sandbox's buckets refill within a second; FCM's advised 60 s would stall tests and demos. */
const FCM_QUOTA_RETRY_AFTER_MS = 1000;

/**
 * The default integrations, one per default instance, pointed at the sandbox (its endpoints, CA
 * and credentials): ios [apns, fcm-ios], android [fcm-primary, fcm-secondary], email [sendgrid,
 * smtp], sms [twilio, sns], in that order. Plain data in the shape of delivery's
 * `ProviderIntegration` (checked where it is passed to `createProviders`; the sandbox imports
 * nothing of the service): spread one to change it.
 */
export function sandboxIntegrations(description: Pick<SandboxDescription, 'endpoints' | 'ca' | 'credentials'>) {
  const { ca, credentials: c } = description;
  const endpoint = (name: string): SandboxEndpoint => {
    const ep = description.endpoints[name];
    if (!ep) throw new Error(`sandboxIntegrations: the sandbox has no "${name}" instance`);
    return ep;
  };
  const at = (name: string) => ({ host: endpoint(name).host, port: endpoint(name).port });
  const fcm = (name: string, channel: 'android' | 'ios') => ({
    name,
    vendor: 'fcm' as const,
    channel,
    projectId: endpoint(name).project ?? name,
    credentials: { type: 'accessToken', accessToken: c.fcmAccessToken },
    quotaRetryAfterMs: FCM_QUOTA_RETRY_AFTER_MS,
    endpoint: at(name),
    ca,
  } as const);
  const from = 'notify@example.com';
  return [
    {
      name: 'apns',
      vendor: 'apns',
      channel: 'ios',
      credentials: { type: 'token', key: c.apns.key, keyId: c.apns.keyId, teamId: c.apns.teamId },
      topic: c.apns.topic,
      environment: 'development',
      endpoint: at('apns'),
      ca,
    },
    fcm('fcm-ios', 'ios'),
    fcm('fcm-primary', 'android'),
    fcm('fcm-secondary', 'android'),
    {
      name: 'sendgrid',
      vendor: 'sendgrid',
      channel: 'email',
      credentials: { type: 'apiKey', apiKey: c.sendgridApiKey },
      from,
      endpoint: { url: endpoint('sendgrid').url },
      ca,
    },
    {
      name: 'smtp',
      vendor: 'smtp',
      channel: 'email',
      credentials: { type: 'login', user: c.smtp.user, pass: c.smtp.pass },
      from,
      endpoint: at('smtp'),
      ca,
    },
    {
      name: 'twilio',
      vendor: 'twilio',
      channel: 'sms',
      credentials: { type: 'authToken', accountSid: c.twilio.accountSid, authToken: c.twilio.authToken },
      from: c.twilio.from,
      // The sandbox records the delivery id from the callback's ?deliveryId=; nothing calls it back.
      statusCallbackUrl: `${endpoint('twilio').url}/status-callback`,
      endpoint: { url: endpoint('twilio').url },
      ca,
    },
    {
      name: 'sns',
      vendor: 'sns',
      channel: 'sms',
      region: c.sns.region,
      credentials: { type: 'accessKey', accessKeyId: c.sns.accessKeyId, secretAccessKey: c.sns.secretAccessKey },
      endpoint: { url: endpoint('sns').url },
      ca,
    },
  ] as const;
}
