import { Kafka, logLevel, Partitioners, type Admin, type Consumer as KafkaConsumer, type KafkaMessage, type LogEntry, type Message, type Producer } from 'kafkajs';
import type { Logger } from '../logger';
import type { BusMessage, ConsumeOptions, Consumer, JobBus, OutgoingMessage } from './port';

export type KafkaBusOptions = Readonly<{
  brokers: readonly string[];
  clientId: string;
  logger?: Logger;
  /** How long a silent member keeps its partitions: a killed worker's are reassigned after this. */
  sessionTimeoutMs?: number;
  /**
   * How often a member reclaims, on the partitions it owns, the records every consumer group
   * that committed on the topic is past (deleteRecords); 0: never. 10 s by default.
   */
  reclaimIntervalMs?: number;
}>;

/** Where messages nobody can process go, beside their topic (created by `ensureTopic`). */
export const deadLetterTopic = (topic: string): string => `${topic}.dlq`;

/**
 * Parks messages that can never be processed on `<topic>.dlq`, same partition where it exists,
 * with the reason; the caller then commits past them. Works on any bus (namespaced too).
 */
/** Kafka headers as strings (trace context); absent when the message has none. */
const headersOf = (m: KafkaMessage): { headers?: Record<string, string> } => {
  if (!m.headers) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? String(v[0]) : String(v);
  return Object.keys(out).length > 0 ? { headers: out } : {};
};

export const deadLetter = async (bus: JobBus, topic: string, messages: readonly BusMessage[], reason: string): Promise<void> => {
  if (messages.length === 0) return;
  const dlq = deadLetterTopic(topic);
  const partitions = await bus.partitions(topic);
  await bus.ensureTopic(dlq, partitions);
  const n = await bus.partitions(dlq);
  await bus.publish(
    dlq,
    messages.map((m) => ({ partition: m.partition % n, key: m.key, value: { reason, topic, partition: m.partition, offset: m.offset, value: m.value } })),
  );
};

// The broker refuses record batches over message.max.bytes (1 MiB by default); kafkajs does not split them.
const MAX_PARTITION_BYTES = 512 * 1024;
const MAX_REQUEST_BYTES = 8 * 1024 * 1024;
const DEFAULT_MAX_BATCH = 500;
const DEFAULT_RECLAIM_MS = 10_000;
// The broker deletes a segment wholly below the log start, never the one being written: topics
// roll a segment at least hourly so that what was reclaimed leaves the disk too.
const SEGMENT_MS = 3_600_000;

type Pending = { topic: string; messages: Message[]; sizes: number[]; sends: number; failed: boolean; resolve: () => void; reject: (e: unknown) => void };

/** Routes kafkajs' own logging to ours: warnings and errors only, minus the expected ones. */
const logCreator = (logger: Logger | undefined) => () => (entry: LogEntry) => {
  if (!logger) return;
  const { message, timestamp: _t, logger: _l, ...extra } = entry.log;
  const error = String((extra as { error?: unknown }).error ?? '');
  // A rebalance is routine: members come and go. The caller sees any error that matters.
  if (/rebalanc/i.test(message) || /rebalanc/i.test(error)) return;
  const fields = { kafka: entry.namespace, ...extra };
  // Every failed request is logged by kafkajs as an error, even those its caller handles
  // (a topic that already exists, a partition count already raised): they are detail.
  if (message.startsWith('[Connection] Response')) logger.debug(fields, `kafka: ${message}`);
  else if (entry.level === logLevel.ERROR) logger.error(fields, `kafka: ${message}`);
  else logger.warn(fields, `kafka: ${message}`);
};

const isType = (e: unknown, type: string): boolean =>
  (e as { type?: string }).type === type || ((e as { errors?: unknown[] }).errors ?? []).some((x) => (x as { type?: string }).type === type);

/**
 * The job bus on Kafka: one topic per job kind, consumer groups share its partitions. Offsets
 * are committed only when the caller says its work is done (never automatically), so a member
 * that dies leaves its uncommitted messages to whoever gets its partitions.
 */
export const openKafkaBus = async (options: KafkaBusOptions): Promise<JobBus> => {
  const { logger } = options;
  const sessionTimeout = options.sessionTimeoutMs ?? 6000;
  const heartbeatInterval = Math.max(100, Math.min(1000, Math.floor(sessionTimeout / 3)));
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    logLevel: logger ? logLevel.WARN : logLevel.NOTHING,
    logCreator: logCreator(logger),
    connectionTimeout: 3000,
  });
  const admin: Admin = kafka.admin();
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await admin.connect();
  try {
    await producer.connect();
  } catch (e) {
    await admin.disconnect();
    throw e;
  }

  const partitionCounts = new Map<string, number>();
  const consumers = new Set<Consumer>();
  let closed = false;

  const partitionsOf = async (topic: string): Promise<number> => {
    let metadata;
    try {
      metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    } catch (e) {
      if (isType(e, 'UNKNOWN_TOPIC_OR_PARTITION')) throw new Error(`topic ${topic} does not exist`);
      throw e;
    }
    const count = metadata.topics.find((t) => t.name === topic)?.partitions.length ?? 0;
    if (count === 0) throw new Error(`topic ${topic} does not exist`);
    partitionCounts.set(topic, count);
    return count;
  };

  /**
   * Several processes start at once and all ensure the same topics: while one creates a topic,
   * the others (and the creator, waiting for its leaders) can see it half-made. Such answers are
   * retried for a while; anything else fails at once.
   */
  const ensureOne = async (topic: string, partitions: number): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await ensureOnce(topic, partitions);
      } catch (e) {
        const transient =
          ['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION', 'NOT_CONTROLLER'].some((t) => isType(e, t)) ||
          /does not exist|does not host this topic-partition/.test(String((e as Error).message));
        if (!transient || attempt >= 60) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };

  const ensureOnce = async (topic: string, partitions: number): Promise<void> => {
    try {
      // Two processes starting at once both try: the loser sees TOPIC_ALREADY_EXISTS (false here).
      if (await admin.createTopics({ topics: [{ topic, numPartitions: partitions, configEntries: [{ name: 'segment.ms', value: String(SEGMENT_MS) }] }], waitForLeaders: true })) {
        partitionCounts.set(topic, partitions);
        return;
      }
    } catch (e) {
      if (!isType(e, 'TOPIC_ALREADY_EXISTS')) throw e;
    }
    // The winner's topic may not be in the metadata yet: ensureOne retries that answer.
    const actual = await partitionsOf(topic);
    if (actual >= partitions) return;
    try {
      await admin.createPartitions({ topicPartitions: [{ topic, count: partitions }] });
    } catch (e) {
      // Someone else raised it meanwhile.
      if (!isType(e, 'INVALID_PARTITIONS') || (await partitionsOf(topic)) < partitions) throw e;
    }
    partitionCounts.set(topic, partitions);
    logger?.info({ topic, from: actual, to: partitions }, 'kafka: partitions added');
  };

  // ---- producing ---------------------------------------------------------------------------
  // The idempotent producer numbers its batches per partition; concurrent sends could race on
  // those numbers, so one send is in flight at a time and publishes arriving meanwhile ride
  // together in the next one.

  const queue: Pending[] = [];
  let sending: Promise<void> | null = null;

  /**
   * kafkajs leaves out, without an error, messages for partitions its metadata does not list
   * yet (added since it last looked): they are sent again after a reconnect, which reloads it.
   */
  const sendAll = async (byTopic: ReadonlyMap<string, Message[]>): Promise<void> => {
    let left = byTopic;
    for (let attempt = 0; ; attempt++) {
      const written = await producer.sendBatch({ acks: -1, topicMessages: [...left].map(([topic, messages]) => ({ topic, messages })) });
      const landed = new Set(written.map((r) => `${r.topicName}\u0000${r.partition}`));
      const missing = new Map<string, Message[]>();
      for (const [topic, messages] of left) {
        const rest = messages.filter((m) => !landed.has(`${topic}\u0000${m.partition}`));
        if (rest.length > 0) missing.set(topic, rest);
      }
      if (missing.size === 0) return;
      if (attempt >= 2) throw new Error(`kafka: no leader known for partition(s) of ${[...missing.keys()].join(', ')}`);
      await producer.disconnect();
      await producer.connect();
      left = missing;
    }
  };

  const drain = async (): Promise<void> => {
    while (queue.length > 0) {
      const taken = queue.splice(0, queue.length);
      type Send = { byTopic: Map<string, Message[]>; bytes: Map<string, number>; total: number; owners: Set<Pending> };
      const sends: Send[] = [];
      let current: Send | null = null;
      for (const p of taken) {
        for (let i = 0; i < p.messages.length; i++) {
          const m = p.messages[i]!;
          const size = p.sizes[i]!;
          const slot = `${p.topic}\u0000${m.partition}`;
          if (!current || current.total + size > MAX_REQUEST_BYTES || (current.bytes.get(slot) ?? 0) + size > MAX_PARTITION_BYTES) {
            current = { byTopic: new Map(), bytes: new Map(), total: 0, owners: new Set() };
            sends.push(current);
          }
          const list = current.byTopic.get(p.topic) ?? [];
          list.push(m);
          current.byTopic.set(p.topic, list);
          current.bytes.set(slot, (current.bytes.get(slot) ?? 0) + size);
          current.total += size;
          if (!current.owners.has(p)) {
            current.owners.add(p);
            p.sends++;
          }
        }
      }
      let failure: unknown = null;
      for (const s of sends) {
        // A failed send stops the rest of this round: a later one must not land past a gap.
        if (failure === null) {
          try {
            await sendAll(s.byTopic);
          } catch (e) {
            failure = e;
          }
        }
        for (const p of s.owners) {
          if (failure !== null) {
            if (!p.failed) {
              p.failed = true;
              p.reject(failure);
            }
          } else if (--p.sends === 0 && !p.failed) p.resolve();
        }
      }
    }
  };

  const checkPartitions = async (topic: string, messages: readonly OutgoingMessage[]): Promise<void> => {
    let highest = -1;
    for (const m of messages) {
      if (!Number.isInteger(m.partition) || m.partition < 0) throw new Error(`partition ${m.partition} is not a partition number`);
      highest = Math.max(highest, m.partition);
    }
    // kafkajs drops a message for a partition it does not know without an error: refuse it here.
    let count = partitionCounts.get(topic);
    if (count === undefined || highest >= count) count = await partitionsOf(topic);
    if (highest >= count) throw new Error(`partition ${highest} is out of range for ${topic} (${count} partitions)`);
  };

  const publish = async (topic: string, messages: readonly OutgoingMessage[]): Promise<void> => {
    if (closed) throw new Error('the kafka bus is closed');
    if (messages.length === 0) return;
    await checkPartitions(topic, messages);
    const encoded: Message[] = [];
    const sizes: number[] = [];
    for (const m of messages) {
      const value = Buffer.from(JSON.stringify(m.value ?? null), 'utf8');
      encoded.push({ partition: m.partition, key: m.key, value, ...(m.headers ? { headers: { ...m.headers } } : {}) });
      sizes.push(value.length + Buffer.byteLength(m.key) + 64);
    }
    await new Promise<void>((resolve, reject) => {
      queue.push({ topic, messages: encoded, sizes, sends: 0, failed: false, resolve, reject });
      if (!sending) {
        sending = drain().finally(() => {
          sending = null;
        });
      }
    });
  };

  // ---- consuming ---------------------------------------------------------------------------

  const consume = async (o: ConsumeOptions): Promise<Consumer> => {
    if (closed) throw new Error('the kafka bus is closed');
    const maxBatch = Math.max(1, o.maxBatch ?? DEFAULT_MAX_BATCH);
    const kc: KafkaConsumer = kafka.consumer({
      groupId: o.group,
      sessionTimeout,
      heartbeatInterval,
      rebalanceTimeout: Math.max(30_000, sessionTimeout),
      // Short fetch waits: stop() waits for the fetch in flight, and heartbeats ride on fetches.
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
    });
    let stopped = false;
    let stopping: Promise<void> | null = null;
    let owned = new Set<number>();
    // Revocations and assignments run in order, and before any batch of the new generation.
    let transition: Promise<void> = Promise.resolve();
    const failed = (e: unknown) => {
      try {
        o.onError?.(e);
      } catch {
        // the error handler's own failure has nowhere to go
      }
    };

    // kafkajs has no revocation hook: what a member lost shows in its next assignment.
    kc.on(kc.events.GROUP_JOIN, (event) => {
      const now = [...(event.payload.memberAssignment[o.topic] ?? [])].sort((a, b) => a - b);
      transition = transition.then(async () => {
        const lost = [...owned].filter((p) => !now.includes(p));
        // Only partitions new to this member: state kept for the others is still right (the
        // handler's in-flight work included), and reloading it would resend what is in flight.
        const gained = now.filter((p) => !owned.has(p));
        owned = new Set(now);
        // What earlier owners committed here may not have been reclaimed.
        if (gained.length > 0) reclaimDue = true;
        try {
          if (lost.length > 0) await o.onRevoked?.(lost);
          o.onAssigned?.(gained);
        } catch (e) {
          failed(e);
        }
        // Commits refused during the rebalance go again, for the partitions still ours.
        void flushCommits().catch((e: unknown) => logger?.warn({ err: e, topic: o.topic, group: o.group }, 'kafka: offset commit failed'));
      });
    });
    // Emitted before kafkajs rejoins: no member is given this one's partitions before it.
    kc.on(kc.events.REBALANCING, () => {
      try {
        o.onRebalancing?.();
      } catch (e) {
        failed(e);
      }
    });
    kc.on(kc.events.CRASH, (event) => {
      if (stopped) return;
      if (event.payload.restart) logger?.warn({ err: event.payload.error, group: o.group, topic: o.topic }, 'kafka consumer crashed; restarting');
      else failed(event.payload.error);
    });

    // ---- commits: coalesced, one request in flight, never backwards for this member
    const wanted = new Map<number, number>();
    const committed = new Map<number, number>();
    let round: Promise<void> | null = null;
    let previous: Promise<void> = Promise.resolve();
    const flushCommits = (): Promise<void> => {
      if (round) return round;
      if (wanted.size === 0) return previous;
      const next = previous.then(async () => {
        round = null;
        // Partitions taken by another member are theirs to commit now.
        const offsets = [...wanted].filter(([p]) => owned.has(p));
        wanted.clear();
        if (offsets.length === 0) return;
        try {
          await kc.commitOffsets(offsets.map(([partition, offset]) => ({ topic: o.topic, partition, offset: String(offset) })));
          for (const [p, offset] of offsets) committed.set(p, Math.max(committed.get(p) ?? 0, offset));
          reclaimDue = true;
        } catch (e) {
          // Kept for the next round (after a rebalance, say) unless a later offset came meanwhile.
          for (const [p, offset] of offsets) if ((wanted.get(p) ?? -1) < offset) wanted.set(p, offset);
          throw e;
        }
      });
      round = next;
      previous = next.catch(() => undefined);
      return next;
    };

    // ---- reclaim: records below every committing group's offset are deleted, as the embedded
    // bus deletes the rows; only where local commits moved or partitions were gained since the
    // last round, and only on this member's partitions (each partition has one reclaimer).
    let reclaimDue = false;
    let reclaiming: Promise<void> | null = null;
    const reclaimMs = options.reclaimIntervalMs ?? DEFAULT_RECLAIM_MS;
    const reclaimTimer = reclaimMs > 0
      ? setInterval(() => {
        if (!reclaimDue || reclaiming || stopped) return;
        reclaimDue = false;
        reclaiming = reclaimOwned(o.topic, o.group, [...owned])
          .catch((e: unknown) => {
            reclaimDue = true;
            logger?.warn({ err: e, topic: o.topic, group: o.group }, 'kafka: reclaiming committed records failed; trying again');
          })
          .finally(() => {
            reclaiming = null;
          });
      }, reclaimMs)
      : null;
    reclaimTimer?.unref();

    const decode = (m: KafkaMessage): { ok: true; value: unknown } | { ok: false } => {
      if (m.value === null) return { ok: true, value: null };
      try {
        return { ok: true, value: JSON.parse(m.value.toString('utf8')) };
      } catch {
        return { ok: false };
      }
    };

    await kc.connect();
    try {
      await kc.subscribe({ topic: o.topic, fromBeginning: true });
      await kc.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          await transition;
          const { partition } = batch;
          for (let i = 0; i < batch.messages.length; i += maxBatch) {
            if (stopped || !isRunning() || isStale()) return;
            const chunk = batch.messages.slice(i, i + maxBatch);
            const messages: BusMessage[] = [];
            const unreadable: BusMessage[] = [];
            for (const m of chunk) {
              const decoded = decode(m);
              const base = { topic: o.topic, partition, offset: Number(m.offset), key: m.key?.toString('utf8') ?? '', ...headersOf(m) };
              if (decoded.ok) messages.push({ ...base, value: decoded.value });
              else unreadable.push({ ...base, value: m.value!.toString('base64') });
            }
            if (unreadable.length > 0) {
              await deadLetterRaw(o.topic, unreadable);
              logger?.warn({ topic: o.topic, partition, offsets: unreadable.map((m) => m.offset) }, 'kafka: messages that are not JSON went to the dead-letter topic');
            }
            if (messages.length > 0) {
              // The handler may hold back (back-pressure) for longer than the session: keep the membership alive.
              const beat = setInterval(() => void heartbeat().catch(() => undefined), heartbeatInterval);
              try {
                await o.handler(messages);
              } catch (e) {
                // Like the embedded bus: a failing handler stops its consumer; nothing more is resolved.
                stopped = true;
                failed(e);
                void kc.stop().catch(() => undefined);
                return;
              } finally {
                clearInterval(beat);
              }
            }
            resolveOffset(chunk[chunk.length - 1]!.offset);
            // A rebalance that began makes this throw: kafkajs rejoins, the rest comes again.
            await heartbeat();
          }
        },
      });
      // The first assignment is known (and reported) before the caller goes on.
      await transition;
    } catch (e) {
      await kc.disconnect().catch(() => undefined);
      throw e;
    }

    const consumer: Consumer = {
      commit: async (partition, offset) => {
        // Kafka's committed offset is the next one to read.
        const next = offset + 1;
        if ((committed.get(partition) ?? 0) >= next || (wanted.get(partition) ?? -1) >= next) return round ?? previous;
        wanted.set(partition, next);
        return flushCommits();
      },
      stop: () => (stopping ??= (async () => {
        stopped = true;
        if (reclaimTimer) clearInterval(reclaimTimer);
        await reclaiming;
        // Still a member here: what the caller commits while giving its partitions back counts.
        await transition;
        const mine = [...owned].sort((a, b) => a - b);
        try {
          if (mine.length > 0) await o.onRevoked?.(mine);
        } catch (e) {
          failed(e);
        }
        await flushCommits().catch((e: unknown) => logger?.warn({ err: e, topic: o.topic, group: o.group }, 'kafka: final offset commit failed'));
        owned = new Set();
        try {
          await kc.disconnect();
        } finally {
          consumers.delete(consumer);
        }
      })()),
    };
    consumers.add(consumer);
    return consumer;
  };

  /**
   * Deletes, on `partitions` of `topic`, the records below the lowest offset committed by any
   * consumer group that has committed there (a group that never did is not waited for, as on the
   * embedded bus): their log start moves up, and the broker frees the segments below it.
   */
  const reclaimOwned = async (topic: string, group: string, partitions: readonly number[]): Promise<void> => {
    if (partitions.length === 0) return;
    const lowest = new Map<number, number>();
    // Every group the broker knows (one that only commits, without members, counts too), and ours.
    const groups = new Set([group, ...(await admin.listGroups()).groups.map((g) => g.groupId)]);
    for (const groupId of groups) {
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      for (const p of offsets?.partitions ?? []) {
        const next = Number(p.offset);
        if (next >= 0 && partitions.includes(p.partition)) lowest.set(p.partition, Math.min(lowest.get(p.partition) ?? next, next));
      }
    }
    const starts = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.low)]));
    const deletions = [...lowest].filter(([p, next]) => next > (starts.get(p) ?? next)).map(([partition, next]) => ({ partition, offset: String(next) }));
    if (deletions.length === 0) return;
    await admin.deleteTopicRecords({ topic, partitions: deletions });
    logger?.debug({ topic, partitions: Object.fromEntries(deletions.map((d) => [d.partition, d.offset])) }, 'kafka: committed records reclaimed');
  };

  /** Bytes that are not JSON: kept raw (base64) on the dead-letter topic rather than lost. */
  const deadLetterRaw = async (topic: string, messages: readonly BusMessage[]): Promise<void> => {
    const dlq = deadLetterTopic(topic);
    const n = partitionCounts.get(dlq) ?? (await partitionsOf(dlq).catch(() => 0));
    if (n === 0) {
      await ensureOne(dlq, 1);
      return deadLetterRaw(topic, messages);
    }
    await publish(
      dlq,
      messages.map((m) => ({ partition: m.partition % n, key: m.key, value: { reason: 'not JSON', topic, partition: m.partition, offset: m.offset, base64: m.value } })),
    );
  };

  return {
    sharedGroups: true,
    ensureTopic: async (topic, partitions) => {
      if (!Number.isInteger(partitions) || partitions < 1) throw new Error(`a topic needs at least one partition, not ${partitions}`);
      await ensureOne(topic, partitions);
      if (!topic.endsWith('.dlq')) await ensureOne(deadLetterTopic(topic), partitions);
    },
    partitions: partitionsOf,
    lag: async (topic, group) => {
      const [ends, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
      const done = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      // Kafka's committed offset is the next to read; -1: the group never committed (it reads from the low mark).
      return ends.map((e) => {
        const next = done.get(e.partition) ?? -1;
        return { partition: e.partition, lag: Math.max(0, Number(e.high) - (next >= 0 ? next : Number(e.low))) };
      }).sort((a, b) => a.partition - b.partition);
    },
    publish,
    consume,
    close: async () => {
      if (closed) return;
      closed = true;
      const errors: unknown[] = [];
      for (const r of await Promise.allSettled([...consumers].map((c) => c.stop()))) if (r.status === 'rejected') errors.push(r.reason);
      await sending?.catch(() => undefined);
      for (const r of await Promise.allSettled([producer.disconnect(), admin.disconnect()])) if (r.status === 'rejected') errors.push(r.reason);
      if (errors.length > 0) throw errors[0];
    },
  };
};
