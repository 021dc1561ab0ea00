import { hash2 } from './hash';

/**
 * A Bloom filter: "certainly not seen" or "maybe seen". Sized from the expected count and the
 * false-positive rate: 10^6 items at 1% take 1.2 MB. k hashes by double hashing.
 */
export class BloomFilter {
  private readonly bits: Uint8Array;
  private readonly m: number;
  private readonly k: number;
  private count = 0;

  constructor(expectedItems: number, falsePositiveRate = 0.01) {
    const n = Math.max(1, expectedItems);
    this.m = Math.max(64, Math.ceil((-n * Math.log(falsePositiveRate)) / Math.LN2 ** 2));
    this.k = Math.max(1, Math.round((this.m / n) * Math.LN2));
    this.bits = new Uint8Array(Math.ceil(this.m / 8));
  }

  add(item: string): void {
    const [a, b] = hash2(item);
    for (let i = 0; i < this.k; i++) {
      const bit = (a + Math.imul(i, b)) >>> 0;
      const at = bit % this.m;
      this.bits[at >>> 3]! |= 1 << (at & 7);
    }
    this.count++;
  }

  /** False: certainly never added. True: probably added (check the exact record). */
  mightContain(item: string): boolean {
    const [a, b] = hash2(item);
    for (let i = 0; i < this.k; i++) {
      const at = ((a + Math.imul(i, b)) >>> 0) % this.m;
      if ((this.bits[at >>> 3]! & (1 << (at & 7))) === 0) return false;
    }
    return true;
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.bits.length;
  }
}
