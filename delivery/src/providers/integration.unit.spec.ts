import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { IntegrationInput, IntegrationSecret, IntegrationSpec } from '#schema/integrations';
import { parseIntegrationInput } from '#schema/values';
import { createProvider, toProviderIntegration } from './integration';

const pem = (k: crypto.KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
const APNS_KEY = pem(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
const GOOGLE_KEY = pem(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
const CA = `-----BEGIN CERTIFICATE-----
MIIBhjCCAS2gAwIBAgIUVE4SH8FRPDoOzU21Vd2oe2HRQe4wCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwObm90aWZ5LXRlc3QtY2EwHhcNMjYxMjA0MTMyMDQ3WhcNMzYx
MjAxMTMyMDQ3WjAZMRcwFQYDVQQDDA5ub3RpZnktdGVzdC1jYTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABDzLhKrCZtvmDBk8A1O+0B7H74nzFhFkRsJ/vWTKeDQB
/0Ick6ReTEJIpTALxOJOCbVDRH4cu+5yOQHlbDCiruqjUzBRMB0GA1UdDgQWBBTI
kdDKCIJrnBHL23AuG2GzF/adoTAfBgNVHSMEGDAWgBTIkdDKCIJrnBHL23AuG2Gz
F/adoTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIBdUuEq+EgP2
1oMxAGpPxcElxIfDwmlAZOugXCRgdypXAiBBJt2UjVtf4kXF82SINsxxQQCY1gEA
KaMKkY0EqLqIQA==
-----END CERTIFICATE-----`;
const ACCOUNT = 'AC' + 'a1'.repeat(16);

/** What the registry does: a validated input, then its client configuration. */
const map = (owner: string, input: IntegrationInput, options: { receiptsUrl?: string; allowEndpoint?: boolean } = {}) => {
  const { spec, secret } = parseIntegrationInput(input, { allowEndpoint: options.allowEndpoint ?? false });
  return toProviderIntegration(owner, spec, secret, options.receiptsUrl !== undefined ? { receiptsUrl: options.receiptsUrl } : {});
};

describe('toProviderIntegration', () => {
  it('APNs: token credentials from the key and its ids, environment kept, named after the integration', () => {
    const i = map('acme', { name: 'acme-apns', channel: 'ios', quotaPerSecond: 500, apns: { key: APNS_KEY, keyId: 'ABC123DEFG', teamId: 'TEAM123456', topic: 'com.acme.app', environment: 'development' } });
    expect(i).toEqual({
      name: 'acme-apns',
      vendor: 'apns',
      channel: 'ios',
      quotaPerSecond: 500,
      credentials: { type: 'token', key: APNS_KEY.trim(), keyId: 'ABC123DEFG', teamId: 'TEAM123456' },
      topic: 'com.acme.app',
      environment: 'development',
    });
    // The platform's defaults are named the same way: the router keeps the owner apart.
    expect(map('platform', { name: 'acme-apns', channel: 'ios', apns: { key: APNS_KEY, keyId: 'ABC123DEFG', teamId: 'TEAM123456', topic: 'com.acme.app' } }).name).toBe('acme-apns');
  });

  it('FCM: a service account (with its key id), and behind an endpoint a host, port and CA', () => {
    const serviceAccount = { type: 'service_account', project_id: 'acme-prod', private_key_id: 'k'.repeat(40), private_key: GOOGLE_KEY, client_email: 'push@acme-prod.iam.gserviceaccount.com' };
    expect(map('acme', { name: 'acme-fcm', channel: 'android', fcm: { serviceAccount } })).toEqual({
      name: 'acme-fcm',
      vendor: 'fcm',
      channel: 'android',
      projectId: 'acme-prod',
      credentials: {
        type: 'serviceAccount',
        serviceAccount: { projectId: 'acme-prod', clientEmail: 'push@acme-prod.iam.gserviceaccount.com', privateKey: GOOGLE_KEY.trim(), privateKeyId: 'k'.repeat(40) },
      },
    });
    const redirected = map('platform', { name: 'fcm-ios', channel: 'ios', endpoint: 'https://127.0.0.1:9443', ca: CA, fcm: { serviceAccount } }, { allowEndpoint: true });
    expect(redirected).toMatchObject({ channel: 'ios', endpoint: { host: '127.0.0.1', port: 9443 }, ca: CA, credentials: { type: 'serviceAccount' } });
    expect(map('platform', { name: 'fcm', channel: 'android', endpoint: { url: 'https://fcm.relay.internal' }, ca: CA, fcm: { projectId: 'notify-primary', accessToken: 'ya29.fixed-token' } }, { allowEndpoint: true })).toMatchObject({
      credentials: { type: 'accessToken', accessToken: 'ya29.fixed-token' },
      endpoint: { host: 'fcm.relay.internal', port: 443 },
    });
  });

  it('SendGrid: the API key, sender and reply-to', () => {
    const apiKey = 'SG.AbCdEfGhIjKlMnOpQrStUv.wXyZ0123456789_-abcdefghijklmnopqrstuvwxyzABCD';
    expect(map('acme', { name: 'mail', channel: 'email', sendgrid: { apiKey, from: 'news@acme.example', replyTo: 'help@acme.example' } })).toEqual({
      name: 'mail',
      vendor: 'sendgrid',
      channel: 'email',
      credentials: { type: 'apiKey', apiKey },
      from: 'news@acme.example',
      replyTo: 'help@acme.example',
    });
  });

  it('SMTP: the account’s server, or the endpoint in its place (an operator’s relay)', () => {
    const smtp = { url: 'smtps://mailer:s3cret@mail.acme.example', from: 'news@acme.example' };
    expect(map('acme', { name: 'smtp', channel: 'email', smtp })).toEqual({
      name: 'smtp',
      vendor: 'smtp',
      channel: 'email',
      credentials: { type: 'login', user: 'mailer', pass: 's3cret' },
      from: 'news@acme.example',
      endpoint: { host: 'mail.acme.example', port: 465, secure: true },
    });
    expect(map('acme', { name: 'smtp', channel: 'email', smtp: { url: 'smtp://relay.acme.example', from: 'news@acme.example' } })).toMatchObject({
      credentials: { type: 'none' },
      endpoint: { host: 'relay.acme.example', port: 587, secure: false },
    });
    expect(map('platform', { name: 'smtp', channel: 'email', endpoint: 'smtp://127.0.0.1:2525', smtp }, { allowEndpoint: true })).toMatchObject({
      endpoint: { host: '127.0.0.1', port: 2525, secure: false },
    });
  });

  it('Twilio: auth token or API key, the sender, and the receipts URL as status callback', () => {
    expect(map('acme', { name: 'sms', channel: 'sms', twilio: { accountSid: ACCOUNT, authToken: 'f0'.repeat(16), from: '+15005550006' } }, { receiptsUrl: 'https://notify.example/receipts/twilio/acme/sms' })).toEqual({
      name: 'sms',
      vendor: 'twilio',
      channel: 'sms',
      credentials: { type: 'authToken', accountSid: ACCOUNT, authToken: 'f0'.repeat(16) },
      from: '+15005550006',
      statusCallbackUrl: 'https://notify.example/receipts/twilio/acme/sms',
    });
    const mg = 'MG' + 'c3'.repeat(16);
    expect(map('acme', { name: 'sms', channel: 'sms', twilio: { accountSid: ACCOUNT, apiKeySid: 'SK' + 'b2'.repeat(16), apiKeySecret: 'a-long-api-key-secret', messagingServiceSid: mg } })).toEqual({
      name: 'sms',
      vendor: 'twilio',
      channel: 'sms',
      credentials: { type: 'apiKey', accountSid: ACCOUNT, apiKeySid: 'SK' + 'b2'.repeat(16), apiKeySecret: 'a-long-api-key-secret' },
      messagingServiceSid: mg,
    });
  });

  it('SNS: region, keys and sender id', () => {
    const sns = { region: 'eu-west-1', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', senderId: 'ACME' };
    expect(map('acme', { name: 'sns', channel: 'sms', sns })).toEqual({
      name: 'sns',
      vendor: 'sns',
      channel: 'sms',
      region: 'eu-west-1',
      credentials: { type: 'accessKey', accessKeyId: sns.accessKeyId, secretAccessKey: sns.secretAccessKey },
      senderId: 'ACME',
    });
  });

  it('refuses a secret of another vendor than the settings, naming owner and integration', () => {
    const { spec } = parseIntegrationInput({ name: 'sns', channel: 'sms', sns: { region: 'eu-west-1', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' } }, { allowEndpoint: false });
    const secret: IntegrationSecret = { vendor: 'twilio', authToken: 'f0'.repeat(16) };
    expect(() => toProviderIntegration('acme', spec, secret)).toThrow(/^acme\/sns: the settings are for sns, the secret for twilio$/);
    const wrongChannel: IntegrationSpec = { ...spec, channel: 'email' };
    expect(() => toProviderIntegration('acme', wrongChannel, { vendor: 'sns', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x' })).toThrow(/sns does not serve email/);
  });

  it('builds a client from every mapping', async () => {
    const twilio = map('acme', { name: 'sms', channel: 'sms', twilio: { accountSid: ACCOUNT, apiKeySid: 'SK' + 'b2'.repeat(16), apiKeySecret: 'a-long-api-key-secret', from: '+15005550006' } });
    const fcm = map('platform', { name: 'fcm', channel: 'android', endpoint: 'https://127.0.0.1:9443', ca: CA, fcm: { serviceAccount: { type: 'service_account', project_id: 'acme-prod', private_key: GOOGLE_KEY, client_email: 'push@acme-prod.iam.gserviceaccount.com' } } }, { allowEndpoint: true });
    for (const i of [twilio, fcm]) {
      const p = createProvider(i);
      expect(p).toMatchObject({ name: i.name, channel: i.channel });
      await p.close();
    }
  });
});
