import type { EventStore, ReadAllOptions } from '#platform/event-store/port';

/**
 * A view of the event store that reads at most `budget` events in all, so one auditLog request
 * costs what it was priced at however rarely its filter matches. `exhausted` says the budget ran
 * out with more of the log possibly left; `lastPosition` is where the next request continues.
 */
export const budgetedScan = (store: EventStore, budget: number) => {
  let read = 0;
  let last: number | null = null;
  let exhausted = false;
  const readAll = async (options: ReadAllOptions) => {
    const remaining = budget - read;
    if (remaining <= 0) {
      exhausted = true;
      return [];
    }
    const maxCount = Math.min(options.maxCount, remaining);
    const page = await store.readAll({ ...options, maxCount });
    read += page.length;
    if (page.length > 0) last = page[page.length - 1]!.position;
    if (page.length === maxCount && maxCount < options.maxCount) exhausted = true;
    return page;
  };
  const eventStore = new Proxy(store, {
    get: (target, property) => {
      if (property === 'readAll') return readAll;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { eventStore, exhausted: () => exhausted, lastPosition: () => last, read: () => read };
};
