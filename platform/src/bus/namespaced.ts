import type { BusMessage, Consumer, ConsumeOptions, JobBus, OutgoingMessage } from './port';

/**
 * Prefixes every topic and consumer group with a namespace, so several deployments (or test
 * runs) can share one broker without reading each other's jobs.
 */
export const namespacedBus = (bus: JobBus, namespace: string): JobBus => {
  const full = (name: string) => `${namespace}.${name}`;
  const strip = (m: BusMessage): BusMessage => ({ ...m, topic: m.topic.slice(namespace.length + 1) });
  return {
    sharedGroups: bus.sharedGroups,
    ensureTopic: (topic: string, partitions: number) => bus.ensureTopic(full(topic), partitions),
    partitions: (topic: string) => bus.partitions(full(topic)),
    publish: (topic: string, messages: readonly OutgoingMessage[]) => bus.publish(full(topic), messages),
    consume: (options: ConsumeOptions): Promise<Consumer> =>
      bus.consume({ ...options, topic: full(options.topic), group: full(options.group), handler: (messages) => options.handler(messages.map(strip)) }),
    lag: (topic: string, group: string) => bus.lag(full(topic), full(group)),
    close: () => bus.close(),
  };
};
