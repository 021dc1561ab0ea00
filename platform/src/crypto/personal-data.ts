import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyVault } from '../key-vault/port';

/**
 * Personal data under one user's data key: `pd2.<base64url(context length | context | iv | tag |
 * ciphertext)>`, or the older `pd1.<base64url(iv | tag | ciphertext)>` (bound to the key id only).
 */
export type Sealed = string & { readonly __sealed: unique symbol };

export type UserKey = Readonly<{ keyId: string; key: Buffer }>;

/**
 * What a sealed value is: the field it belongs to (`name`), and for a device its id and kind
 * (`device:<deviceId>:<kind>`). It is authenticated with the value (AES-GCM additional data), so
 * a value copied into another field, or onto another device, does not open there.
 */
export type SealContext = string;

const IV = 12;
const TAG = 16;
const V1 = 'pd1.';
const V2 = 'pd2.';
const MAX_CONTEXT = 255;

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

/**
 * A master key's public name: 8 bytes of a hash of it, stored with every key it wraps so each
 * wrapped key says which master key opens it (several are in use while one is rotated away).
 */
export const masterKeyId = (masterKey: Buffer): string => createHash('sha256').update('notify/master-key-id\0').update(masterKey).digest().subarray(0, 8).toString('hex');

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

const aadV2 = (keyId: string, context: string): Buffer => Buffer.from(`pd2\0${keyId}\0${context}`, 'utf8');

type Parsed = Readonly<{ version: 1; body: Buffer }> | Readonly<{ version: 2; context: string; body: Buffer }>;

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Reads the structure of a sealed value, or null when it is not one: the version marker, then
 * base64url that decodes to at least an IV and a tag (and, for pd2, a well-formed context). A
 * string a user typed that merely begins with `pd1.` is not taken for one because of it; and
 * readers never guess: they open only the fields that hold sealed values (schema/src/sealed.ts).
 */
const parseSealed = (value: string): Parsed | null => {
  const version = value.startsWith(V2) ? 2 : value.startsWith(V1) ? 1 : 0;
  if (version === 0) return null;
  const text = value.slice(4);
  if (!BASE64URL.test(text)) return null;
  const raw = Buffer.from(text, 'base64url');
  if (raw.toString('base64url') !== text) return null;
  if (version === 1) return raw.length >= IV + TAG ? { version: 1, body: raw } : null;
  const length = raw[0];
  if (length === undefined || raw.length < 1 + length + IV + TAG) return null;
  const context = raw.subarray(1, 1 + length).toString('utf8');
  return { version: 2, context, body: raw.subarray(1 + length) };
};

/** Whether a string has the structure of a sealed value (it may still fail to open). */
export const isSealed = (value: unknown): value is Sealed => typeof value === 'string' && parseSealed(value) !== null;

const WRAP_V1 = 1;
const WRAP_V2 = 2;
const KID = 8;

export type MasterKeyring = Readonly<{
  /** Wraps every new data key, and every key `rewrap` touches. */
  current: Buffer;
  /** Older master keys whose wrapped keys still unwrap (during a rotation). */
  previous?: readonly Buffer[];
}>;

/**
 * Envelope encryption of personal data: one AES-256-GCM data key per user, wrapped by the master
 * key in the vault. The user's key id and the value's context (its field, its device) are the
 * additional data of every ciphertext, so a value copied onto another user, another field or
 * another device does not open. Destroying the wrapped key shreds every copy.
 */
export class PersonalDataCipher {
  private readonly cache = new Map<string, UserKey>();
  private readonly cacheSize: number;
  /** Moves on every `forget`: a key read from the vault before then is not cached. */
  private forgets = 0;
  private cacheSuspended = false;
  private readonly current: Readonly<{ id: string; key: Buffer }>;
  private readonly masters: ReadonlyMap<string, Buffer>;

  constructor(
    private readonly vault: KeyVault,
    masterKey: Buffer | MasterKeyring,
    options: Readonly<{ cacheSize?: number }> = {},
  ) {
    const ring: MasterKeyring = Buffer.isBuffer(masterKey) ? { current: masterKey } : masterKey;
    for (const k of [ring.current, ...(ring.previous ?? [])]) {
      if (k.length !== 32) throw new Error(`the master key must be 32 bytes, got ${k.length}`);
    }
    this.current = { id: masterKeyId(ring.current), key: ring.current };
    this.masters = new Map([...(ring.previous ?? []), ring.current].map((k) => [masterKeyId(k), k]));
    this.cacheSize = options.cacheSize ?? 100_000;
    if (!Number.isInteger(this.cacheSize) || this.cacheSize < 0) throw new Error(`cacheSize must be a whole number, got ${this.cacheSize}`);
  }

  /** The id of the master key that wraps new keys. */
  get masterKeyId(): string {
    return this.current.id;
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
    // Creating stores a new key unless one is there and returns the one stored: one round trip
    // where the key is new (a registration), two where it exists.
    const wrapped = options.create ? await this.vault.putIfAbsent(keyId, this.wrap(keyId, randomBytes(32))) : await this.vault.get(keyId);
    if (!wrapped) return null;
    const key = { keyId, key: this.unwrap(keyId, wrapped) };
    if (forgets === this.forgets) this.remember(key);
    return key;
  }

  /**
   * The existing keys of many users (never created), cached ones from memory and the rest in one
   * vault read: a dispatch round opens the addresses of hundreds of users at once, and one round
   * trip each, one after the other, made the round as slow as the vault times its size.
   */
  async keysFor(keyIds: readonly string[]): Promise<ReadonlyMap<string, UserKey>> {
    const found = new Map<string, UserKey>();
    const missing: string[] = [];
    for (const keyId of new Set(keyIds)) {
      const cached = this.cache.get(keyId);
      if (!cached) {
        missing.push(keyId);
        continue;
      }
      this.cache.delete(keyId);
      this.cache.set(keyId, cached);
      found.set(keyId, cached);
    }
    if (missing.length === 0) return found;
    const forgets = this.forgets;
    for (const [keyId, wrapped] of await this.vault.getMany(missing)) {
      const key = { keyId, key: this.unwrap(keyId, wrapped) };
      if (forgets === this.forgets) this.remember(key);
      found.set(keyId, key);
    }
    return found;
  }

  /**
   * Seals a value for one field: `context` names it (`name`, `device:<id>:<kind>`). Without a
   * context the value is sealed the old way (pd1, bound to the user only): kept for tools that
   * predate contexts, never used by the service itself.
   */
  seal(key: UserKey, plaintext: string, context?: SealContext): Sealed {
    const text = Buffer.from(plaintext, 'utf8');
    if (context === undefined) return `${V1}${encrypt(key.key, text, Buffer.from(key.keyId)).toString('base64url')}` as Sealed;
    const label = Buffer.from(context, 'utf8');
    if (label.length > MAX_CONTEXT) throw new Error(`seal context longer than ${MAX_CONTEXT} bytes`);
    const body = encrypt(key.key, text, aadV2(key.keyId, context));
    return `${V2}${Buffer.concat([Buffer.from([label.length]), label, body]).toString('base64url')}` as Sealed;
  }

  /**
   * Opens a value sealed for `context`: a pd2 value sealed for another field or device does not
   * open (a pd1 value, which predates contexts, opens wherever it is). Readers should always
   * name the context they read; without one a pd2 value opens as whatever field it was sealed
   * for (kept for callers that do not know it yet).
   */
  open(key: UserKey, sealed: Sealed, context?: SealContext): string {
    const parsed = parseSealed(sealed);
    if (!parsed) throw new Error('not a sealed value');
    if (parsed.version === 2 && context !== undefined && parsed.context !== context) {
      throw new Error(`sealed value does not open here: it was sealed for another field or device than ${context}`);
    }
    try {
      const aad = parsed.version === 1 ? Buffer.from(key.keyId) : aadV2(key.keyId, parsed.context);
      return decrypt(key.key, parsed.body, aad).toString('utf8');
    } catch {
      throw new Error(`sealed value does not open with the data key of ${key.keyId}: tampered, or sealed for someone else`);
    }
  }

  /**
   * A keyed fingerprint of a value (a device address): equal for equal values of one user, and
   * meaningless without the user's data key, so it dies with the key like the sealed value.
   */
  fingerprint(key: UserKey, value: string): string {
    const fingerprintKey = Buffer.from(hkdfSync('sha256', key.key, Buffer.alloc(0), 'notify/fingerprint', 32));
    return createHmac('sha256', fingerprintKey).update(value, 'utf8').digest().subarray(0, 16).toString('base64url');
  }

  /** Drops a key from memory, so a destroyed key stops working here at once. */
  forget(keyId: string): void {
    this.forgets++;
    this.cache.delete(keyId);
  }

  /**
   * Stops caching keys (and drops every cached one) while this process cannot hear of erasures
   * elsewhere (its key evictor is down): every key is then read from the vault, which is the
   * truth. `resume` caches again.
   */
  suspendCache(): void {
    this.cacheSuspended = true;
    this.forgets++;
    this.cache.clear();
  }

  resumeCache(): void {
    this.cacheSuspended = false;
  }

  /** How many unwrapped keys are cached (tests, metrics). */
  get cachedKeys(): number {
    return this.cache.size;
  }

  /** Whether a wrapped key is wrapped by the current master key already. */
  isCurrent(wrapped: Buffer): boolean {
    return wrapped.length > 1 + KID && wrapped[0] === WRAP_V2 && wrapped.subarray(1, 1 + KID).toString('hex') === this.current.id;
  }

  /**
   * The same data key wrapped by the current master key, or null when it is already. Throws when
   * no master key this process has opens it.
   */
  rewrap(keyId: string, wrapped: Buffer): Buffer | null {
    if (this.isCurrent(wrapped)) return null;
    return this.wrap(keyId, this.unwrap(keyId, wrapped));
  }

  private remember(key: UserKey): void {
    if (this.cacheSize === 0 || this.cacheSuspended) return;
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key.keyId, key);
  }

  /** `2 | master key id (8) | iv | tag | key`, the header authenticated with the key id. */
  private wrap(keyId: string, key: Buffer): Buffer {
    const header = Buffer.concat([Buffer.from([WRAP_V2]), Buffer.from(this.current.id, 'hex')]);
    return Buffer.concat([header, encrypt(this.current.key, key, Buffer.concat([header, Buffer.from(keyId)]))]);
  }

  private unwrap(keyId: string, wrapped: Buffer): Buffer {
    if (wrapped.length > 1 + KID && wrapped[0] === WRAP_V2) {
      const header = wrapped.subarray(0, 1 + KID);
      const id = header.subarray(1).toString('hex');
      const master = this.masters.get(id);
      if (!master) throw new Error(`data key ${keyId} is wrapped by master key ${id}, which this process does not have: set it as MASTER_KEY_PREVIOUS until the rotation is finished`);
      try {
        return decrypt(master, wrapped.subarray(1 + KID), Buffer.concat([header, Buffer.from(keyId)]));
      } catch {
        throw new Error(`data key ${keyId} does not unwrap with master key ${id}: it was tampered with`);
      }
    }
    if (wrapped.length === 0 || wrapped[0] !== WRAP_V1) throw new Error(`data key ${keyId}: unknown wrapping version ${wrapped[0]}`);
    // Version 1 names no master key: try each, the current one first.
    for (const master of [this.current.key, ...[...this.masters.values()].filter((m) => m !== this.current.key)]) {
      try {
        return decrypt(master, wrapped.subarray(1), Buffer.from(keyId));
      } catch {
        // the next one
      }
    }
    throw new Error(`data key ${keyId} does not unwrap: the master key differs from the one that wrapped it`);
  }
}

/** Constant-time comparison of two strings (fingerprints, MACs). */
export const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};
