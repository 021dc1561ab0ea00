import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { shortId } from '#platform/ids';

/**
 * Key format: `ntf.<tenantId>.<keyId>.<secret>`, where tenantId is `operator` for operator keys.
 * The tenant and key id are not secret; they say where to look the key up, so authentication is
 * one read of one small stream. The secret is 32 random bytes: a plain SHA-256 of it is as strong
 * as a slow hash would be, and keeps authentication in microseconds.
 */
export const OPERATOR = 'operator';

export type IssuedKey = Readonly<{ keyId: string; token: string; secretHash: string }>;

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export const newApiKey = (tenantId: string): IssuedKey => {
  const keyId = shortId('k', 16);
  const secret = randomBytes(32).toString('base64url');
  return { keyId, token: `ntf.${tenantId}.${keyId}.${secret}`, secretHash: hashSecret(secret) };
};

export const secretMatches = (secret: string, secretHash: string): boolean => {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(secretHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
};
