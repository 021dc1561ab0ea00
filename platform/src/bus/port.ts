/**
 * The job bus: topics split into partitions, each an ordered log of messages; a consumer group
 * shares the partitions among its members, and a member commits, per partition, the offset up
 * to which it is done. After a crash, messages after the last commit are delivered again.
 */
export type OutgoingMessage = Readonly<{ partition: number; key: string; value: unknown }>;

export type BusMessage = Readonly<{ topic: string; partition: number; offset: number; key: string; value: unknown }>;

export type ConsumeOptions = Readonly<{
  topic: string;
  group: string;
  /**
   * Called with messages in offset order per partition. Its promise is back-pressure: no more
   * messages come until it resolves; it need not wait for the messages to be processed.
   */
  handler: (messages: readonly BusMessage[]) => Promise<void>;
  /** Partitions given to this member (the first assignment, or ones it gained in a rebalance). */
  onAssigned?: (partitions: readonly number[]) => void;
  /** Partitions taken from this member (a rebalance, or stop). */
  onRevoked?: (partitions: readonly number[]) => Promise<void> | void;
  onError?: (e: unknown) => void;
  maxBatch?: number;
}>;

export interface Consumer {
  /** Everything up to and including `offset` on `partition` is done: not delivered again. */
  commit(partition: number, offset: number): Promise<void>;
  stop(): Promise<void>;
}

export interface JobBus {
  /** Creates the topic if missing; a no-op when it exists with that many partitions. */
  ensureTopic(topic: string, partitions: number): Promise<void>;
  partitions(topic: string): Promise<number>;
  /** Appends durably (all or nothing for the embedded bus; per partition for Kafka). */
  publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void>;
  consume(options: ConsumeOptions): Promise<Consumer>;
  close(): Promise<void>;
}
