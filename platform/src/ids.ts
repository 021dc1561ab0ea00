import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

const encodeTime = (ms: number, length: number): string => {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = CROCKFORD[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
};

const encodeRandom = (length: number): string => {
  const bytes = randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += CROCKFORD[bytes[i]! % 32];
  return out;
};

/** A ULID: 26 chars, sorts by creation time (ms), 80 random bits. */
export const ulid = (now: number = Date.now()): string => encodeTime(now, 10) + encodeRandom(16);

/** Short random ids for things that need no ordering (devices, API keys). */
export const shortId = (prefix: string, length = 12): string => `${prefix}${encodeRandom(length).toLowerCase()}`;

export type IdGenerator = Readonly<{
  ulid: () => string;
  shortId: (prefix: string, length?: number) => string;
}>;

export const randomIds: IdGenerator = { ulid: () => ulid(), shortId };
