import type { SandboxDescription, SandboxEndpoint } from './types';

/**
 * The default integrations as an operator would configure them (the shape of the GraphQL
 * `ConfigureProviderInput` and of a PROVIDERS_FILE entry), pointed at the sandbox: `npm start`
 * makes them the platform defaults. ios [apns, fcm-ios], android [fcm-primary, fcm-secondary],
 * email [sendgrid, smtp], sms [twilio, sns], each the first of its channel at priority 0.
 */
export function sandboxProviderInputs(description: Pick<SandboxDescription, 'endpoints' | 'ca' | 'credentials'>) {
  const { ca, credentials: c } = description;
  const endpoint = (name: string): SandboxEndpoint => {
    const ep = description.endpoints[name];
    if (!ep) throw new Error(`sandboxProviderInputs: the sandbox has no "${name}" instance`);
    return ep;
  };
  const url = (name: string) => endpoint(name).url;
  const fcm = (name: string, channel: 'ios' | 'android', priority: number) => ({
    name,
    channel,
    priority,
    endpoint: url(name),
    ca,
    fcm: { projectId: endpoint(name).project ?? name, accessToken: c.fcmAccessToken },
  });
  const smtp = endpoint('smtp');
  const from = 'notify@example.com';
  return [
    {
      name: 'apns',
      channel: 'ios',
      priority: 0,
      endpoint: url('apns'),
      ca,
      apns: { key: c.apns.key, keyId: c.apns.keyId, teamId: c.apns.teamId, topic: c.apns.topic, environment: 'development' },
    },
    fcm('fcm-ios', 'ios', 1),
    fcm('fcm-primary', 'android', 0),
    fcm('fcm-secondary', 'android', 1),
    {
      name: 'sendgrid',
      channel: 'email',
      priority: 0,
      endpoint: url('sendgrid'),
      ca,
      sendgrid: {
        apiKey: c.sendgridApiKey,
        from,
        ...((c as { sendgridWebhookPublicKey?: string }).sendgridWebhookPublicKey ? { webhookPublicKey: (c as { sendgridWebhookPublicKey?: string }).sendgridWebhookPublicKey } : {}),
      },
    },
    {
      name: 'smtp',
      channel: 'email',
      priority: 1,
      ca,
      smtp: { url: `smtp://${encodeURIComponent(c.smtp.user)}:${encodeURIComponent(c.smtp.pass)}@${smtp.host}:${smtp.port}`, from },
    },
    {
      name: 'twilio',
      channel: 'sms',
      priority: 0,
      endpoint: url('twilio'),
      ca,
      twilio: { accountSid: c.twilio.accountSid, authToken: c.twilio.authToken, from: c.twilio.from },
    },
    {
      name: 'sns',
      channel: 'sms',
      priority: 1,
      endpoint: url('sns'),
      ca,
      sns: { region: c.sns.region, accessKeyId: c.sns.accessKeyId, secretAccessKey: c.sns.secretAccessKey },
    },
  ];
}
