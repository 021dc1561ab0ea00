import type { Channel, OutboundMessage, SendOutcome } from '../providers/port';
import { mayHaveArrived, ProviderUnavailableError } from '../providers/outcomes';
import { providerThroughput } from '../config';
import { AllTransient, CredentialsRejected, type BreakerState, type IntegrationRegistry, type Route } from './registry';
import { DeadlineExceeded, GivenUp } from './deadline';

/** How long an adapter may take to report its outcomes once its call is cancelled (they settle at once). */
const GRACE_MS = 250;

export type Routed = Readonly<{
  /** The integration's name, as events and counts show it. */
  provider: string;
  latencyMs: number;
  outcomes: readonly SendOutcome[];
  /**
   * The integration is skipped now (its breaker opened, a Retry-After paused it) and another of the
   * chain can take its traffic: what it did not take is retried there at once, without backoff,
   * which spreads retries for a recovering provider, not for a healthy one.
   */
  elsewhere?: true;
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
/** The provider's Retry-After has not passed: no call to it, as if it had no room. */
const paused = (r: Route, now = Date.now()): boolean => r.retryAt > now;

/** Messages per call to a route: the adapter's limit, cut to the policy's. */
const callSize = (r: Route): number => Math.max(1, Math.min(r.provider.maxBatch, r.policy.maxBatch));
const requestsOf = (r: Route, messages: number): number => r.provider.requestsPerCall?.(messages) ?? messages;

/**
 * Messages a route can take now: as many as its free request slots carry (one a message for
 * FCM's sendEach, a whole call for SendGrid); one while it is half-open (the probe).
 */
const room = (r: Route): number => {
  const free = r.policy.concurrency - r.inFlight;
  if (free <= 0) return 0;
  if (probing(r)) return 1;
  const perCall = callSize(r);
  const full = Math.max(1, requestsOf(r, perCall));
  const calls = Math.floor(free / full);
  const left = free - calls * full;
  return calls * perCall + (left > 0 && requestsOf(r, left) <= left ? left : 0);
};

/**
 * What a route can take now (see room), within its tokens; `keeps`: a healthy route short of
 * slots, not of quota, keeps its traffic (as send() does) rather than pass it down the chain.
 */
const capOf = (route: Route): Readonly<{ cap: number; keeps: boolean }> => {
  if (opened(route) || paused(route)) return { cap: 0, keeps: false };
  const free = room(route);
  if (probing(route)) return { cap: free > 0 ? 1 : 0, keeps: false };
  const tokens = route.bucket.available();
  return { cap: Math.max(0, Math.min(tokens, free)), keeps: tokens >= free };
};

/** What one dispatch round has claimed of each route, and the chains it looked up. */
export type RoundClaims = Readonly<{
  routes: Map<Route, { cap: number; keeps: boolean; used: number }>;
  chains: Map<string, readonly Route[] | null>;
}>;
export const newRound = (): RoundClaims => ({ routes: new Map(), chains: new Map() });

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
      const { cap, keeps } = capOf(route);
      n += cap;
      if (keeps) break;
    }
    return n;
  }

  /**
   * Claims one message's place on the tenant's chain for a dispatch round: the first route (in
   * the chain's order) with room left after what the round has claimed already. Tenants sharing
   * an integration (the platform's defaults) share its room, so a round never promises one
   * integration's quota twice and the queue's order decides who gets it. False: no room now;
   * null: no integration at all.
   */
  claim(tenantId: string, channel: Channel, round: RoundClaims): boolean | null {
    const key = `${tenantId}\u0000${channel}`;
    let chain = round.chains.get(key);
    if (chain === undefined) {
      chain = this.registry.chain(tenantId, channel);
      round.chains.set(key, chain);
    }
    if (chain === null) return false;
    if (chain.length === 0) return null;
    for (const route of chain) {
      let c = round.routes.get(route);
      if (!c) {
        c = { ...capOf(route), used: 0 };
        round.routes.set(route, c);
      }
      if (c.used < c.cap) {
        c.used++;
        return true;
      }
      if (c.keeps) return false;
    }
    return false;
  }

  /**
   * `failedOn`: the integration a message's last attempt failed on, if any. A message is never a
   * half-open integration's probe there: the last delivery of a send, retried alone, would
   * otherwise probe a dead primary again at every reset while the next integration is healthy.
   */
  async send(tenantId: string, channel: Channel, messages: readonly OutboundMessage[], failedOn: (deliveryId: string) => string | null = () => null): Promise<RouteResult> {
    const chain = this.registry.chain(tenantId, channel);
    if (chain === null) return { sent: [], unsent: messages, waitMs: 20 };
    if (chain.length === 0) return { sent: [], unsent: messages, waitMs: 0, noProvider: true };
    let rest = messages;
    let waitMs = Infinity;
    const calls: Promise<Routed>[] = [];
    for (const route of chain) {
      if (rest.length === 0) break;
      if (opened(route)) continue;
      if (paused(route)) {
        waitMs = Math.min(waitMs, route.retryAt - Date.now());
        continue;
      }
      // Half-open: one probe of one message; the others wait for its verdict. Requests beyond the
      // free slots wait here, in the scheduler's queue, never in an agent's. A healthy route that is
      // merely busy keeps its traffic (it has room again within a round trip): only an open breaker,
      // a Retry-After or a spent quota sends messages down the chain.
      const maxMessages = room(route);
      if (maxMessages <= 0) {
        waitMs = Math.min(waitMs, 5);
        if (probing(route)) continue;
        break;
      }
      if (probing(route)) {
        // Never the probe of the integration a message last failed on (see failedOn): a fresh one goes first.
        const at = rest.findIndex((m) => failedOn(m.deliveryId) !== route.name);
        if (at < 0) continue;
        if (at > 0) rest = [rest[at]!, ...rest.slice(0, at), ...rest.slice(at + 1)];
      }
      const perCall = callSize(route);
      const taken = route.bucket.take(Math.min(rest.length, maxMessages));
      if (taken === 0) {
        waitMs = Math.min(waitMs, route.bucket.waitMs());
        continue;
      }
      const slice = rest.slice(0, taken);
      rest = rest.slice(taken);
      for (let i = 0; i < slice.length; i += perCall) calls.push(this.call(route, slice.slice(i, i + perCall)));
      // Filled to its free slots with tokens to spare: the rest waits for this route, not the next.
      if (rest.length > 0 && taken === maxMessages && !probing(route)) {
        waitMs = Math.min(waitMs, 5);
        break;
      }
    }
    const sent = (await Promise.all(calls)).map((routed) => this.elsewhereAtOnce(chain, routed));
    return { sent, unsent: rest, waitMs: rest.length > 0 ? (Number.isFinite(waitMs) ? waitMs : 50) : 0 };
  }

  /**
   * Retry-After is the provider's word about itself: its route is paused until then (see call),
   * and a message it refused waits that long only if no other integration of the chain can take
   * it. Otherwise, like every message an integration now skipped did not take, it is retried
   * there at once (`elsewhere`).
   */
  private elsewhereAtOnce(chain: readonly Route[], routed: Routed): Routed {
    if (!routed.outcomes.some((o) => o.outcome === 'transient')) return routed;
    const now = Date.now();
    const self = chain.find((r) => r.name === routed.provider);
    if (!self || !(opened(self) || paused(self, now))) return routed;
    return chain.some((r) => r !== self && !opened(r) && !paused(r, now)) ? { ...routed, elsewhere: true } : routed;
  }

  /**
   * One call, with a deadline derived from the route's recent latency and enforced by
   * cancellation: at the deadline its signal aborts, the adapter cancels its requests (none not
   * yet written ever is) and reports each message, and the breaker counts a failure. The route's
   * stall watch may abort it sooner, when the whole integration stops answering. Its requests
   * count as in flight until the adapter has settled, not merely until it was given up.
   */
  private async call(route: Route, messages: readonly OutboundMessage[]): Promise<Routed> {
    const requests = requestsOf(route, messages.length);
    route.inFlight += requests;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      route.inFlight -= requests;
    };
    const started = performance.now();
    const key = `${route.owner}/${route.name}`;
    const timeoutMs = route.deadlines.timeoutMs();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DeadlineExceeded(timeoutMs)), timeoutMs);
    let sending: Promise<unknown> | null = null;
    route.health.probe();
    const stalls = route.stalls;
    stalls.begin(controller, messages.length);
    try {
      const outcomes = await route.breaker.fire(messages, { signal: controller.signal, graceMs: GRACE_MS, onSending: (p) => (sending = p), onAnswer: () => stalls.heard() });
      stalls.heard();
      const latencyMs = performance.now() - started;
      route.deadlines.record(latencyMs);
      route.completions.record(true, messages.length);
      route.health.record(key, true);
      this.pauseFor(route, outcomes);
      return { provider: route.name, latencyMs, outcomes };
    } catch (e) {
      if (e instanceof CredentialsRejected) this.reject(route, e.outcomes);
      // The vendor's fault only: refused credentials and our own breaker's refusals are not.
      const code = (e as { code?: string }).code;
      // An answer, if an error one: the provider is not silent. A call given up had none.
      if (!(e instanceof GivenUp) && code !== 'EOPENBREAKER' && code !== 'ESEMLOCKED') stalls.heard();
      if (!(e instanceof CredentialsRejected) && code !== 'EOPENBREAKER' && code !== 'ESEMLOCKED') {
        route.health.record(key, false);
        route.completions.record(false, messages.length);
        // Counted when it failed, not when it was fired: a call given up at a deadline longer than
        // the window counts too, which opossum's own statistics would miss.
        if (route.breaker.closed && route.completions.failing()) route.breaker.open();
      }
      const outcomes = this.outcomesOf(e, route, messages);
      this.pauseFor(route, outcomes);
      route.lastFailure = outcomes[0]?.outcome === 'transient' ? outcomes[0].reason : route.lastFailure;
      return { provider: route.name, latencyMs: performance.now() - started, outcomes };
    } finally {
      clearTimeout(timer);
      stalls.end(controller);
      const pending = sending as Promise<unknown> | null;
      if (pending) void pending.then(release, release);
      else release();
    }
  }

  /** The longest Retry-After the provider answered this call with: no call to it before then. */
  private pauseFor(route: Route, outcomes: readonly SendOutcome[]): void {
    let ms = 0;
    for (const o of outcomes) if (o.outcome === 'transient' && o.retryAfterMs !== undefined) ms = Math.max(ms, o.retryAfterMs);
    if (ms > 0) route.retryAt = Math.max(route.retryAt, Date.now() + ms);
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
    // The adapter did not report after its cancellation: nothing is known, so each may have arrived.
    if (e instanceof GivenUp) return e.outcomes ?? messages.map((m) => ({ deliveryId: m.deliveryId, outcome: 'transient', reason: `${route.name}: ${e.message}, no answer to the cancellation`, maybeDelivered: true }));
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
