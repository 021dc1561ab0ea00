import { GraphQLError } from 'graphql';
import { RATE_LIMITED } from './rate-limits';

/**
 * Requests in flight per tenant, on this replica: each tenant has its own lane of `concurrency`
 * slots and a bounded queue, so a tenant flooding within its rate limit still runs at most
 * `concurrency` requests at once beside everyone else's, and past its queue gets RATE_LIMITED.
 */
export class Lanes {
  private readonly lanes = new Map<string, { running: number; queue: (() => void)[] }>();

  constructor(private readonly concurrency: number, private readonly maxQueued: number) {}

  async acquire(lane: string): Promise<() => void> {
    let l = this.lanes.get(lane);
    if (!l) this.lanes.set(lane, (l = { running: 0, queue: [] }));
    const state = l;
    if (state.running >= this.concurrency) {
      if (state.queue.length >= this.maxQueued) {
        throw new GraphQLError(`too many requests in flight for this tenant (${this.concurrency} running, ${this.maxQueued} queued); retry after 1 s`, {
          extensions: { code: RATE_LIMITED, retryAfterSeconds: 1, http: { status: 429, headers: new Map([['retry-after', '1']]) } },
        });
      }
      await new Promise<void>((resolve) => state.queue.push(resolve));
    } else state.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = state.queue.shift();
      if (next) next(); // the slot passes on
      else if (--state.running === 0) this.lanes.delete(lane);
    };
  }
}
