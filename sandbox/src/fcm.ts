import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { credentialId, type CredentialOf } from './credentials';
import type { SandboxInstance } from './instance';
import { bearer, isObject, nextId, parseJson, sendJson, type HttpHandler } from './http';

/**
 * FCM HTTP v1: `POST /v1/projects/{project}/messages:send` with an OAuth2 bearer token (a
 * registered fixed token, or one the instance's Google token endpoint gave a service account), the
 * message validated as FCM does (field names in snake_case or lowerCamelCase, exactly one target,
 * string-only data, enum and duration formats, 4 KB payload), and Google's JSON errors with the
 * FcmError detail firebase-admin reads.
 */
export type FcmContext = { project: string };

const FCM_ERROR = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const BAD_REQUEST = 'type.googleapis.com/google.rpc.BadRequest';

const STATUS_OF: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

function googleError(code: number, message: string, errorCode?: string, violation?: { field: string; description: string }) {
  const details: object[] = [];
  if (errorCode !== undefined) details.push({ '@type': FCM_ERROR, errorCode });
  if (violation !== undefined) details.push({ '@type': BAD_REQUEST, fieldViolations: [violation] });
  return { error: { code, message, status: STATUS_OF[code] ?? 'UNKNOWN', ...(details.length > 0 ? { details } : {}) } };
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

type Violation = { field: string; description: string };
type Parsed = {
  target: string;
  text: string;
  collapseId?: string;
  deliveryId?: string;
  /** apns-expiration of the APNs headers FCM relays, epoch seconds. */
  expiration?: number;
  /** android.ttl in seconds. */
  ttlSeconds?: number;
  validateOnly: boolean;
};

function fields(obj: Record<string, unknown>, allowed: ReadonlySet<string>, at: string): Map<string, unknown> | Violation {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(obj)) {
    const name = snake(k);
    if (!allowed.has(name)) return { field: at, description: `Invalid JSON payload received. Unknown name "${k}" at '${at}': Cannot find field.` };
    out.set(name, v);
  }
  return out;
}

function stringMap(v: unknown, at: string, reserved?: (k: string) => boolean): Violation | undefined {
  if (!isObject(v)) return { field: at, description: `Invalid value at '${at}': expected a map of strings` };
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') return { field: `${at}[${k}]`, description: `Invalid value at '${at}[${k}]' (TYPE_STRING)` };
    if (reserved?.(k)) return { field: `${at}[${k}]`, description: `Invalid data payload key: ${k}` };
  }
  return undefined;
}

const MESSAGE = new Set(['name', 'data', 'notification', 'android', 'webpush', 'apns', 'fcm_options', 'token', 'topic', 'condition']);
const NOTIFICATION = new Set(['title', 'body', 'image']);
const ANDROID = new Set([
  'collapse_key', 'priority', 'ttl', 'restricted_package_name', 'data', 'notification', 'fcm_options',
  'direct_boot_ok', 'bandwidth_constrained_ok', 'restricted_satellite_ok',
]);
const APNS = new Set(['headers', 'payload', 'fcm_options', 'live_activity_token']);
const DURATION = /^\d{1,12}(\.\d{1,9})?s$/;
const reservedDataKey = (k: string) => k === 'from' || k === 'notification' || k === 'message_type' || /^(google|gcm)/.test(k);
const TOKEN = /^[A-Za-z0-9_:.-]+$/;

/** Validates a send request; returns the parts the sandbox records, or the first violation. */
export function validateFcmRequest(body: unknown): Parsed | Violation {
  if (!isObject(body)) return { field: '', description: 'Invalid JSON payload received.' };
  let message: unknown;
  let validateOnly = false;
  for (const [k, v] of Object.entries(body)) {
    const name = snake(k);
    if (name === 'message') message = v;
    else if (name === 'validate_only') {
      if (typeof v !== 'boolean') return { field: 'validate_only', description: "Invalid value at 'validate_only' (TYPE_BOOL)" };
      validateOnly = v;
    } else return { field: '', description: `Invalid JSON payload received. Unknown name "${k}": Cannot find field.` };
  }
  if (!isObject(message)) return { field: 'message', description: 'Message must be provided.' };
  const m = fields(message, MESSAGE, 'message');
  if (!(m instanceof Map)) return m;

  const targets = ['token', 'topic', 'condition'].filter((t) => m.has(t));
  if (targets.length !== 1) {
    return { field: 'message', description: 'Exactly one of token, topic or condition must be specified.' };
  }
  const targetKind = targets[0]!;
  const target = m.get(targetKind);
  if (typeof target !== 'string' || target.length === 0) {
    return { field: `message.${targetKind}`, description: `Invalid value at 'message.${targetKind}' (TYPE_STRING)` };
  }

  let text = '';
  if (m.has('data')) {
    const bad = stringMap(m.get('data'), 'message.data', reservedDataKey);
    if (bad) return bad;
  }
  if (m.has('notification')) {
    const n = m.get('notification');
    if (!isObject(n)) return { field: 'message.notification', description: "Invalid value at 'message.notification'" };
    const nf = fields(n, NOTIFICATION, 'message.notification');
    if (!(nf instanceof Map)) return nf;
    for (const [k, v] of nf) {
      if (typeof v !== 'string') return { field: `message.notification.${k}`, description: `Invalid value at 'message.notification.${k}' (TYPE_STRING)` };
    }
    text = (nf.get('body') as string | undefined) ?? '';
  }
  let collapseId: string | undefined;
  let ttlSeconds: number | undefined;
  let expiration: number | undefined;
  if (m.has('android')) {
    const a = m.get('android');
    if (!isObject(a)) return { field: 'message.android', description: "Invalid value at 'message.android'" };
    const af = fields(a, ANDROID, 'message.android');
    if (!(af instanceof Map)) return af;
    const ck = af.get('collapse_key');
    if (ck !== undefined) {
      if (typeof ck !== 'string') return { field: 'message.android.collapse_key', description: "Invalid value at 'message.android.collapse_key' (TYPE_STRING)" };
      collapseId = ck;
    }
    const p = af.get('priority');
    if (p !== undefined && (typeof p !== 'string' || !/^(normal|high)$/i.test(p))) {
      return { field: 'message.android.priority', description: `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "${String(p)}"` };
    }
    const ttl = af.get('ttl');
    if (ttl !== undefined && (typeof ttl !== 'string' || !DURATION.test(ttl))) {
      return { field: 'message.android.ttl', description: `Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), Field 'ttl', Illegal duration format; duration must end with 's'` };
    }
    if (ttl !== undefined) ttlSeconds = Number((ttl as string).slice(0, -1));
    if (af.has('data')) {
      const bad = stringMap(af.get('data'), 'message.android.data', reservedDataKey);
      if (bad) return bad;
    }
  }
  if (m.has('apns')) {
    const a = m.get('apns');
    if (!isObject(a)) return { field: 'message.apns', description: "Invalid value at 'message.apns'" };
    const af = fields(a, APNS, 'message.apns');
    if (!(af instanceof Map)) return af;
    if (af.has('headers')) {
      const bad = stringMap(af.get('headers'), 'message.apns.headers');
      if (bad) return bad;
      const h = af.get('headers') as Record<string, string>;
      const cid = h['apns-collapse-id'];
      if (cid !== undefined) {
        if (Buffer.byteLength(cid) > 64) return { field: 'message.apns.headers', description: 'apns-collapse-id must not exceed 64 bytes' };
        collapseId ??= cid;
      }
      const exp = h['apns-expiration'];
      if (exp !== undefined) {
        if (!/^\d{1,10}$/.test(exp)) {
          return { field: 'message.apns.headers', description: `Invalid value for apns-expiration header: "${exp}" (epoch seconds expected)` };
        }
        expiration = Number(exp);
      }
    }
    const payload = af.get('payload');
    if (payload !== undefined) {
      if (!isObject(payload) || (payload.aps !== undefined && !isObject(payload.aps))) {
        return { field: 'message.apns.payload', description: 'Invalid APNs payload' };
      }
      if (text === '' && isObject(payload.aps)) {
        const alert = payload.aps.alert;
        text = typeof alert === 'string' ? alert : isObject(alert) && typeof alert.body === 'string' ? alert.body : '';
      }
    }
  }
  const size = Buffer.byteLength(JSON.stringify({ d: m.get('data'), n: m.get('notification'), a: m.get('android'), p: m.get('apns') }));
  if (size > 4096) return { field: 'message', description: 'Message is too big' };

  const data = m.get('data') as Record<string, string> | undefined;
  const deliveryId = data?.deliveryId ?? collapseId;
  return {
    target: targetKind === 'token' ? target : `/${targetKind}s/${target}`,
    text,
    validateOnly,
    ...(collapseId !== undefined ? { collapseId } : {}),
    ...(deliveryId !== undefined ? { deliveryId } : {}),
    ...(expiration !== undefined ? { expiration } : {}),
    ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
  };
}

/** Where google-auth-library (oauth2.googleapis.com/token) and older clients (accounts.google.com/o/oauth2/token) post. */
const TOKEN_PATHS = new Set(['/token', '/o/oauth2/token']);
const TOKEN_AUDIENCES = new Set([
  'https://oauth2.googleapis.com/token',
  'https://accounts.google.com/o/oauth2/token',
  'https://www.googleapis.com/oauth2/v4/token',
]);
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_LIFETIME_S = 3600;

type Issued = { account: CredentialOf<'fcmServiceAccount'>; expiresAt: number };
type Bearer = { credential: string; projectId?: string };

/**
 * Google's OAuth token endpoint for service accounts: a JWT (RS256) signed with the account's key,
 * `iss` its client email, exchanged for an hour's access token bound to the account. Refusals as
 * Google gives them: 400 {error: invalid_grant, error_description}.
 */
function tokenEndpoint(inst: SandboxInstance, issued: Map<string, Issued>, body: Buffer, res: ServerResponse): void {
  const form = new URLSearchParams(body.toString('utf8'));
  const refuse = (error: string, description: string) => {
    inst.counters.unauthorized++;
    sendJson(res, 400, { error, error_description: description });
  };
  if (form.get('grant_type') !== JWT_BEARER) return refuse('unsupported_grant_type', `Invalid grant_type: ${form.get('grant_type') ?? ''}`);
  const parts = (form.get('assertion') ?? '').split('.');
  if (parts.length !== 3) return refuse('invalid_grant', 'Invalid JWT: malformed assertion.');
  let header: { alg?: unknown };
  let claims: { iss?: unknown; aud?: unknown; iat?: unknown; exp?: unknown };
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    return refuse('invalid_grant', 'Invalid JWT: malformed assertion.');
  }
  if (header.alg !== 'RS256' || typeof claims.iss !== 'string') return refuse('invalid_grant', 'Invalid JWT Signature.');
  const account = inst.credential(credentialId.fcmServiceAccount(claims.iss), 'fcmServiceAccount');
  if (account === undefined) return refuse('invalid_grant', 'Invalid grant: account not found');
  const signed = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), account.publicKey, Buffer.from(parts[2]!, 'base64url'));
  if (!signed) return refuse('invalid_grant', 'Invalid JWT Signature.');
  if (typeof claims.aud !== 'string' || !TOKEN_AUDIENCES.has(claims.aud)) return refuse('invalid_grant', 'Invalid JWT: Failed audience check.');
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number' || claims.exp <= now - 60 || claims.iat > now + 60 || claims.exp - claims.iat > TOKEN_LIFETIME_S) {
    return refuse('invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
  }
  if (issued.size >= 10_000) for (const [t, i] of issued) if (i.expiresAt <= Date.now()) issued.delete(t);
  const accessToken = `ya29.${crypto.randomBytes(30).toString('base64url')}`;
  issued.set(accessToken, { account, expiresAt: Date.now() + TOKEN_LIFETIME_S * 1000 });
  sendJson(res, 200, { access_token: accessToken, expires_in: TOKEN_LIFETIME_S, token_type: 'Bearer' });
}

export function fcmHandler(inst: SandboxInstance, ctx: FcmContext): HttpHandler {
  const reply = (res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>) =>
    inst.later(() => sendJson(res, status, body, headers));
  const issued = new Map<string, Issued>();

  /** The registered credential behind a bearer token: one issued by the token endpoint, or a fixed one. */
  const authenticate = (token: string | undefined): Bearer | undefined => {
    if (token === undefined) return undefined;
    const i = issued.get(token);
    if (i !== undefined) {
      if (i.expiresAt > Date.now() && inst.credentialActive(i.account)) {
        return { credential: i.account.id, ...(i.account.projectId !== undefined ? { projectId: i.account.projectId } : {}) };
      }
      issued.delete(token);
      return undefined;
    }
    const fixed = inst.credential(credentialId.fcmToken(token), 'fcmAccessToken');
    return fixed !== undefined && fixed.accessToken === token ? { credential: fixed.id } : undefined;
  };

  return (req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    const receivedAt = Date.now();
    const url = req.url ?? '';
    if (req.method === 'POST' && TOKEN_PATHS.has(url.split('?')[0]!)) return tokenEndpoint(inst, issued, body, res);
    if (req.method !== 'POST' || !/^\/v1\/projects\/[^/]+\/messages:send$/.test(url)) {
      sendJson(res, 404, googleError(404, `The requested URL ${url} was not found on this server.`));
      return;
    }
    const v = inst.gate();
    if (v.kind === 'hang') return;
    if (v.kind === 'outage') {
      reply(res, 503, googleError(503, 'The service is currently unavailable.', 'UNAVAILABLE'), { 'retry-after': String(v.retryAfterSeconds) });
      return;
    }
    const auth = authenticate(bearer(req));
    if (auth === undefined) {
      inst.counters.unauthorized++;
      reply(res, 401, googleError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.'));
      return;
    }
    // A service account sends for its own project; a fixed token for the instance's.
    const project = auth.projectId ?? ctx.project;
    if (url !== `/v1/projects/${project}/messages:send`) {
      inst.counters.unauthorized++;
      const asked = url.split('/')[3];
      reply(res, 403, googleError(403, `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${asked}' (or it may not exist).`, 'SENDER_ID_MISMATCH'));
      return;
    }
    if (v.kind === 'ratelimited') {
      reply(res, 429, googleError(429, 'Quota exceeded for quota metric \'Send requests\' and limit \'Send requests per minute\' of service \'fcm.googleapis.com\'.', 'QUOTA_EXCEEDED'), { 'retry-after': String(v.retryAfterSeconds) });
      return;
    }
    const parsed = validateFcmRequest(parseJson(body));
    if (!('target' in parsed)) {
      inst.counters.invalid++;
      reply(res, 400, googleError(400, parsed.description || 'Invalid JSON payload received.', 'INVALID_ARGUMENT', parsed));
      return;
    }
    if (v.kind === 'error') {
      if (Math.random() < 0.5) reply(res, 500, googleError(500, 'Internal error encountered.', 'INTERNAL'));
      else reply(res, 503, googleError(503, 'The service is currently unavailable.', 'UNAVAILABLE'), { 'retry-after': String(v.retryAfterSeconds) });
      return;
    }
    const token = parsed.target;
    const refused = inst.listedFailure(token) ?? (token.startsWith('bad-') || (!token.startsWith('/') && !TOKEN.test(token)) ? 'invalid' : undefined);
    if (refused !== undefined) {
      inst.counters.permanent++;
      if (refused === 'invalid') {
        reply(res, 400, googleError(400, 'The registration token is not a valid FCM registration token', 'INVALID_ARGUMENT', { field: 'message.token', description: 'The registration token is not a valid FCM registration token' }));
      } else {
        reply(res, 404, googleError(404, 'Requested entity was not found.', 'UNREGISTERED'));
      }
      return;
    }
    if (parsed.validateOnly) {
      reply(res, 200, { name: `projects/${project}/messages/fake_message_id` });
      return;
    }
    inst.later(() => {
      const name = `projects/${project}/messages/0:${nextId()}`;
      inst.record({
        id: name,
        instance: inst.name,
        address: token,
        text: parsed.text,
        receivedAt,
        at: Date.now(),
        credential: auth.credential,
        ...(parsed.collapseId !== undefined ? { collapseId: parsed.collapseId } : {}),
        ...(parsed.deliveryId !== undefined ? { deliveryId: parsed.deliveryId } : {}),
        ...(parsed.expiration !== undefined ? { expiration: parsed.expiration } : {}),
        ...(parsed.ttlSeconds !== undefined ? { ttlSeconds: parsed.ttlSeconds } : {}),
      });
      sendJson(res, 200, { name });
    });
  };
}
