import CircuitBreaker from 'opossum';
import type { Channel, OutboundMessage, Provider, SendOutcome } from './providers/port';
import { mayHaveArrived, ProviderUnavailableError } from './providers/outcomes';
import type { DeliveryConfig, ProviderPolicy } from './config';
import { TokenBucket } from './token-bucket';

export type BreakerState = 'closed' | 'open' | 'half-open';

export type Routed = Readonly<{
  provider: string;
  latencyMs: number;
  outcomes: readonly SendOutcome[];
}>;

export type RouteResult = Readonly<{
  /** Sent slices: each to one provider, with an outcome per message. */
  sent: readonly Routed[];
  /** Not sent: no provider had a free slot, tokens or a closed breaker. Retry after `waitMs`. */
  unsent: readonly OutboundMessage[];
  waitMs: number;
}>;

/** Every message of a call failed transiently (an outage, 503s): counts as a failure for the breaker. */
class AllTransient extends Error {
  constructor(readonly outcomes: readonly SendOutcome[]) {
    super(outcomes[0]?.outcome === 'transient' ? outcomes[0].reason : 'all transient');
  }
}

type Route = {
  provider: Provider;
  policy: ProviderPolicy;
  breaker: CircuitBreaker<[readonly OutboundMessage[]], readonly SendOutcome[]>;
  bucket: TokenBucket;
  inFlight: number;
};

export type BreakerListener = (provider: Provider, state: BreakerState, reason: string) => void;

/**
 * Sends each batch to the first provider of its channel's chain that can take it now: breaker
 * not open, a free concurrency slot, tokens in its bucket. An open breaker (or an exhausted quota)
 * moves traffic to the next provider; half-open lets one probe through to the first again.
 */
export class ProviderRouter {
  private readonly chains = new Map<Channel, Route[]>();

  constructor(providers: readonly Provider[], config: Pick<DeliveryConfig, 'chains' | 'policies'>, onBreaker: BreakerListener = () => {}) {
    const byName = new Map(providers.map((p) => [p.name, p]));
    for (const [channel, names] of Object.entries(config.chains) as [Channel, readonly string[]][]) {
      const routes = names.map((name): Route => {
        const provider = byName.get(name);
        const policy = config.policies[name];
        if (!provider) throw new Error(`provider ${name} of the ${channel} chain is not configured`);
        if (!policy) throw new Error(`provider ${name} has no policy`);
        const breaker = new CircuitBreaker(
          async (messages: readonly OutboundMessage[]) => {
            const outcomes = await provider.send(messages);
            if (outcomes.length > 0 && outcomes.every((o) => o.outcome === 'transient')) throw new AllTransient(outcomes);
            return outcomes;
          },
          {
            timeout: policy.timeoutMs,
            errorThresholdPercentage: policy.errorThresholdPercentage,
            volumeThreshold: policy.volumeThreshold,
            resetTimeout: policy.resetTimeoutMs,
            rollingCountTimeout: 10_000,
            rollingCountBuckets: 10,
            name,
          },
        );
        breaker.on('open', () => onBreaker(provider, 'open', 'error threshold reached'));
        breaker.on('halfOpen', () => onBreaker(provider, 'half-open', 'reset timeout elapsed: probing'));
        breaker.on('close', () => onBreaker(provider, 'closed', 'probe succeeded'));
        return { provider, policy, breaker, bucket: new TokenBucket(policy.ratePerSecond, Math.max(1, Math.ceil(policy.ratePerSecond / 10))), inFlight: 0 };
      });
      if (routes.length === 0) throw new Error(`the ${channel} chain has no provider`);
      this.chains.set(channel, routes);
    }
  }

  state(name: string): BreakerState | undefined {
    for (const routes of this.chains.values()) {
      const r = routes.find((x) => x.provider.name === name);
      if (r) return r.breaker.opened ? 'open' : r.breaker.halfOpen ? 'half-open' : 'closed';
    }
    return undefined;
  }

  /** The sum of the chain's quotas, messages a second: what admission plans with. */
  capacity(channel: Channel): number {
    return (this.chains.get(channel) ?? []).reduce((n, r) => n + r.policy.ratePerSecond, 0);
  }

  /** Messages the channel's chain could take right now: what the dispatcher hands it, no more. */
  available(channel: Channel): number {
    let n = 0;
    for (const route of this.chains.get(channel) ?? []) {
      if (route.breaker.opened) continue;
      const slots = route.policy.concurrency - route.inFlight;
      if (slots <= 0) continue;
      n += route.breaker.halfOpen ? 1 : Math.min(route.bucket.available(), slots * route.provider.maxBatch);
    }
    return n;
  }

  async send(channel: Channel, messages: readonly OutboundMessage[]): Promise<RouteResult> {
    const routes = this.chains.get(channel);
    if (!routes) throw new Error(`no provider chain for ${channel}`);
    let rest = messages;
    let waitMs = Infinity;
    const calls: Promise<Routed>[] = [];
    for (const route of routes) {
      if (rest.length === 0) break;
      if (route.breaker.opened) continue;
      // Half-open: one probe of one message; the others wait for its verdict.
      const room = route.breaker.halfOpen ? Math.min(1, route.policy.concurrency - route.inFlight) : route.policy.concurrency - route.inFlight;
      if (room <= 0) {
        waitMs = Math.min(waitMs, 5);
        continue;
      }
      const perCall = route.provider.maxBatch;
      const maxMessages = route.breaker.halfOpen ? 1 : room * perCall;
      const taken = route.bucket.take(Math.min(rest.length, maxMessages));
      if (taken === 0) {
        waitMs = Math.min(waitMs, route.bucket.waitMs());
        continue;
      }
      const slice = rest.slice(0, taken);
      rest = rest.slice(taken);
      for (let i = 0; i < slice.length; i += perCall) calls.push(this.call(route, slice.slice(i, i + perCall)));
    }
    const sent = await Promise.all(calls);
    return { sent, unsent: rest, waitMs: rest.length > 0 ? (Number.isFinite(waitMs) ? waitMs : 50) : 0 };
  }

  private async call(route: Route, messages: readonly OutboundMessage[]): Promise<Routed> {
    route.inFlight++;
    const started = performance.now();
    try {
      const outcomes = await route.breaker.fire(messages);
      return { provider: route.provider.name, latencyMs: performance.now() - started, outcomes };
    } catch (e) {
      return { provider: route.provider.name, latencyMs: performance.now() - started, outcomes: this.outcomesOf(e, route, messages) };
    } finally {
      route.inFlight--;
    }
  }

  /**
   * A failed call's outcome per message. The breaker's own timeout abandons a call whose requests
   * may still arrive: a retry of those may deliver twice, and says so.
   */
  private outcomesOf(e: unknown, route: Route, messages: readonly OutboundMessage[]): readonly SendOutcome[] {
    if (e instanceof AllTransient || e instanceof ProviderUnavailableError) return e.outcomes;
    const code = (e as { code?: string }).code;
    const [reason, maybeDelivered] =
      code === 'EOPENBREAKER'
        ? ['circuit open', false]
        : code === 'ESEMLOCKED'
          ? ['too many calls in flight', false]
            : code === 'ETIMEDOUT'
            ? [`timed out after ${route.policy.timeoutMs} ms`, true]
            : [e instanceof Error ? e.message : String(e), mayHaveArrived(e)];
    return messages.map((m): SendOutcome => ({ deliveryId: m.deliveryId, outcome: 'transient', reason, ...(maybeDelivered ? { maybeDelivered: true as const } : {}) }));
  }

  async close(): Promise<void> {
    for (const routes of this.chains.values()) {
      for (const r of routes) {
        r.breaker.shutdown();
        await r.provider.close();
      }
    }
  }
}
