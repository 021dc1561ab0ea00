/**
 * A push-to-pull queue for one subscriber. `latest` keeps only the newest value (a snapshot
 * supersedes older ones); `bounded` keeps up to `capacity` values and, when the consumer falls
 * behind, drops new ones and reports how many through `onDropped` once it catches up.
 */
export type ChannelOptions<T> =
  | Readonly<{ mode: 'latest' }>
  | Readonly<{ mode: 'bounded'; capacity: number; dropped: (count: number) => T }>;

export class Channel<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private droppedCount = 0;
  private closed = false;

  constructor(
    private readonly options: ChannelOptions<T>,
    private readonly onClose: () => void = () => {},
  ) {}

  push(value: T): void {
    if (this.closed) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ value, done: false });
      return;
    }
    if (this.options.mode === 'latest') {
      this.queue.length = 0;
      this.queue.push(value);
    } else if (this.queue.length >= this.options.capacity) {
      this.droppedCount++;
    } else {
      this.queue.push(value);
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.options.mode === 'bounded' && this.droppedCount > 0 && this.queue.length === 0) {
      const marker = this.options.dropped(this.droppedCount);
      this.droppedCount = 0;
      return Promise.resolve({ value: marker, done: false });
    }
    const value = this.queue.shift();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.waiting?.({ value: undefined, done: true });
    this.waiting = null;
    this.onClose();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
