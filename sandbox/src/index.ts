import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenApns } from './apns';
import { makeCertificates } from './certs';
import { fcmHandler } from './fcm';
import { listenHttps, type Listening } from './http';
import { checkReceiptFailure, parseFaults, SandboxInstance } from './instance';
import { sendgridHandler } from './sendgrid';
import { listenSmtp } from './smtp';
import { snsHandler } from './sns';
import { twilioHandler } from './twilio';
import type {
  CredentialInput,
  Faults,
  InstanceSpec,
  PermanentKind,
  ReceiptFailure,
  SandboxCredentials,
  SandboxDescription,
  SandboxEndpoint,
  SandboxKind,
  SandboxOptions,
} from './types';

export * from './types';
export { SandboxInstance } from './instance';

/** The sandbox's provider instances, named after the providers that use them by default. */
export const DEFAULT_INSTANCES: readonly InstanceSpec[] = [
  { name: 'apns', kind: 'apns' },
  { name: 'fcm-ios', kind: 'fcm', project: 'notify-ios' },
  { name: 'fcm-primary', kind: 'fcm', project: 'notify-primary' },
  { name: 'fcm-secondary', kind: 'fcm', project: 'notify-secondary' },
  { name: 'sendgrid', kind: 'sendgrid' },
  { name: 'smtp', kind: 'smtp' },
  { name: 'twilio', kind: 'twilio' },
  { name: 'sns', kind: 'sns' },
];

export interface Sandbox extends SandboxDescription {
  readonly host: string;
  readonly instances: readonly SandboxInstance[];
  /** The instance by name; throws for an unknown one. */
  instance(name: string): SandboxInstance;
  /**
   * Everywhere: faults back to their start values, refused addresses and receipt failures emptied,
   * credentials back to the start set, event webhooks removed, pending receipts dropped, records cleared.
   */
  reset(): void;
  /** The JSON-serialisable part: control URL, CA, endpoints, credentials. */
  describe(): SandboxDescription;
  close(): Promise<void>;
}

function makeCredentials(given: SandboxOptions['credentials'] = {}): Omit<SandboxCredentials, 'sendgridWebhookPublicKey'> {
  const apnsKey =
    given.apns?.key ??
    crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    fcmAccessToken: given.fcmAccessToken ?? `ya29.sandbox-${crypto.randomBytes(12).toString('hex')}`,
    apns: {
      key: apnsKey,
      keyId: given.apns?.keyId ?? 'SANDBOXKEY',
      teamId: given.apns?.teamId ?? 'SANDBOXTM1',
      topic: given.apns?.topic ?? 'com.example.notify',
    },
    // In the vendors' own formats, so the service validates them as it would real ones.
    sendgridApiKey: given.sendgridApiKey ?? `SG.${crypto.randomBytes(16).toString('base64url')}.${crypto.randomBytes(32).toString('base64url')}`,
    twilio: given.twilio ?? {
      accountSid: 'AC' + crypto.randomBytes(16).toString('hex'),
      authToken: crypto.randomBytes(16).toString('hex'),
      from: '+15005550006',
    },
    sns: given.sns ?? { accessKeyId: 'AKIASANDBOX' + crypto.randomBytes(5).toString('hex').toUpperCase().slice(0, 9), secretAccessKey: crypto.randomBytes(30).toString('base64'), region: 'us-east-1' },
    smtp: given.smtp ?? { user: 'sandbox', pass: crypto.randomBytes(12).toString('hex') },
  };
}

/** The start credential of an instance of `kind`, from the sandbox's credentials. */
function initialCredential(kind: SandboxKind, c: Omit<SandboxCredentials, 'sendgridWebhookPublicKey'>): CredentialInput {
  switch (kind) {
    case 'apns':
      return { keyId: c.apns.keyId, teamId: c.apns.teamId, publicKey: crypto.createPublicKey(c.apns.key).export({ type: 'spki', format: 'pem' }).toString() };
    case 'fcm':
      return { accessToken: c.fcmAccessToken };
    case 'sendgrid':
      return { apiKey: c.sendgridApiKey };
    case 'twilio':
      return { accountSid: c.twilio.accountSid, authToken: c.twilio.authToken };
    case 'sns':
      return { accessKeyId: c.sns.accessKeyId, secretAccessKey: c.sns.secretAccessKey, region: c.sns.region };
    case 'smtp':
      return { user: c.smtp.user, pass: c.smtp.pass };
    default: {
      const never: never = kind;
      throw new Error(`sandbox: unknown kind ${String(never)}`);
    }
  }
}

/**
 * Starts one local server per provider instance (HTTPS, HTTP/2 or SMTP on 127.0.0.1, each on its
 * own port, all with a certificate from a CA made now) and a plain-HTTP JSON control endpoint:
 *   GET  /control                      every instance: endpoint, faults, stats
 *   GET  /control/<instance>           one instance
 *   PUT  /control/<instance>           {...faults, permanentFailures?: {addr: kind} | [addr],
 *                                       receiptFailures?: {addr: outcome} | [addr]}
 *   DELETE /control/<instance>         faults back to start, refused and receipt-failure lists emptied
 *   GET  /control/<instance>/accepted  ?address=&deliveryId=&credential=&since=&receivedSince=&limit=  → {count, messages}
 *   DELETE /control/<instance>/accepted  records and stats cleared
 *   GET  /control/<instance>/credentials        → {credentials: [{id, type, revoked}]}
 *   POST /control/<instance>/credentials        CredentialInput → 201 {id}
 *   DELETE /control/<instance>/credentials/<id> revoke → {id, revoked: true}; 404 when unknown
 *   GET  /control/<instance>/event-webhook      SendGrid: {publicKey, webhooks: [{credential, url}]}
 *   PUT  /control/<instance>/event-webhook      SendGrid: {apiKey, url | null}
 *   POST /control/reset                reset() on every instance
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const host = options.host ?? '127.0.0.1';
  const specs = options.instances ?? DEFAULT_INSTANCES;
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new Error(`sandbox: duplicate instance name "${s.name}"`);
    names.add(s.name);
  }
  const tls = await makeCertificates();
  const started = makeCredentials(options.credentials);

  const instances: SandboxInstance[] = [];
  const listening: Listening[] = [];
  const byName = new Map<string, SandboxInstance>();
  try {
    for (const spec of specs) {
      const inst = new SandboxInstance(spec.name, spec.kind, { ...options.faults, ...spec.faults }, options.recording ?? {});
      inst.registerInitialCredential(initialCredential(spec.kind, started));
      const port = spec.port ?? 0;
      let l: Listening;
      let project: string | undefined;
      switch (spec.kind) {
        case 'fcm':
          project = spec.project ?? `notify-${spec.name}`;
          l = await listenHttps(tls, host, port, fcmHandler(inst, { project }));
          break;
        case 'apns':
          l = await listenApns(inst, tls, host, port);
          break;
        case 'sendgrid':
          l = await listenHttps(tls, host, port, sendgridHandler(inst));
          break;
        case 'twilio':
          l = await listenHttps(tls, host, port, twilioHandler(inst));
          break;
        case 'sns':
          l = await listenHttps(tls, host, port, snsHandler(inst));
          break;
        case 'smtp':
          l = await listenSmtp(inst, tls, host, port);
          break;
        default: {
          const never: never = spec.kind;
          throw new Error(`sandbox: unknown kind ${String(never)}`);
        }
      }
      listening.push({ port: l.port, close: () => (inst.close(), l.close()) });
      const scheme = spec.kind === 'smtp' ? 'smtp' : 'https';
      inst.endpoint = {
        name: spec.name,
        kind: spec.kind,
        host,
        port: l.port,
        url: `${scheme}://${host}:${l.port}`,
        ...(project !== undefined ? { project } : {}),
      };
      instances.push(inst);
      byName.set(spec.name, inst);
    }
  } catch (err) {
    await Promise.all(listening.map((l) => l.close()));
    throw err;
  }
  const sendgrid = instances.find((i) => i.kind === 'sendgrid');
  const credentials: SandboxCredentials = {
    ...started,
    ...(sendgrid?.eventWebhookPublicKey !== undefined ? { sendgridWebhookPublicKey: sendgrid.eventWebhookPublicKey } : {}),
  };

  const control = await listenControl(host, options.controlPort ?? 0, byName);
  const endpoints: Record<string, SandboxEndpoint> = Object.fromEntries(instances.map((i) => [i.name, i.endpoint]));
  const controlUrl = `http://${host}:${control.port}/control`;
  const instance = (name: string) => {
    const i = byName.get(name);
    if (!i) throw new Error(`sandbox: no instance "${name}" (have ${[...byName.keys()].join(', ')})`);
    return i;
  };
  const reset = () => {
    for (const i of instances) i.reset();
  };
  let closing: Promise<void> | undefined;
  return {
    host,
    ca: tls.ca,
    control: controlUrl,
    endpoints,
    credentials,
    instances,
    instance,
    reset,
    describe: () => ({ control: controlUrl, ca: tls.ca, endpoints, credentials }),
    close: () => (closing ??= Promise.all([control.close(), ...listening.map((l) => l.close())]).then(() => undefined)),
  };
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text === '' ? {} : JSON.parse(text));
      } catch (e) {
        reject(e);
      }
    });
    req.on('error', reject);
  });
}

function applyControl(inst: SandboxInstance, body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new TypeError('expected a JSON object');
  const { permanentFailures, receiptFailures, ...faults } = body as { permanentFailures?: unknown; receiptFailures?: unknown } & Partial<Faults>;
  const checked = parseFaults(faults);
  let failures: [string, ReceiptFailure][] | undefined;
  if (receiptFailures !== undefined) {
    const fallback = inst.defaultReceiptFailure();
    if (fallback === undefined) throw new TypeError(`${inst.name} sends no receipts`);
    if (Array.isArray(receiptFailures)) failures = receiptFailures.map((a) => [String(a), fallback]);
    else if (typeof receiptFailures === 'object' && receiptFailures !== null) failures = Object.entries(receiptFailures) as [string, ReceiptFailure][];
    else throw new TypeError('receiptFailures must be a list of addresses or an {address: outcome} map');
    // Checked first, so a bad entry changes nothing.
    for (const [, o] of failures) checkReceiptFailure(inst.kind, o);
  }
  if (permanentFailures !== undefined) {
    const entries: [string, PermanentKind][] = Array.isArray(permanentFailures)
      ? permanentFailures.map((a) => [String(a), 'unregistered'])
      : typeof permanentFailures === 'object' && permanentFailures !== null
        ? Object.entries(permanentFailures).map(([a, k]) => {
            if (k !== 'invalid' && k !== 'unregistered') throw new TypeError(`permanentFailures["${a}"] must be "invalid" or "unregistered"`);
            return [a, k];
          })
        : (() => {
            throw new TypeError('permanentFailures must be a list of addresses or an {address: kind} map');
          })();
    inst.removePermanentFailures(Object.keys(inst.permanentFailures()));
    for (const [a, k] of entries) inst.addPermanentFailures([a], k);
  }
  if (failures !== undefined) {
    inst.removeReceiptFailures(Object.keys(inst.receiptFailures()));
    for (const [a, o] of failures) inst.addReceiptFailures([a], o);
  }
  inst.setFaults(checked);
}

async function listenControl(host: string, port: number, byName: Map<string, SandboxInstance>): Promise<Listening> {
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    };
    const url = new URL(req.url ?? '/', 'http://control');
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'control') return send(404, { error: 'not found' });
    if (parts.length === 1 && req.method === 'GET') return send(200, { instances: [...byName.values()].map((i) => i.describe()) });
    if (parts.length === 2 && parts[1] === 'reset' && req.method === 'POST') {
      for (const i of byName.values()) i.reset();
      return send(200, { ok: true });
    }
    /** Runs fn on the JSON body; a TypeError (bad input) answers 400. */
    const withBody = (fn: (body: unknown) => void) =>
      readJson(req).then(
        (body) => {
          try {
            fn(body);
          } catch (e) {
            send(400, { error: (e as Error).message });
          }
        },
        () => send(400, { error: 'invalid JSON' }),
      );
    const inst = byName.get(decodeURIComponent(parts[1] ?? ''));
    if (!inst) return send(404, { error: `no instance "${parts[1] ?? ''}"` });
    if (parts.length === 2) {
      if (req.method === 'GET') return send(200, inst.describe());
      if (req.method === 'DELETE') {
        inst.resetFaults();
        inst.removePermanentFailures(Object.keys(inst.permanentFailures()));
        inst.removeReceiptFailures(Object.keys(inst.receiptFailures()));
        return send(200, inst.describe());
      }
      if (req.method === 'PUT' || req.method === 'PATCH') {
        void withBody((body) => {
          applyControl(inst, body);
          send(200, inst.describe());
        });
        return;
      }
    }
    if (parts[2] === 'credentials') {
      if (parts.length === 3 && req.method === 'GET') return send(200, { credentials: inst.credentials() });
      if (parts.length === 3 && req.method === 'POST') {
        void withBody((body) => send(201, { id: inst.registerCredential(body as CredentialInput) }));
        return;
      }
      if (parts.length === 4 && req.method === 'DELETE') {
        const id = decodeURIComponent(parts[3]!);
        return inst.revokeCredential(id) ? send(200, { id, revoked: true }) : send(404, { error: `no active credential "${id}"` });
      }
    }
    if (parts.length === 3 && parts[2] === 'event-webhook') {
      if (inst.eventWebhookPublicKey === undefined) return send(404, { error: `${inst.name} has no event webhook (SendGrid only)` });
      if (req.method === 'GET') return send(200, inst.eventWebhook());
      if (req.method === 'PUT') {
        void withBody((body) => {
          const b = (typeof body === 'object' && body !== null ? body : {}) as { apiKey?: unknown; url?: unknown };
          if (b.url !== null && typeof b.url !== 'string') throw new TypeError('url must be a URL or null');
          inst.setEventWebhook(b.apiKey as string, b.url);
          send(200, inst.eventWebhook());
        });
        return;
      }
    }
    if (parts.length === 3 && parts[2] === 'accepted') {
      if (req.method === 'GET') {
        const q = url.searchParams;
        const filter = {
          ...(q.has('address') ? { address: q.get('address')! } : {}),
          ...(q.has('deliveryId') ? { deliveryId: q.get('deliveryId')! } : {}),
          ...(q.has('credential') ? { credential: q.get('credential')! } : {}),
          ...(q.has('since') ? { since: Number(q.get('since')) } : {}),
          ...(q.has('receivedSince') ? { receivedSince: Number(q.get('receivedSince')) } : {}),
          limit: q.has('limit') ? Number(q.get('limit')) : 1000,
        };
        return send(200, { count: inst.count(filter), messages: inst.accepted(filter) });
      }
      if (req.method === 'DELETE') {
        inst.clear();
        return send(200, { ok: true });
      }
    }
    send(405, { error: 'method not allowed' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
