import crypto from 'node:crypto';
import { badInput } from '../errors';
import type { DeviceKind } from '../events';
import {
  VENDOR_CHANNELS,
  VENDORS,
  type IntegrationEndpoint,
  type IntegrationInput,
  type IntegrationSecret,
  type IntegrationSettings,
  type ParsedIntegration,
  type Vendor,
} from '../integrations';
import { parseDeviceKind, parseEmail, parsePhoneE164 } from './devices';
import { parseEntityId } from './ids';
import { requireString } from './text';

/*
 * Validation of what an admin gives for a provider integration. Secrets are checked for shape and
 * never quoted back: a message names the field and what was expected, nothing of the value
 * (JSON.parse and URL errors quote their input, so neither is passed on).
 */

type Fields = Readonly<Record<string, unknown>>;
type Parsed = { settings: IntegrationSettings; secret: IntegrationSecret };

export const INTEGRATION_PRIORITY_MAX = 100;
export const INTEGRATION_QUOTA_MAX = 1_000_000;

const isPresent = (v: unknown): boolean => v !== undefined && v !== null;

const vendorObject = (field: string, v: unknown, allowed: readonly string[]): Fields => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badInput(field, 'expected an object');
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) throw badInput(`${field}.${key}`, `unknown field; ${field} takes ${allowed.join(', ')}`);
  }
  return v as Fields;
};

/** A secret string: the message says what was expected, never what was given. */
const secretMatching = (field: string, v: unknown, pattern: RegExp, expected: string): string => {
  const s = requireString(field, v).trim();
  if (!pattern.test(s)) throw badInput(field, `not ${expected}`);
  return s;
};

const optional = <T>(v: unknown, parse: (v: unknown) => T): T | null => (isPresent(v) ? parse(v) : null);

const integerIn = (field: string, v: unknown, min: number, max: number): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw badInput(field, `expected an integer from ${min} to ${max.toLocaleString('en')}`);
  }
  return v;
};

const privateKey = (field: string, v: unknown, what: string): { pem: string; key: crypto.KeyObject } => {
  const pem = requireString(field, v).trim();
  try {
    return { pem, key: crypto.createPrivateKey(pem) };
  } catch {
    throw badInput(field, `not ${what} that parses (PEM, unencrypted)`);
  }
};

const keyType = (key: crypto.KeyObject): string => String(key.asymmetricKeyType).toUpperCase();

// ---- APNs -----------------------------------------------------------------------------------
const APPLE_ID = /^[A-Z0-9]{10}$/;
/** Reverse-DNS bundle id; the .voip and .complication topics are bundle id + suffix, so they match too. */
const BUNDLE_ID = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;

function parseApns(v: unknown): Parsed {
  const o = vendorObject('apns', v, ['key', 'keyId', 'teamId', 'topic', 'environment']);
  const { pem, key } = privateKey('apns.key', o.key, 'a .p8 private key');
  if (key.asymmetricKeyType !== 'ec') {
    throw badInput('apns.key', `a ${keyType(key)} key was given; APNs token auth signs with an EC P-256 key (the .p8 file Apple gives)`);
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve !== 'prime256v1') throw badInput('apns.key', `an EC key on ${String(curve)}; APNs needs P-256 (prime256v1)`);
  const keyId = requireString('apns.keyId', o.keyId).trim();
  if (!APPLE_ID.test(keyId)) throw badInput('apns.keyId', 'expected the 10 upper-case letters or digits Apple shows for the key');
  const teamId = requireString('apns.teamId', o.teamId).trim();
  if (!APPLE_ID.test(teamId)) throw badInput('apns.teamId', 'expected the 10 upper-case letters or digits of the Apple team id');
  const topic = requireString('apns.topic', o.topic).trim();
  if (topic.length > 200 || !BUNDLE_ID.test(topic)) {
    throw badInput('apns.topic', 'expected the app’s bundle id, e.g. com.example.app (letters, digits, - and .), optionally with .voip or .complication');
  }
  const env = isPresent(o.environment) ? requireString('apns.environment', o.environment) : 'production';
  if (env !== 'production' && env !== 'development') throw badInput('apns.environment', 'expected production or development');
  return {
    settings: { vendor: 'apns', keyId, teamId, topic, environment: env },
    secret: { vendor: 'apns', key: pem },
  };
}

// ---- FCM ------------------------------------------------------------------------------------
/** Google Cloud project ids (6 to 30 characters), optionally with the legacy `domain:` prefix. */
const PROJECT_ID = /^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

function projectId(field: string, v: unknown): string {
  const id = requireString(field, v).trim();
  if (!PROJECT_ID.test(id)) throw badInput(field, `"${id.slice(0, 40)}" is not a Firebase project id: 6 to 30 lower-case letters, digits or '-'`);
  return id;
}

function parseFcm(v: unknown, allowEndpoint: boolean): Parsed {
  const o = vendorObject('fcm', v, ['serviceAccount', 'projectId', 'accessToken']);
  const viaAccount = isPresent(o.serviceAccount);
  const viaToken = isPresent(o.projectId) || isPresent(o.accessToken);
  if (viaAccount === viaToken) throw badInput('fcm', 'give serviceAccount (the key file Google gives), or projectId and accessToken');
  if (viaToken) {
    if (!allowEndpoint) {
      throw badInput('fcm.accessToken', 'a fixed access token is an operator option (sandboxes, proxies); give the service account key instead');
    }
    const id = projectId('fcm.projectId', o.projectId);
    const accessToken = secretMatching('fcm.accessToken', o.accessToken, /^[\x21-\x7e]{8,4096}$/, 'an OAuth access token (8 to 4096 printable characters, no spaces)');
    return { settings: { vendor: 'fcm', projectId: id, clientEmail: null }, secret: { vendor: 'fcm', accessToken } };
  }
  let account: unknown = o.serviceAccount;
  if (typeof account === 'string') {
    try {
      account = JSON.parse(account);
    } catch {
      throw badInput('fcm.serviceAccount', 'not JSON; paste the whole service account key file Google gives');
    }
  }
  // Google's file, not our input shape: its other fields (client_id, token_uri...) are ignored.
  if (typeof account !== 'object' || account === null || Array.isArray(account)) throw badInput('fcm.serviceAccount', 'expected the service account key file (JSON)');
  const sa = account as Fields;
  if (sa.type !== 'service_account') throw badInput('fcm.serviceAccount.type', 'expected "service_account": a service account key file');
  const id = projectId('fcm.serviceAccount.project_id', sa.project_id);
  const clientEmail = parseEmail('fcm.serviceAccount.client_email', sa.client_email);
  const { pem, key } = privateKey('fcm.serviceAccount.private_key', sa.private_key, 'a private key');
  if (key.asymmetricKeyType !== 'rsa') {
    throw badInput('fcm.serviceAccount.private_key', `a ${keyType(key)} key was given; Google service accounts sign with RSA`);
  }
  const privateKeyId = optional(sa.private_key_id, (x) =>
    secretMatching('fcm.serviceAccount.private_key_id', x, /^[A-Za-z0-9_-]{1,100}$/, 'a key id (letters, digits, - or _)'),
  );
  return {
    settings: { vendor: 'fcm', projectId: id, clientEmail },
    secret: { vendor: 'fcm', privateKey: pem, privateKeyId },
  };
}

// ---- SendGrid -------------------------------------------------------------------------------
const SENDGRID_KEY = /^SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}$/;

function webhookPublicKey(field: string, v: unknown): string {
  const b64 = requireString(field, v).replace(/\s+/g, '');
  let key: crypto.KeyObject;
  try {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error('not base64');
    key = crypto.createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw badInput(field, 'not the verification key SendGrid shows (base64 of an EC public key)');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw badInput(field, 'SendGrid signs events with ECDSA P-256; this is another kind of key');
  }
  return b64;
}

function parseSendgrid(v: unknown): Parsed {
  const o = vendorObject('sendgrid', v, ['apiKey', 'from', 'replyTo', 'webhookPublicKey']);
  const apiKey = secretMatching('sendgrid.apiKey', o.apiKey, SENDGRID_KEY, 'a SendGrid API key (SG.<id>.<secret>)');
  return {
    settings: {
      vendor: 'sendgrid',
      from: parseEmail('sendgrid.from', o.from),
      replyTo: optional(o.replyTo, (x) => parseEmail('sendgrid.replyTo', x)),
      webhookPublicKey: optional(o.webhookPublicKey, (x) => webhookPublicKey('sendgrid.webhookPublicKey', x)),
    },
    secret: { vendor: 'sendgrid', apiKey },
  };
}

// ---- SMTP -----------------------------------------------------------------------------------
const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

function parseSmtp(v: unknown): Parsed {
  const o = vendorObject('smtp', v, ['url', 'from']);
  const text = requireString('smtp.url', o.url).trim();
  const usage = 'use smtp://user:password@host:587 (STARTTLS) or smtps://user:password@host:465 (implicit TLS)';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw badInput('smtp.url', `not a URL; ${usage}`);
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw badInput('smtp.url', usage);
  const host = url.hostname.toLowerCase();
  if (host === '' || !(HOST_NAME.test(host) || IPV6.test(host))) throw badInput('smtp.url', `no valid host name; ${usage}`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw badInput('smtp.url', 'only user, password, host and port: no path, query or fragment');
  }
  const secure = url.protocol === 'smtps:';
  const port = url.port === '' ? (secure ? 465 : 587) : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw badInput('smtp.url', 'the port must be from 1 to 65535');
  let user: string | null = null;
  let pass: string | null = null;
  try {
    user = url.username === '' ? null : decodeURIComponent(url.username);
    pass = url.password === '' ? null : decodeURIComponent(url.password);
  } catch {
    throw badInput('smtp.url', 'the user or password is not correctly percent-encoded');
  }
  if ((user === null) !== (pass === null)) throw badInput('smtp.url', 'give both user and password (user:password@host), or neither');
  return {
    settings: { vendor: 'smtp', host: IPV6.test(host) ? host.slice(1, -1) : host, port, secure, from: parseEmail('smtp.from', o.from) },
    secret: { vendor: 'smtp', user, pass },
  };
}

// ---- Twilio ---------------------------------------------------------------------------------
function parseTwilio(v: unknown): Parsed {
  const o = vendorObject('twilio', v, ['accountSid', 'authToken', 'apiKeySid', 'apiKeySecret', 'from', 'messagingServiceSid']);
  const accountSid = requireString('twilio.accountSid', o.accountSid).trim();
  if (!/^AC[0-9a-f]{32}$/.test(accountSid)) throw badInput('twilio.accountSid', `"${accountSid.slice(0, 40)}" is not an account SID: AC and 32 lower-case hex digits`);
  const byToken = isPresent(o.authToken);
  const byKey = isPresent(o.apiKeySid) || isPresent(o.apiKeySecret);
  if (byToken === byKey) throw badInput('twilio', 'give authToken, or apiKeySid and apiKeySecret (exactly one way to sign in)');
  let secret: IntegrationSecret;
  if (byToken) {
    secret = { vendor: 'twilio', authToken: secretMatching('twilio.authToken', o.authToken, /^[0-9a-f]{32}$/, 'an auth token (32 lower-case hex digits)') };
  } else {
    if (!isPresent(o.apiKeySid)) throw badInput('twilio.apiKeySid', 'required with apiKeySecret');
    if (!isPresent(o.apiKeySecret)) throw badInput('twilio.apiKeySecret', 'required with apiKeySid');
    const apiKeySid = requireString('twilio.apiKeySid', o.apiKeySid).trim();
    if (!/^SK[0-9a-f]{32}$/.test(apiKeySid)) throw badInput('twilio.apiKeySid', 'not an API key SID: SK and 32 lower-case hex digits');
    const apiKeySecret = secretMatching('twilio.apiKeySecret', o.apiKeySecret, /^[\x21-\x7e]{16,256}$/, 'an API key secret (at least 16 printable characters)');
    secret = { vendor: 'twilio', apiKeySid, apiKeySecret };
  }
  if (isPresent(o.from) === isPresent(o.messagingServiceSid)) throw badInput('twilio', 'give exactly one sender: from (a number) or messagingServiceSid');
  const from = optional(o.from, (x) => parsePhoneE164('twilio.from', x));
  const messagingServiceSid = optional(o.messagingServiceSid, (x) => {
    const sid = requireString('twilio.messagingServiceSid', x).trim();
    if (!/^MG[0-9a-f]{32}$/.test(sid)) throw badInput('twilio.messagingServiceSid', `"${sid.slice(0, 40)}" is not a messaging service SID: MG and 32 lower-case hex digits`);
    return sid;
  });
  return { settings: { vendor: 'twilio', accountSid, from, messagingServiceSid }, secret };
}

// ---- SNS ------------------------------------------------------------------------------------
function parseSns(v: unknown): Parsed {
  const o = vendorObject('sns', v, ['region', 'accessKeyId', 'secretAccessKey', 'senderId']);
  const region = requireString('sns.region', o.region).trim();
  if (!/^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(region)) throw badInput('sns.region', `"${region.slice(0, 30)}" is not an AWS region like eu-west-1`);
  const accessKeyId = secretMatching('sns.accessKeyId', o.accessKeyId, /^(AKIA|ASIA)[A-Z0-9]{16}$/, 'an AWS access key id (AKIA or ASIA and 16 upper-case letters or digits)');
  const secretAccessKey = secretMatching('sns.secretAccessKey', o.secretAccessKey, /^[A-Za-z0-9/+=]{40}$/, 'an AWS secret access key (40 characters)');
  const senderId = optional(o.senderId, (x) => {
    const id = requireString('sns.senderId', x).trim();
    if (!/^[A-Za-z0-9]{1,11}$/.test(id)) throw badInput('sns.senderId', 'expected 1 to 11 letters or digits');
    return id;
  });
  return { settings: { vendor: 'sns', region, senderId }, secret: { vendor: 'sns', accessKeyId, secretAccessKey } };
}

// ---- endpoint -------------------------------------------------------------------------------
/** `{ url }`, or the URL alone. */
function parseEndpoint(v: unknown, vendor: Vendor): IntegrationEndpoint {
  const given = typeof v === 'string' ? v : vendorObject('endpoint', v, ['url']).url;
  const text = requireString('endpoint.url', given).trim();
  const schemes = vendor === 'smtp' ? ['smtp:', 'smtps:'] : ['https:', 'http:'];
  const usage = `expected a ${schemes.map((s) => `${s}//`).join(' or ')} URL`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw badInput('endpoint.url', usage);
  }
  if (!schemes.includes(url.protocol) || url.hostname === '') throw badInput('endpoint.url', usage);
  if (url.username !== '' || url.password !== '') throw badInput('endpoint.url', 'must not carry credentials; they belong in the vendor’s fields');
  return { url: text };
}

function parseCa(v: unknown): string {
  const pem = requireString('ca', v).trim();
  try {
    new crypto.X509Certificate(pem);
  } catch {
    throw badInput('ca', 'not a PEM certificate that parses');
  }
  return pem;
}

/**
 * Validates an integration as an admin gives it and splits it into its readable spec and its
 * secret. `allowEndpoint` is the operator's switch for custom endpoints, CAs and fixed FCM
 * tokens (sandboxes, relays): tenants talk to the vendors' own hosts.
 */
export function parseIntegrationInput(input: IntegrationInput, options: { allowEndpoint: boolean }): ParsedIntegration {
  const name = parseEntityId('name', input.name);
  const given = VENDORS.filter((v) => isPresent(input[v]));
  if (given.length !== 1) throw badInput('vendor', `give exactly one of ${VENDORS.join(', ')}`);
  const vendor = given[0]!;
  const channel: DeviceKind = parseDeviceKind('channel', input.channel);
  if (!VENDOR_CHANNELS[vendor].includes(channel)) {
    throw badInput('channel', `${vendor} serves ${VENDOR_CHANNELS[vendor].join(' or ')}, not ${channel}`);
  }
  const priority = isPresent(input.priority) ? integerIn('priority', input.priority, 0, INTEGRATION_PRIORITY_MAX) : 0;
  const quotaPerSecond = optional(input.quotaPerSecond, (q) => integerIn('quotaPerSecond', q, 1, INTEGRATION_QUOTA_MAX));
  for (const field of ['endpoint', 'ca'] as const) {
    if (isPresent(input[field]) && !options.allowEndpoint) {
      throw badInput(field, 'custom endpoints are an operator option; leave endpoint and ca out to use the vendor’s own host');
    }
  }
  const endpoint = optional(input.endpoint, (e) => parseEndpoint(e, vendor));
  const ca = optional(input.ca, parseCa);
  // A CA replaces the system roots, so without an endpoint it would break the vendor's own host;
  // SMTP has none, its URL names the account's server, which the CA may sign.
  if (ca !== null && endpoint === null && vendor !== 'smtp') throw badInput('ca', 'a CA is only used with an endpoint (or an SMTP server)');
  if (vendor === 'fcm' && endpoint !== null && ca === null) {
    throw badInput('ca', 'an FCM endpoint is a TLS redirect of Google’s hosts: give the CA that signs its certificate');
  }
  const { settings, secret } = parseVendor(vendor, input[vendor], options.allowEndpoint);
  return { spec: { name, channel, priority, settings, quotaPerSecond, endpoint, ca }, secret };
}

function parseVendor(vendor: Vendor, v: unknown, allowEndpoint: boolean): Parsed {
  switch (vendor) {
    case 'apns':
      return parseApns(v);
    case 'fcm':
      return parseFcm(v, allowEndpoint);
    case 'sendgrid':
      return parseSendgrid(v);
    case 'smtp':
      return parseSmtp(v);
    case 'twilio':
      return parseTwilio(v);
    case 'sns':
      return parseSns(v);
    default: {
      const never: never = vendor;
      throw badInput('vendor', `unknown vendor ${String(never)}`);
    }
  }
}

// ---- fingerprint and hint -------------------------------------------------------------------
const canonical = (v: unknown): string => {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
};

/** Tells two credentials apart without revealing either: 16 hex digits of SHA-256 over canonical JSON. */
export function fingerprintOf(secret: IntegrationSecret): string {
  return crypto.createHash('sha256').update(canonical(secret)).digest('hex').slice(0, 16);
}

const pemBody = (pem: string): string => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
const tail = (s: string): string => `…${s.slice(-4)}`;

/**
 * The last characters of the credential an admin can recognise in the vendor's console: the
 * end of the key (APNs, whose key id is not secret), the private key id or token (FCM), the API
 * key (SendGrid), the user (SMTP), the auth token or API key SID (Twilio), the access key id (SNS).
 */
export function hintOf(secret: IntegrationSecret): string {
  switch (secret.vendor) {
    case 'apns':
      return tail(pemBody(secret.key));
    case 'fcm':
      if ('accessToken' in secret) return tail(secret.accessToken);
      return tail(secret.privateKeyId ?? pemBody(secret.privateKey));
    case 'sendgrid':
      return tail(secret.apiKey);
    case 'smtp':
      return secret.user === null ? 'no login' : tail(secret.user);
    case 'twilio':
      return tail('authToken' in secret ? secret.authToken : secret.apiKeySid);
    case 'sns':
      return tail(secret.accessKeyId);
    default: {
      const never: never = secret;
      throw new Error(`hintOf: unknown vendor ${(never as { vendor: string }).vendor}`);
    }
  }
}
