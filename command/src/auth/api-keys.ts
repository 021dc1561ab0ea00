import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Scope } from '../../../schema/src/scopes';
import { unauthenticated } from '../../../schema/src/errors';
import { shortId } from '../../../platform/src/ids';

/**
 * Key format: `ntf.<tenantId>.<keyId>.<secret>`, where tenantId is `operator` for operator keys.
 * The tenant and key id are not secret; they say where to look the key up, so authentication is
 * one read of one small stream. The secret is 32 random bytes: a plain SHA-256 of it is as strong
 * as a slow hash would be, and keeps authentication in microseconds.
 */
export const OPERATOR = 'operator';

export type IssuedKey = Readonly<{ keyId: string; token: string; secretHash: string }>;

export type Principal =
  | Readonly<{ kind: 'operator'; keyId: string }>
  | Readonly<{ kind: 'tenant'; tenantId: string; keyId: string; scopes: readonly Scope[] }>;

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export const newApiKey = (tenantId: string): IssuedKey => {
  const keyId = shortId('k', 16);
  const secret = randomBytes(32).toString('base64url');
  return { keyId, token: `ntf.${tenantId}.${keyId}.${secret}`, secretHash: hashSecret(secret) };
};

export type ParsedKey = Readonly<{ tenantId: string; keyId: string; secret: string }>;

export const parseBearer = (header: string | undefined | null): ParsedKey => {
  if (!header) throw unauthenticated('missing API key: send "Authorization: Bearer <key>"');
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) throw unauthenticated('malformed Authorization header: expected "Bearer <key>"');
  const parts = match[1]!.split('.');
  if (parts.length !== 4 || parts[0] !== 'ntf' || parts.some((p) => p.length === 0)) {
    throw unauthenticated('malformed API key: expected ntf.<tenant>.<key id>.<secret>');
  }
  return { tenantId: parts[1]!, keyId: parts[2]!, secret: parts[3]! };
};

export const secretMatches = (secret: string, secretHash: string): boolean => {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(secretHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
};
