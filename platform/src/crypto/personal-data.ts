import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyVault } from '../key-vault/port';

/** `pd1.<base64url(iv | tag | ciphertext)>`: personal data under one user's data key. */
export type Sealed = string & { readonly __sealed: unique symbol };

export type UserKey = Readonly<{ keyId: string; key: Buffer }>;

const WRAP_VERSION = 1;
const IV = 12;
const TAG = 16;
const SEALED_PREFIX = 'pd1.';

/** How a sealed value reads once its key is destroyed: in views, replays and exports. */
export const SHREDDED = '[shredded]';

/**
 * The master key from configuration: 64 hex characters, or base64 (standard or URL-safe) of
 * exactly 32 bytes. The error never repeats the value, which is a secret.
 */
export const parseMasterKey = (value: string): Buffer => {
  const trimmed = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  const base64 = trimmed.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]+$/.test(base64)) {
    throw new Error(`the master key must be 32 bytes as 64 hex characters or as base64, got ${trimmed.length} characters that are neither`);
  }
  const key = Buffer.from(base64, 'base64');
  // Node's decoder skips what it cannot read; re-encoding catches a truncated or padded value.
  if (key.length !== 32 || key.toString('base64').replace(/=+$/, '') !== base64) {
    throw new Error(`the master key must be 32 bytes (64 hex characters or 44 base64 characters), got ${key.length} bytes of base64`);
  }
  return key;
};

const encrypt = (key: Buffer, plaintext: Buffer, aad: Buffer): Buffer => {
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
};

const decrypt = (key: Buffer, packed: Buffer, aad: Buffer): Buffer => {
  if (packed.length < IV + TAG) throw new Error('ciphertext too short');
  const decipher = createDecipheriv('aes-256-gcm', key, packed.subarray(0, IV));
  decipher.setAAD(aad);
  decipher.setAuthTag(packed.subarray(IV, IV + TAG));
  return Buffer.concat([decipher.update(packed.subarray(IV + TAG)), decipher.final()]);
};

/**
 * Envelope encryption of personal data: one AES-256-GCM data key per user, wrapped by the master
 * key in the vault. The user's key id is the additional data of every ciphertext, so a value
 * copied onto another user does not open. Destroying the wrapped key shreds every copy.
 */
export class PersonalDataCipher {
  private readonly cache = new Map<string, UserKey>();
  private readonly cacheSize: number;
  /** Moves on every `forget`: a key read from the vault before then is not cached. */
  private forgets = 0;

  constructor(
    private readonly vault: KeyVault,
    private readonly masterKey: Buffer,
    options: Readonly<{ cacheSize?: number }> = {},
  ) {
    if (masterKey.length !== 32) throw new Error(`the master key must be 32 bytes, got ${masterKey.length}`);
    this.cacheSize = options.cacheSize ?? 100_000;
    if (!Number.isInteger(this.cacheSize) || this.cacheSize < 0) throw new Error(`cacheSize must be a whole number, got ${this.cacheSize}`);
  }

  async keyFor(keyId: string, options: Readonly<{ create: boolean }>): Promise<UserKey | null> {
    const cached = this.cache.get(keyId);
    if (cached) {
      this.cache.delete(keyId);
      this.cache.set(keyId, cached);
      return cached;
    }
    // A destroy + forget while the vault is read would otherwise let this read put the
    // destroyed key back into the cache, keeping it alive in memory.
    const forgets = this.forgets;
    let wrapped = await this.vault.get(keyId);
    if (!wrapped) {
      if (!options.create) return null;
      wrapped = await this.vault.putIfAbsent(keyId, this.wrap(keyId, randomBytes(32)));
    }
    const key = { keyId, key: this.unwrap(keyId, wrapped) };
    if (forgets === this.forgets) this.remember(key);
    return key;
  }

  seal(key: UserKey, plaintext: string): Sealed {
    return `${SEALED_PREFIX}${encrypt(key.key, Buffer.from(plaintext, 'utf8'), Buffer.from(key.keyId)).toString('base64url')}` as Sealed;
  }

  open(key: UserKey, sealed: Sealed): string {
    if (!sealed.startsWith(SEALED_PREFIX)) throw new Error('not a sealed value');
    try {
      return decrypt(key.key, Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url'), Buffer.from(key.keyId)).toString('utf8');
    } catch {
      throw new Error(`sealed value does not open with the data key of ${key.keyId}: tampered, or sealed for someone else`);
    }
  }

  /** Drops a key from memory, so a destroyed key stops working here at once. */
  forget(keyId: string): void {
    this.forgets++;
    this.cache.delete(keyId);
  }

  private remember(key: UserKey): void {
    if (this.cacheSize === 0) return;
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key.keyId, key);
  }

  private wrap(keyId: string, key: Buffer): Buffer {
    return Buffer.concat([Buffer.from([WRAP_VERSION]), encrypt(this.masterKey, key, Buffer.from(keyId))]);
  }

  private unwrap(keyId: string, wrapped: Buffer): Buffer {
    if (wrapped.length === 0 || wrapped[0] !== WRAP_VERSION) throw new Error(`data key ${keyId}: unknown wrapping version ${wrapped[0]}`);
    try {
      return decrypt(this.masterKey, wrapped.subarray(1), Buffer.from(keyId));
    } catch {
      throw new Error(`data key ${keyId} does not unwrap: the master key differs from the one that wrapped it`);
    }
  }
}
