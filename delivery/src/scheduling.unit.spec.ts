import { describe, expect, it } from 'vitest';
import { MinHeap } from './heap';
import { TokenBucket } from './token-bucket';
import { deliveryIdOf, partitionOf } from './ids';

describe('MinHeap', () => {
  it('pops in order of the comparator (earliest deadline first), stable by sequence', () => {
    const heap = new MinHeap<{ deadline: number; seq: number }>((a, b) => a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq));
    const items = Array.from({ length: 1000 }, (_, i) => ({ deadline: (i * 7919) % 97, seq: i }));
    for (const i of items) heap.push(i);
    const out: { deadline: number; seq: number }[] = [];
    while (heap.size) out.push(heap.pop()!);
    const sorted = [...items].sort((a, b) => a.deadline - b.deadline || a.seq - b.seq);
    expect(out).toEqual(sorted);
    expect(heap.pop()).toBeUndefined();
  });
});

describe('TokenBucket', () => {
  it('allows the burst, then the rate', () => {
    let t = 0;
    const bucket = new TokenBucket(100, 10, () => t);
    expect(bucket.take(50)).toBe(10);
    expect(bucket.take(1)).toBe(0);
    expect(bucket.waitMs()).toBe(10);
    t += 50;
    expect(bucket.take(50)).toBe(5);
    t += 1000;
    expect(bucket.take(50)).toBe(10);
  });
});

describe('delivery ids and partitions', () => {
  it('are deterministic, distinct and short enough for collapse ids', () => {
    const a = deliveryIdOf('t', 'n1', 'u1', 'd1');
    expect(deliveryIdOf('t', 'n1', 'u1', 'd1')).toBe(a);
    expect(deliveryIdOf('t', 'n1', 'u1', 'd2')).not.toBe(a);
    expect(deliveryIdOf('t', 'n2', 'u1', 'd1')).not.toBe(a);
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(64);
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[partitionOf(`user-${i}`, 8)]++;
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(partitionOf('u1', 8)).toBe(partitionOf('u1', 8));
  });
});
