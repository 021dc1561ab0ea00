import { hash2 } from './hash';

/**
 * HyperLogLog with 2^p registers (p = 12: 4,096 registers, about 1.6% standard error), storable
 * as base64 in a read-model document and mergeable. 32-bit hashes with the usual small- and
 * large-range corrections.
 */
export class HyperLogLog {
  readonly registers: Uint8Array;

  constructor(
    readonly p = 12,
    registers?: Uint8Array,
  ) {
    this.registers = registers ?? new Uint8Array(1 << p);
  }

  static fromBase64(s: string, p = 12): HyperLogLog {
    return new HyperLogLog(p, new Uint8Array(Buffer.from(s, 'base64')));
  }

  toBase64(): string {
    return Buffer.from(this.registers).toString('base64');
  }

  add(item: string): void {
    const [h] = hash2(item);
    const index = h >>> (32 - this.p);
    const rest = (h << this.p) >>> 0;
    const rank = rest === 0 ? 32 - this.p + 1 : Math.clz32(rest) + 1;
    if (rank > this.registers[index]!) this.registers[index] = rank;
  }

  count(): number {
    const m = this.registers.length;
    let sum = 0;
    let zeros = 0;
    for (const r of this.registers) {
      sum += 2 ** -r;
      if (r === 0) zeros++;
    }
    const alpha = 0.7213 / (1 + 1.079 / m);
    let estimate = (alpha * m * m) / sum;
    if (estimate <= 2.5 * m && zeros > 0) estimate = m * Math.log(m / zeros);
    else if (estimate > 2 ** 32 / 30) estimate = -(2 ** 32) * Math.log(1 - estimate / 2 ** 32);
    return Math.round(estimate);
  }
}
