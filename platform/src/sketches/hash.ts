/** 32-bit FNV-1a and a second, independent 32-bit hash (murmur3 finalizer over FNV with another basis). */
export const fnv1a = (s: string, seed = 0x811c9dc5): number => {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
};

const fmix = (h: number): number => {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
};

/** FNV-1a mixed: every bit depends on the whole string (FNV-1a's own low bits pick a user's shard). */
export const mixedHash = (s: string): number => fmix(fnv1a(s));

export const hash2 = (s: string): [number, number] => [mixedHash(s), fmix(fnv1a(s, 0x01234567))];
