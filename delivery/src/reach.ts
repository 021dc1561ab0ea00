import { setImmediate as nextTurn } from 'node:timers/promises';
import type { DeliverySucceeded } from '#schema/events';
import { streams } from '#schema/streams';
import type { EventStore } from '#platform/event-store/port';
import { hash2 } from '#platform/sketches/hash';
import { StringSet } from '#platform/sketches/string-set';

export type ReachLimits = Readonly<{
  /** The most users held in memory at once: a partition with more is counted in that many passes. */
  usersPerPass: number;
  /** Events read per call to the store. */
  pageSize: number;
  /** How long the count may hold the thread before other work gets a turn (0: a turn after every page). */
  sliceMs: number;
}>;

/**
 * 250,000 user ids (about 20 MB) per pass; pages of 20 batches of successes (a batch holds about
 * 500 at full speed, 57 KB of JSON): pages of 200 made each 11 MB, alive across the scavenges that
 * came meanwhile, and the count of a million peaked at 283 MB against 158 MB, and took longer.
 * Slices of 50 ms, several pages each: a page takes about 10 ms, and a turn after every page,
 * behind the timeline catching up, left the count of a million waiting 2.9 s of its 3.9 s.
 */
export const REACH_LIMITS: ReachLimits = { usersPerPass: 250_000, pageSize: 20, sliceMs: 50 };

const SUCCEEDED: readonly DeliverySucceeded['type'][] = ['DeliverySucceeded'];

/**
 * Which pass counts a user. Not the hash that shards users (`shardOf`: FNV-1a, whose low bits say
 * the partition, so every user of a partition would fall in the same pass), but the second,
 * independently mixed one.
 */
export const passOf = (userId: string, passes: number): number => hash2(userId)[1] % passes;

/**
 * Users with at least one successful delivery of a send, counted exactly from its delivery streams.
 * A user's deliveries are all in the partition of its shard, so distinct users are counted per
 * partition and summed. Memory stays bounded whatever the audience: each stream is read page by
 * page, and a partition with more deliveries than `usersPerPass` is read again once per pass, each
 * pass counting the users whose hash falls in it. Nothing waits on a read model, and the thread
 * serves its other work between slices of pages.
 */
export const countReachedUsers = async (
  eventStore: EventStore,
  send: Readonly<{ tenantId: string; notificationId: string; partitions: number; deliveries: number }>,
  limits: ReachLimits = REACH_LIMITS,
): Promise<number> => {
  const perPartition = Math.ceil(send.deliveries / Math.max(1, send.partitions));
  const passes = Math.max(1, Math.ceil(perPartition / limits.usersPerPass));
  let reached = 0;
  let slice = performance.now();
  // One table for every pass: sets that grow each leave their outgrown tables to a full collection.
  const users = new StringSet(Math.min(limits.usersPerPass, perPartition));
  for (let partition = 0; partition < send.partitions; partition++) {
    const stream = streams.deliveries(send.tenantId, send.notificationId, partition);
    for (let pass = 0; pass < passes; pass++) {
      users.clear();
      for (let from = 0; ; ) {
        // Successes only: the plans, dispatches and attempts beside them are most of the stream.
        const page = await eventStore.readStream(stream, { fromRevision: from, maxCount: limits.pageSize, types: SUCCEEDED });
        for (const e of page) {
          for (const d of (e.data as DeliverySucceeded['data']).deliveries) {
            if (passes === 1 || passOf(d.userId, passes) === pass) users.add(d.userId);
          }
        }
        if (page.length < limits.pageSize) break;
        from = page.at(-1)!.revision + 1;
        // The embedded store reads synchronously: without turns of the event loop between pages,
        // a five-million count held the pipeline thread, and every other send, for 48 s.
        if (performance.now() - slice >= limits.sliceMs) {
          await nextTurn();
          slice = performance.now();
        }
      }
      reached += users.size;
    }
  }
  return reached;
};
