import { generate } from 'selfsigned';

/** Host names the sandbox's certificate also covers, so SDKs with fixed hosts can verify it. */
export const PROVIDER_HOSTS = [
  'fcm.googleapis.com',
  // Google's OAuth token endpoints, served by the FCM instances for service accounts.
  'oauth2.googleapis.com',
  'accounts.google.com',
  'api.push.apple.com',
  'api.sandbox.push.apple.com',
  'api.sendgrid.com',
  'api.twilio.com',
  'sns.us-east-1.amazonaws.com',
  'smtp.sendgrid.net',
];

export type SandboxTls = { ca: string; key: string; cert: string };

/** A fresh CA (EC P-256) and one server certificate it signed, valid for loopback and PROVIDER_HOSTS. */
export async function makeCertificates(): Promise<SandboxTls> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(Date.now() + 7 * 24 * 3600_000);
  const ca = await generate([{ name: 'commonName', value: 'Notify provider sandbox CA' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const server = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          ...PROVIDER_HOSTS.map((value) => ({ type: 2 as const, value })),
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return { ca: ca.cert, key: server.private, cert: server.cert };
}
