import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SPKI DER prefix of an Ed25519 public key; the 32-byte key follows. */
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

const base64Of32 = (text: string): Buffer | null => {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) return null;
  const b = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return b.length === 32 ? b : null;
};

/**
 * The key that signs audit checkpoints: an Ed25519 private key as PKCS#8 PEM, or its 32-byte
 * seed in base64 or hex. Errors never repeat the value.
 */
export const parseSigningKey = (value: string): KeyObject => {
  const text = value.trim();
  let key: KeyObject;
  try {
    if (text.includes('-----BEGIN')) key = createPrivateKey(text);
    else {
      const seed = base64Of32(text);
      if (!seed) throw new Error('not 32 bytes');
      key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
    }
  } catch {
    throw new Error('the audit signing key must be an Ed25519 private key: PKCS#8 PEM, or the 32-byte seed in base64 or hex (make one: openssl genpkey -algorithm ed25519)');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the audit signing key must be Ed25519, got ${key.asymmetricKeyType ?? 'an unknown type'}`);
  return key;
};

/** The key that checkpoints are verified against: an Ed25519 public key as SPKI PEM, or its 32 bytes in base64 or hex. */
export const parseVerifyKey = (value: string): KeyObject => {
  const text = value.trim();
  let key: KeyObject;
  try {
    if (text.includes('-----BEGIN')) key = createPublicKey(text);
    else {
      const raw = base64Of32(text);
      if (!raw) throw new Error('not 32 bytes');
      key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
    }
  } catch {
    throw new Error('the audit verify key must be an Ed25519 public key: SPKI PEM, or its 32 bytes in base64 or hex');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the audit verify key must be Ed25519, got ${key.asymmetricKeyType ?? 'an unknown type'}`);
  return key;
};

/** A public key's short name: 16 hex characters of the SHA-256 of its SPKI form. */
export const publicKeyId = (key: KeyObject): string => {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
};

export const publicKeyPem = (key: KeyObject): string => (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'pem' }).toString();

export const signBytes = (key: KeyObject, data: Buffer): string => sign(null, data, key).toString('base64');

export const verifyBytes = (key: KeyObject, data: Buffer, signature: string): boolean => {
  try {
    return verify(null, data, key.type === 'private' ? createPublicKey(key) : key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
};
