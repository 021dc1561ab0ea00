import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenApns } from './apns';
import { makeCertificates } from './certs';
import { fcmHandler } from './fcm';
import { listenHttps, type Listening } from './http';
import { parseFaults, SandboxInstance } from './instance';
import { sendgridHandler } from './sendgrid';
import { listenSmtp } from './smtp';
import { snsHandler } from './sns';
import { twilioHandler } from './twilio';
import type {
  Faults,
  InstanceSpec,
  PermanentKind,
  SandboxCredentials,
  SandboxDescription,
  SandboxEndpoint,
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
  /** Faults back to their start values, refused-address lists emptied, records cleared, everywhere. */
  reset(): void;
  /** The JSON-serialisable part: control URL, CA, endpoints, credentials. */
  describe(): SandboxDescription;
  close(): Promise<void>;
}

function makeCredentials(given: SandboxOptions['credentials'] = {}): SandboxCredentials {
  const apnsKey =
    given.apns?.key ??
    crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    fcmAccessToken: given.fcmAccessToken ?? `ya29.sandbox-${crypto.randomBytes(12).toString('hex')}`,
    apns: {
      key: apnsKey,
      keyId: given.apns?.keyId ?? 'SANDBOXKEY',
      teamId: given.apns?.teamId ?? 'SANDBOXTEAM',
      topic: given.apns?.topic ?? 'com.example.notify',
    },
    sendgridApiKey: given.sendgridApiKey ?? `SG.sandbox.${crypto.randomBytes(16).toString('hex')}`,
    twilio: given.twilio ?? {
      accountSid: 'AC' + crypto.randomBytes(16).toString('hex'),
      authToken: crypto.randomBytes(16).toString('hex'),
      from: '+15005550006',
    },
    sns: given.sns ?? { accessKeyId: 'AKIASANDBOX' + crypto.randomBytes(4).toString('hex').toUpperCase(), secretAccessKey: crypto.randomBytes(20).toString('base64'), region: 'us-east-1' },
    smtp: given.smtp ?? { user: 'sandbox', pass: crypto.randomBytes(12).toString('hex') },
  };
}

/**
 * Starts one local server per provider instance (HTTPS, HTTP/2 or SMTP on 127.0.0.1, each on its
 * own port, all with a certificate from a CA made now) and a plain-HTTP JSON control endpoint:
 *   GET  /control                      every instance: endpoint, faults, stats
 *   GET  /control/<instance>           one instance
 *   PUT  /control/<instance>           {...faults, permanentFailures?: {addr: kind} | [addr]}
 *   DELETE /control/<instance>         faults back to start, refused list emptied
 *   GET  /control/<instance>/accepted  ?address=&deliveryId=&since=&receivedSince=&limit=  → {count, messages}
 *   DELETE /control/<instance>/accepted  records and stats cleared
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
  const credentials = makeCredentials(options.credentials);
  const apnsPublicKey = crypto.createPublicKey(credentials.apns.key);

  const instances: SandboxInstance[] = [];
  const listening: Listening[] = [];
  const byName = new Map<string, SandboxInstance>();
  try {
    for (const spec of specs) {
      const inst = new SandboxInstance(spec.name, spec.kind, { ...options.faults, ...spec.faults }, options.recording ?? {});
      const port = spec.port ?? 0;
      let l: Listening;
      let project: string | undefined;
      switch (spec.kind) {
        case 'fcm':
          project = spec.project ?? `notify-${spec.name}`;
          l = await listenHttps(tls, host, port, fcmHandler(inst, { project, accessToken: credentials.fcmAccessToken }));
          break;
        case 'apns':
          l = await listenApns(inst, { keyId: credentials.apns.keyId, teamId: credentials.apns.teamId, publicKey: apnsPublicKey }, tls, host, port);
          break;
        case 'sendgrid':
          l = await listenHttps(tls, host, port, sendgridHandler(inst, { apiKey: credentials.sendgridApiKey }));
          break;
        case 'twilio':
          l = await listenHttps(tls, host, port, twilioHandler(inst, credentials.twilio));
          break;
        case 'sns':
          l = await listenHttps(tls, host, port, snsHandler(inst, credentials.sns));
          break;
        case 'smtp':
          l = await listenSmtp(inst, credentials.smtp, tls, host, port);
          break;
        default: {
          const never: never = spec.kind;
          throw new Error(`sandbox: unknown kind ${String(never)}`);
        }
      }
      listening.push(l);
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

  const control = await listenControl(host, options.controlPort ?? 0, byName);
  const endpoints: Record<string, SandboxEndpoint> = Object.fromEntries(instances.map((i) => [i.name, i.endpoint]));
  const controlUrl = `http://${host}:${control.port}/control`;
  const instance = (name: string) => {
    const i = byName.get(name);
    if (!i) throw new Error(`sandbox: no instance "${name}" (have ${[...byName.keys()].join(', ')})`);
    return i;
  };
  const reset = () => {
    for (const i of instances) {
      i.resetFaults();
      i.removePermanentFailures(Object.keys(i.permanentFailures()));
      i.clear();
    }
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
  const { permanentFailures, ...faults } = body as { permanentFailures?: unknown } & Partial<Faults>;
  const checked = parseFaults(faults);
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
      for (const i of byName.values()) {
        i.resetFaults();
        i.removePermanentFailures(Object.keys(i.permanentFailures()));
        i.clear();
      }
      return send(200, { ok: true });
    }
    const inst = byName.get(decodeURIComponent(parts[1] ?? ''));
    if (!inst) return send(404, { error: `no instance "${parts[1] ?? ''}"` });
    if (parts.length === 2) {
      if (req.method === 'GET') return send(200, inst.describe());
      if (req.method === 'DELETE') {
        inst.resetFaults();
        inst.removePermanentFailures(Object.keys(inst.permanentFailures()));
        return send(200, inst.describe());
      }
      if (req.method === 'PUT' || req.method === 'PATCH') {
        readJson(req).then(
          (body) => {
            try {
              applyControl(inst, body);
              send(200, inst.describe());
            } catch (e) {
              send(400, { error: (e as Error).message });
            }
          },
          () => send(400, { error: 'invalid JSON' }),
        );
        return;
      }
    }
    if (parts.length === 3 && parts[2] === 'accepted') {
      if (req.method === 'GET') {
        const q = url.searchParams;
        const filter = {
          ...(q.has('address') ? { address: q.get('address')! } : {}),
          ...(q.has('deliveryId') ? { deliveryId: q.get('deliveryId')! } : {}),
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
