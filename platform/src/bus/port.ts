/**
 * The job bus: topics split into partitions, each an ordered log of messages; a consumer group
 * shares the partitions among its members, and a member commits, per partition, the offset up
 * to which it is done. After a crash, messages after the last commit are delivered again.
 */
/** `headers`: small string metadata beside the value (W3C trace context: Kafka headers on Kafka). */
export type OutgoingMessage = Readonly<{ partition: number; key: string; value: unknown; headers?: Readonly<Record<string, string>> }>;

export type BusMessage = Readonly<{ topic: string; partition: number; offset: number; key: string; value: unknown; headers?: Readonly<Record<string, string>> }>;

export type ConsumeOptions = Readonly<{
  topic: string;
  group: string;
  /**
   * Called with messages in offset order per partition. Its promise is back-pressure: no more
   * messages come until it resolves; it need not wait for the messages to be processed.
   */
  handler: (messages: readonly BusMessage[]) => Promise<void>;
  /**
   * A rebalance began: until the next onAssigned, any partition may be about to move to another
   * member (which reads it from its last commit). Comes before this member rejoins the group.
   */
  onRebalancing?: () => void;
  /**
   * After every assignment, the partitions it gave this member that it did not own before
   * (possibly none); the end of a rebalance.
   */
  onAssigned?: (partitions: readonly number[]) => void;
  /**
   * Partitions taken from this member (a rebalance, or stop), before onAssigned. The group waits
   * for its promise: work on them that is in flight can finish and be recorded first.
   */
  onRevoked?: (partitions: readonly number[]) => Promise<void> | void;
  onError?: (e: unknown) => void;
  maxBatch?: number;
}>;

export type PartitionLag = Readonly<{ partition: number; lag: number }>;

export interface Consumer {
  /** Everything up to and including `offset` on `partition` is done: not delivered again. */
  commit(partition: number, offset: number): Promise<void>;
  stop(): Promise<void>;
}

export interface JobBus {
  /**
   * Whether members in other processes share a consumer group: a partition gained may then have
   * had a live owner moments ago, still finishing what it had in flight.
   */
  readonly sharedGroups: boolean;
  /** Creates the topic if missing; a no-op when it exists with that many partitions. */
  ensureTopic(topic: string, partitions: number): Promise<void>;
  partitions(topic: string): Promise<number>;
  /** Appends durably (all or nothing for the embedded bus; per partition for Kafka). */
  publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void>;
  consume(options: ConsumeOptions): Promise<Consumer>;
  /** Per partition, the messages published that the group has not committed (metrics, alerts). */
  lag(topic: string, group: string): Promise<readonly PartitionLag[]>;
  close(): Promise<void>;
}
