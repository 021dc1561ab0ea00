import { fnv1a } from '#platform/sketches/hash';

/**
 * Users are spread over a fixed number of shards by a hash of their id; the users read model
 * indexes (tenant, group, shard), and bus partition p owns the shards s with s % partitions = p.
 * So the owner of a partition plans its slice of a send by paging only its own shards' users, and
 * the partition count may be any divisor of SHARDS without touching the read model.
 */
export const SHARDS = 256;

export const shardOf = (userId: string): number => fnv1a(userId) % SHARDS;

/** The bus partition of a user: all of a user's deliveries go to one worker, in order. */
export const partitionOf = (userId: string, partitions: number): number => shardOf(userId) % partitions;

/** The shards a partition owns, in order. */
export const shardsOf = (partition: number, partitions: number): number[] => {
  const out: number[] = [];
  for (let s = partition; s < SHARDS; s += partitions) out.push(s);
  return out;
};

export const validPartitionCounts = (): number[] => Array.from({ length: 9 }, (_, i) => 2 ** i);
