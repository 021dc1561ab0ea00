import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;

const encodeTime = (ms: number, length: number): string => {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = CROCKFORD[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
};

/** Digits 0..31, one per character (256 is a multiple of 32, so each is uniform). */
const randomDigits = (length: number): number[] => {
  const bytes = randomBytes(length);
  const out: number[] = [];
  for (let i = 0; i < length; i++) out.push(bytes[i]! % 32);
  return out;
};

const encodeDigits = (digits: readonly number[]): string => {
  let out = '';
  for (const d of digits) out += CROCKFORD[d];
  return out;
};

const encodeRandom = (length: number): string => encodeDigits(randomDigits(length));

/** Adds one to a base-32 number held as digits, in place; false when it overflowed (all 31s). */
const increment = (digits: number[]): boolean => {
  for (let i = digits.length - 1; i >= 0; i--) {
    if (digits[i]! < 31) {
      digits[i]!++;
      return true;
    }
    digits[i] = 0;
  }
  return false;
};

/**
 * A monotonic ULID factory: within one millisecond (or while the clock stands still or steps
 * back) each id is the previous one plus one in its random part, so ids made by one process sort
 * in the order they were made, as the ULID specification's monotonic mode has it. A new
 * millisecond draws fresh random bits. Overflowing the 80 random bits within one millisecond
 * (2^80 ids) moves on to the next millisecond rather than failing.
 */
export const monotonicUlidFactory = (random: (length: number) => number[] = randomDigits): ((now?: number) => string) => {
  let lastTime = -1;
  let last: number[] = [];
  return (now: number = Date.now()): string => {
    if (now > lastTime) {
      lastTime = now;
      last = random(RANDOM_CHARS);
    } else if (!increment(last)) {
      lastTime++;
      last = random(RANDOM_CHARS);
    }
    return encodeTime(lastTime, TIME_CHARS) + encodeDigits(last);
  };
};

/** A ULID: 26 chars, sorts by creation time (ms), 80 random bits; monotonic within this process. */
export const ulid: (now?: number) => string = monotonicUlidFactory();

/** Short random ids for things that need no ordering (devices, API keys). */
export const shortId = (prefix: string, length = 12): string => `${prefix}${encodeRandom(length).toLowerCase()}`;

export type IdGenerator = Readonly<{
  ulid: () => string;
  shortId: (prefix: string, length?: number) => string;
}>;

export const randomIds: IdGenerator = { ulid: () => ulid(), shortId };
