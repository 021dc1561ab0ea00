import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Kafka, logLevel, Partitioners } from 'kafkajs';

/**
 * KAFKA_BROKERS=127.0.0.1:19092 node dist/bench/kafka-raw.js [--messages 200000 --partitions 8 --value-bytes 300 --batch 1000]
 *
 * kafkajs alone on the broker, no job bus around it: the ceiling the fan-out benchmark compares
 * its Kafka runs with. Produces N messages to a fresh topic (idempotent producer, acks from all
 * replicas, sendBatch of `batch` messages spread over the partitions), then consumes them with a
 * fresh group through eachBatch, counting only. The topic is deleted afterwards.
 */
export type KafkaRawResult = Readonly<{
  messages: number;
  partitions: number;
  valueBytes: number;
  producedPerSecond: number;
  consumedPerSecond: number;
  /** From the consumer's run() to its group join (not in consumedPerSecond). */
  joinMs: number;
}>;

export const measureKafkaRaw = async (options: Readonly<{ brokers: readonly string[]; messages: number; partitions: number; valueBytes: number; batch?: number }>): Promise<KafkaRawResult> => {
  const { messages, partitions, valueBytes } = options;
  const batch = options.batch ?? 1000;
  const kafka = new Kafka({ clientId: 'bench-kafka-raw', brokers: [...options.brokers], logLevel: logLevel.ERROR });
  const topic = `bench-raw-${randomUUID().slice(0, 8)}`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });

    // A JSON document of about valueBytes, as a job would be.
    const value = Buffer.from(JSON.stringify({ pad: 'x'.repeat(Math.max(0, valueBytes - 10)) }));
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    let started = performance.now();
    for (let from = 0; from < messages; from += batch) {
      const count = Math.min(batch, messages - from);
      await producer.sendBatch({
        acks: -1,
        topicMessages: [{ topic, messages: Array.from({ length: count }, (_, k) => ({ partition: (from + k) % partitions, key: `k${from + k}`, value })) }],
      });
    }
    const producedPerSecond = messages / ((performance.now() - started) / 1000);
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: `${topic}.g`, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 500, allowAutoTopicCreation: false });
    let consumed = 0;
    let first = 0;
    let last = 0;
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      started = performance.now();
      let joined = 0;
      consumer.on(consumer.events.GROUP_JOIN, () => (joined ||= performance.now()));
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch: b }) => {
          if (first === 0) first = performance.now();
          consumed += b.messages.length;
          if (consumed >= messages) {
            last = performance.now();
            done();
          }
        },
      });
      const timeout = setTimeout(() => done(), Math.max(60_000, messages / 5));
      await all;
      clearTimeout(timeout);
      if (consumed < messages) throw new Error(`consumed ${consumed} of ${messages} messages`);
      const joinMs = (joined || first) - started;
      // From the first batch: the group join is a one-off, not part of the rate.
      const consumedPerSecond = messages / ((last - first) / 1000 || Number.EPSILON);
      return { messages, partitions, valueBytes: value.length, producedPerSecond, consumedPerSecond, joinMs };
    } finally {
      await consumer.disconnect();
    }
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
};

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const num = (name: string, fallback: number) => Number(arg(name, String(fallback)));

const main = async (): Promise<void> => {
  const brokers = arg('brokers', process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean);
  if (brokers.length === 0) throw new Error('set KAFKA_BROKERS or pass --brokers (npm run servers:up prints it)');
  const messages = num('messages', 200_000);
  const partitions = num('partitions', 8);
  const valueBytes = num('value-bytes', 300);
  const batch = num('batch', 1000);
  console.log(`bench:kafka-raw  ${messages.toLocaleString('en')} messages of ${valueBytes} bytes, ${partitions} partitions, sendBatch of ${batch}, ${os.cpus().length} cores, node ${process.version}\n`);
  const r = await measureKafkaRaw({ brokers, messages, partitions, valueBytes, batch });
  console.log(`produced  ${r.producedPerSecond.toFixed(0).padStart(8)}/s  (idempotent producer, acks all, one sendBatch in flight)`);
  console.log(`consumed  ${r.consumedPerSecond.toFixed(0).padStart(8)}/s  (eachBatch, counting only; group join ${r.joinMs.toFixed(0)} ms not included)`);
};

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
