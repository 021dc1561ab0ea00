import crypto from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { SandboxTls } from './certs';
import { credentialId, type CredentialOf } from './credentials';
import type { SandboxInstance } from './instance';
import type { Listening } from './http';

/**
 * APNs provider API over HTTP/2 + TLS: `POST /3/device/{token}`, JWT provider tokens (ES256,
 * `kid` + `iss`, an hour of validity) verified with the instance's registered keys, Apple's
 * headers (apns-topic, apns-push-type, apns-priority, apns-expiration, apns-collapse-id, apns-id)
 * and Apple's status codes with `{reason}` bodies.
 */

const PUSH_TYPES = new Set([
  'alert', 'background', 'location', 'voip', 'complication', 'fileprovider', 'mdm', 'liveactivity', 'pushtotalk', 'widgets', 'controls',
]);
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const DEVICE_TOKEN = /^[0-9a-fA-F]{64,200}$/;
/** Epoch seconds, 0 meaning "now or never"; ten digits reach the year 2286. */
const EXPIRATION = /^\d{1,10}$/;

type TokenCheck =
  | { readonly ok: true; readonly credential: string }
  | { readonly ok: false; readonly reason: 'MissingProviderToken' | 'InvalidProviderToken' | 'ExpiredProviderToken' };

type Verified = { iat: number; key: CredentialOf<'apnsToken'> };

/**
 * Verifies provider tokens against the registered keys; a verified token is cached (clients reuse
 * one for up to an hour) along with its key, so a revoked or replaced key fails it at once.
 */
function tokenChecker(inst: SandboxInstance): (authorization: string | undefined) => TokenCheck {
  const verified = new Map<string, Verified>();
  const invalid: TokenCheck = { ok: false, reason: 'InvalidProviderToken' };
  return (authorization) => {
    if (authorization === undefined) return { ok: false, reason: 'MissingProviderToken' };
    const m = /^bearer\s+(\S+)$/i.exec(authorization);
    if (!m) return { ok: false, reason: 'MissingProviderToken' };
    const jwt = m[1]!;
    const now = Math.floor(Date.now() / 1000);
    let v = verified.get(jwt);
    if (v !== undefined && !inst.credentialActive(v.key)) {
      verified.delete(jwt);
      return invalid;
    }
    if (v === undefined) {
      const parts = jwt.split('.');
      if (parts.length !== 3) return invalid;
      let header: { alg?: unknown; kid?: unknown };
      let claims: { iss?: unknown; iat?: unknown };
      try {
        header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
        claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
      } catch {
        return invalid;
      }
      if (header.alg !== 'ES256' || typeof header.kid !== 'string' || typeof claims.iss !== 'string' || typeof claims.iat !== 'number') {
        return invalid;
      }
      const key = inst.credential(credentialId.apns(claims.iss, header.kid), 'apnsToken');
      if (key === undefined) return invalid;
      const ok = crypto.verify(
        'sha256',
        Buffer.from(`${parts[0]}.${parts[1]}`),
        { key: key.publicKey, dsaEncoding: 'ieee-p1363' },
        Buffer.from(parts[2]!, 'base64url'),
      );
      if (!ok) return invalid;
      v = { iat: claims.iat, key };
      if (verified.size > 1000) verified.clear();
      verified.set(jwt, v);
    }
    return now - v.iat > 3600 ? { ok: false, reason: 'ExpiredProviderToken' } : { ok: true, credential: v.key.id };
  };
}

function alertText(payload: Record<string, unknown>): string {
  const aps = payload.aps as Record<string, unknown>;
  const alert = aps.alert;
  if (typeof alert === 'string') return alert;
  if (typeof alert === 'object' && alert !== null && typeof (alert as { body?: unknown }).body === 'string') {
    return (alert as { body: string }).body;
  }
  return '';
}

export function listenApns(inst: SandboxInstance, tls: SandboxTls, host: string, port: number): Promise<Listening> {
  const checkToken = tokenChecker(inst);
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer({
    key: tls.key,
    cert: tls.cert,
    allowHTTP1: false,
    settings: { maxConcurrentStreams: 1000 },
  });
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket: import('node:net').Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => s.destroy());
  });

  const answer = (stream: http2.ServerHttp2Stream, status: number, apnsId: string, reason?: string, extra?: object) => {
    inst.later(() => {
      if (stream.destroyed || stream.closed) return;
      try {
        if (reason === undefined) {
          stream.respond({ ':status': status, 'apns-id': apnsId }, { endStream: true });
        } else {
          stream.respond({ ':status': status, 'apns-id': apnsId, 'content-type': 'application/json' });
          stream.end(JSON.stringify({ reason, ...extra }));
        }
      } catch {
        // The client reset the stream while we waited.
      }
    });
  };

  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const receivedAt = Date.now();
      const path = String(headers[':path'] ?? '');
      const requestedId = headers['apns-id'];
      const apnsId = typeof requestedId === 'string' && UUID.test(requestedId) ? requestedId : crypto.randomUUID();
      if (!path.startsWith('/3/device/')) return answer(stream, 404, apnsId, 'BadPath');
      if (headers[':method'] !== 'POST') return answer(stream, 405, apnsId, 'MethodNotAllowed');
      const token = decodeURIComponent(path.slice('/3/device/'.length));

      const v = inst.gate();
      if (v.kind === 'hang') return;
      if (v.kind === 'outage') return answer(stream, 503, apnsId, 'ServiceUnavailable');
      const auth = checkToken(headers.authorization as string | undefined);
      if (!auth.ok) {
        inst.counters.unauthorized++;
        return answer(stream, 403, apnsId, auth.reason);
      }
      if (v.kind === 'ratelimited') return answer(stream, 429, apnsId, 'TooManyRequests');

      const bad = (reason: string, status = 400) => {
        inst.counters.invalid++;
        answer(stream, status, apnsId, reason);
      };
      if (typeof requestedId === 'string' && !UUID.test(requestedId)) return bad('BadMessageId');
      if (token === '') return bad('MissingDeviceToken');
      const topic = headers['apns-topic'];
      if (typeof topic !== 'string' || topic === '') return bad('MissingTopic');
      const pushType = headers['apns-push-type'];
      if (pushType !== undefined && (typeof pushType !== 'string' || !PUSH_TYPES.has(pushType))) return bad('InvalidPushType');
      const priority = headers['apns-priority'];
      if (priority !== undefined && !['1', '5', '10'].includes(String(priority))) return bad('BadPriority');
      const expirationHeader = headers['apns-expiration'];
      if (expirationHeader !== undefined && !EXPIRATION.test(String(expirationHeader))) return bad('BadExpirationDate');
      const expiration = expirationHeader === undefined ? undefined : Number(expirationHeader);
      const collapse = headers['apns-collapse-id'];
      const collapseId = typeof collapse === 'string' ? collapse : undefined;
      if (collapseId !== undefined && Buffer.byteLength(collapseId) > 64) return bad('BadCollapseId');

      const body = Buffer.concat(chunks);
      if (body.length === 0) return bad('PayloadEmpty');
      if (body.length > 4096) return bad('PayloadTooLarge', 413);
      let payload: unknown;
      try {
        payload = JSON.parse(body.toString('utf8'));
      } catch {
        payload = undefined;
      }
      if (typeof payload !== 'object' || payload === null || typeof (payload as { aps?: unknown }).aps !== 'object') {
        return bad('PayloadEmpty');
      }
      if (v.kind === 'error') {
        return Math.random() < 0.5
          ? answer(stream, 500, apnsId, 'InternalServerError')
          : answer(stream, 503, apnsId, 'ServiceUnavailable');
      }
      const refused = inst.listedFailure(token) ?? (DEVICE_TOKEN.test(token) ? undefined : 'invalid');
      if (refused !== undefined) {
        inst.counters.permanent++;
        return refused === 'invalid'
          ? answer(stream, 400, apnsId, 'BadDeviceToken')
          : answer(stream, 410, apnsId, 'Unregistered', { timestamp: Date.now() });
      }
      const p = payload as Record<string, unknown>;
      const deliveryId = typeof p.deliveryId === 'string' ? p.deliveryId : collapseId;
      inst.later(() => {
        inst.record({
          id: apnsId,
          instance: inst.name,
          address: token,
          text: alertText(p),
          receivedAt,
          at: Date.now(),
          credential: auth.credential,
          ...(collapseId !== undefined ? { collapseId } : {}),
          ...(deliveryId !== undefined ? { deliveryId } : {}),
          ...(expiration !== undefined ? { expiration } : {}),
        });
        if (stream.destroyed || stream.closed) return;
        try {
          stream.respond({ ':status': 200, 'apns-id': apnsId }, { endStream: true });
        } catch {
          // reset by the client
        }
      });
    });
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
            for (const s of sessions) s.destroy();
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}
