import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import apn from '@parse/node-apn';
import { Client } from '@sendgrid/client';
import { MailService } from '@sendgrid/mail';
import { cert, deleteApp, initializeApp, type App, type Credential } from 'firebase-admin/app';
import { getMessaging } from 'firebase-admin/messaging';
import nodemailer from 'nodemailer';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';
import type TwilioResponse from 'twilio/lib/http/response';
import type { Sandbox } from './index';

/*
 * The vendors' SDKs pointed at a sandbox instance, set up as a service would (see delivery's
 * providers), for the sandbox's own tests: the sandbox imports nothing of the service.
 */

export const P256 = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
export const RSA = () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
export const pem = (k: crypto.KeyObject) =>
  k.type === 'private' ? k.export({ type: 'pkcs8', format: 'pem' }).toString() : k.export({ type: 'spki', format: 'pem' }).toString();

export function apnsProvider(sandbox: Sandbox, instance: string, token: { key: string; keyId: string; teamId: string }): apn.Provider {
  const ep = sandbox.endpoints[instance]!;
  return new apn.Provider({
    token,
    production: false,
    address: ep.host,
    port: ep.port,
    ca: [sandbox.ca],
    rejectUnauthorized: true,
    connectionRetryLimit: 0,
    requestTimeout: 5000,
  });
}

/**
 * An https.Agent sending every connection (fcm.googleapis.com, oauth2.googleapis.com) to the
 * instance, presenting the host name asked for: firebase-admin's hosts are fixed.
 */
export function googleRedirect(sandbox: Sandbox, instance: string): https.Agent {
  const ep = sandbox.endpoints[instance]!;
  const agent = new https.Agent({ keepAlive: true });
  (agent as unknown as { createConnection: (o: { host?: string; servername?: string }) => tls.TLSSocket }).createConnection = (o) =>
    tls.connect({ host: ep.host, port: ep.port, servername: o.servername || o.host || 'fcm.googleapis.com', ca: sandbox.ca, ALPNProtocols: ['http/1.1'] });
  return agent;
}

let appSeq = 0;

/**
 * A firebase-admin app on the instance, with a fixed access token or a service account. The
 * account goes to `cert` as a key file: firebase-admin 13 drops cert's httpAgent for an account
 * given as an object (GoogleAuth.fromJSON without its clientOptions), so its token requests
 * would go to Google itself; read from a file, the agent is used.
 */
export function firebaseApp(
  sandbox: Sandbox,
  instance: string,
  auth: { accessToken: string } | { projectId: string; clientEmail: string; privateKey: string },
): { app: App; agent: https.Agent; send: ReturnType<typeof getMessaging>['send']; close(): Promise<void> } {
  const agent = googleRedirect(sandbox, instance);
  let keyFile: string | undefined;
  let credential: Credential;
  if ('accessToken' in auth) {
    credential = { getAccessToken: async () => ({ access_token: auth.accessToken, expires_in: 3600 }) };
  } else {
    keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-sa-')), 'service-account.json');
    const json = { type: 'service_account', project_id: auth.projectId, client_email: auth.clientEmail, private_key: auth.privateKey };
    fs.writeFileSync(keyFile, JSON.stringify(json), { mode: 0o600 });
    credential = cert(keyFile, agent);
  }
  const projectId = 'projectId' in auth ? auth.projectId : sandbox.endpoints[instance]!.project!;
  const app = initializeApp({ projectId, credential, httpAgent: agent }, `sandbox-test-${++appSeq}`);
  const messaging = getMessaging(app);
  // The HTTP/2 transport ignores httpAgent.
  messaging.enableLegacyHttpTransport();
  return {
    app,
    agent,
    send: messaging.send.bind(messaging),
    close: async () => {
      await deleteApp(app);
      agent.destroy();
      if (keyFile !== undefined) fs.rmSync(path.dirname(keyFile), { recursive: true, force: true });
    },
  };
}

export function sendgridMail(sandbox: Sandbox, instance: string, apiKey: string): MailService {
  const client = new Client();
  client.setApiKey(apiKey); // resets baseUrl
  client.setDefaultRequest('baseUrl', sandbox.endpoints[instance]!.url);
  client.setDefaultRequest({ httpsAgent: new https.Agent({ ca: sandbox.ca }), proxy: false } as never);
  const mail = new MailService();
  mail.setClient(client);
  return mail;
}

/** twilio has no base-URL option: its RequestClient moved to the instance, path kept. */
class RoutedRequestClient extends twilio.RequestClient {
  constructor(
    private readonly baseUrl: string,
    opts: RequestClient.RequestClientOptions,
  ) {
    super(opts);
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<TwilioResponse<TData>> {
    const u = new URL(opts.uri);
    return super.request<TData>({ ...opts, uri: new URL(u.pathname + u.search, this.baseUrl).toString() });
  }
}

export function twilioClient(
  sandbox: Sandbox,
  instance: string,
  auth: { accountSid: string; authToken: string } | { accountSid: string; apiKeySid: string; apiKeySecret: string },
): twilio.Twilio {
  const httpClient = new RoutedRequestClient(sandbox.endpoints[instance]!.url, { ca: sandbox.ca, timeout: 5000 });
  return 'authToken' in auth
    ? twilio(auth.accountSid, auth.authToken, { httpClient, autoRetry: false })
    : twilio(auth.apiKeySid, auth.apiKeySecret, { accountSid: auth.accountSid, httpClient, autoRetry: false });
}

export function snsPublish(sandbox: Sandbox, instance: string, credentials: { accessKeyId: string; secretAccessKey: string }) {
  const client = new SNSClient({
    region: 'us-east-1',
    credentials,
    endpoint: sandbox.endpoints[instance]!.url,
    maxAttempts: 1,
    requestHandler: { httpsAgent: new https.Agent({ ca: sandbox.ca }) },
  });
  return {
    publish: (phone: string, text: string) => client.send(new PublishCommand({ PhoneNumber: phone, Message: text })),
    close: () => client.destroy(),
  };
}

export function smtpTransport(sandbox: Sandbox, instance: string, auth: { user: string; pass: string }, pool = false) {
  const ep = sandbox.endpoints[instance]!;
  return nodemailer.createTransport({
    host: ep.host,
    port: ep.port,
    secure: false,
    requireTLS: true,
    pool,
    auth,
    tls: { ca: sandbox.ca },
  });
}

/** Resolves once cond() holds; throws after timeoutMs. */
export async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export type Hit = { url: string; headers: http.IncomingHttpHeaders; body: string; at: number };

/**
 * A local webhook receiver recording each POST answered 2xx; `answer` picks the status of each
 * (default 200), and may take its time.
 */
export async function webhookReceiver(answer: (hit: Hit, n: number) => number | Promise<number> = () => 200) {
  const hits: Hit[] = [];
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit = { url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      void Promise.resolve(answer(hit, n++)).then((status) => {
        if (status >= 200 && status < 300) hits.push(hit);
        if (!res.destroyed) res.writeHead(status).end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    hits,
    /** Resolves once `n` requests were answered 2xx. */
    async waitFor(count: number, timeoutMs = 5000): Promise<Hit[]> {
      const until = Date.now() + timeoutMs;
      while (hits.length < count) {
        if (Date.now() > until) throw new Error(`webhook: ${hits.length} posts, waited for ${count}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return hits;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
