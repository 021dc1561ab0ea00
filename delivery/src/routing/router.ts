import type { Channel, OutboundMessage, SendOutcome } from '../providers/port';
import { mayHaveArrived, ProviderUnavailableError } from '../providers/outcomes';
import { providerThroughput } from '../config';
import { AllTransient, CredentialsRejected, type BreakerState, type IntegrationRegistry, type Route } from './registry';

export type Routed = Readonly<{
  /** The integration's name, as events and counts show it. */
  provider: string;
  latencyMs: number;
  outcomes: readonly SendOutcome[];
}>;

export type RouteResult = Readonly<{
  /** Sent slices: each to one integration, with an outcome per message. */
  sent: readonly Routed[];
  /** Not sent: no integration had a free slot, tokens and a closed breaker. Retry after `waitMs`. */
  unsent: readonly OutboundMessage[];
  waitMs: number;
  /** The tenant has no integration for the channel at all (none of its own, no platform default). */
  noProvider?: true;
}>;

const opened = (r: Route): boolean => r.rejected !== null || r.breaker.opened || r.health.opened;
const probing = (r: Route): boolean => r.breaker.halfOpen || r.health.halfOpen;

/**
 * Sends each batch of a tenant to the first integration of its chain for the channel (its own by
 * priority, then the platform defaults) that can take it now: breakers (the integration's and
 * its vendor endpoint's) not open, credentials not rejected, a free concurrency slot, tokens in
 * its bucket. An open breaker or an exhausted quota moves traffic to the next; half-open lets one
 * probe through.
 */
export class ProviderRouter {
  constructor(
    private readonly registry: IntegrationRegistry,
    private readonly onRejected: (route: Route, code: string) => void = () => {},
  ) {}

  state(owner: string, name: string): BreakerState | undefined {
    const r = this.registry.route(owner, name);
    if (!r) return undefined;
    return opened(r) ? 'open' : probing(r) ? 'half-open' : 'closed';
  }

  /** What a tenant's chain can take a second (admission plans with it); 0 until its integrations are loaded. */
  capacity(tenantId: string, channel: Channel): number {
    return (this.registry.chain(tenantId, channel) ?? []).reduce((n, r) => n + (r.rejected ? 0 : providerThroughput(r.policy)), 0);
  }

  /** Messages the tenant's chain could take right now: what the dispatcher hands it, no more. Null: no integration at all. */
  available(tenantId: string, channel: Channel): number | null {
    const chain = this.registry.chain(tenantId, channel);
    if (chain === null) return 0;
    if (chain.length === 0) return null;
    let n = 0;
    for (const route of chain) {
      if (opened(route)) continue;
      const slots = route.policy.concurrency - route.inFlight;
      if (slots <= 0) continue;
      n += probing(route) ? 1 : Math.min(route.bucket.available(), slots * route.provider.maxBatch);
    }
    return n;
  }

  async send(tenantId: string, channel: Channel, messages: readonly OutboundMessage[]): Promise<RouteResult> {
    const chain = this.registry.chain(tenantId, channel);
    if (chain === null) return { sent: [], unsent: messages, waitMs: 20 };
    if (chain.length === 0) return { sent: [], unsent: messages, waitMs: 0, noProvider: true };
    let rest = messages;
    let waitMs = Infinity;
    const calls: Promise<Routed>[] = [];
    for (const route of chain) {
      if (rest.length === 0) break;
      if (opened(route)) continue;
      // Half-open: one probe of one message; the others wait for its verdict.
      const room = probing(route) ? Math.min(1, route.policy.concurrency - route.inFlight) : route.policy.concurrency - route.inFlight;
      if (room <= 0) {
        waitMs = Math.min(waitMs, 5);
        continue;
      }
      const perCall = route.provider.maxBatch;
      const maxMessages = probing(route) ? 1 : room * perCall;
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
    const key = `${route.owner}/${route.name}`;
    route.health.probe();
    try {
      const outcomes = await route.breaker.fire(messages);
      route.health.record(key, true);
      return { provider: route.name, latencyMs: performance.now() - started, outcomes };
    } catch (e) {
      if (e instanceof CredentialsRejected) this.reject(route, e.outcomes);
      // The vendor's fault only: refused credentials and our own breaker's refusals are not.
      const code = (e as { code?: string }).code;
      if (!(e instanceof CredentialsRejected) && code !== 'EOPENBREAKER' && code !== 'ESEMLOCKED') route.health.record(key, false);
      const outcomes = this.outcomesOf(e, route, messages);
      route.lastFailure = outcomes[0]?.outcome === 'transient' ? outcomes[0].reason : route.lastFailure;
      return { provider: route.name, latencyMs: performance.now() - started, outcomes };
    } finally {
      route.inFlight--;
    }
  }

  /** Credentials refused: this integration is skipped from now on (its breaker opens), the others take over at once. */
  private reject(route: Route, outcomes: readonly SendOutcome[]): void {
    if (route.rejected !== null) return;
    const first = outcomes.find((o) => o.outcome === 'transient' && o.credentialsRejected);
    route.rejected = first?.outcome === 'transient' ? first.reason : 'credentials rejected';
    route.breaker.open();
    this.onRejected(route, route.rejected);
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
}
