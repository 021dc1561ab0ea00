import CircuitBreaker from 'opossum';
import { streams } from '#schema/streams';
import { PLATFORM, type IntegrationSecret, type Vendor } from '#schema/integrations';
import type { IntegrationEvent } from '#schema/events';
import type { EventStore } from '#platform/event-store/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Logger } from '#platform/logger';
import { StreamCache, type Loaded } from '#command/handler';
import { integrationDecider, type Integration, type IntegrationsState } from '#command/integration/decider';
import { openIntegrationSecret } from '#command/integration/commands';
import { policyFor, type DeliveryConfig, type ProviderPolicy } from '../config';
import { createProvider, toProviderIntegration, type ProviderClientOptions } from '../providers/integration';
import type { Channel, OutboundMessage, Provider, SendOutcome } from '../providers/port';
import { TokenBucket } from '../token-bucket';
import { VendorHealth } from './vendor-health';
import { ProviderUnavailableError } from '../providers/outcomes';
import { CallDeadlines, CompletionWindow, GivenUp, settleWithin } from './deadline';
import { StallMonitor, Stalled, type StallWatch } from './stall';

const rejectsCredentials = (o: SendOutcome): boolean => o.outcome === 'transient' && o.credentialsRejected === true;

export type BreakerState = 'closed' | 'open' | 'half-open';

/** What the router hands a call besides its messages: the signal it aborts at the deadline. */
export type CallControl = Readonly<{
  signal: AbortSignal;
  /** How long after the abort the adapter may take to report each message's outcome. */
  graceMs: number;
  /** Told of the adapter's own promise: the call's requests count as in flight until it settles. */
  onSending: (sending: Promise<unknown>) => void;
  /** The provider answered one of the call's requests: it is not silent (stall detection). */
  onAnswer: () => void;
}>;

/** One integration as the router uses it: its client, quota, breaker and the health of its vendor. */
export type Route = {
  readonly owner: string;
  readonly name: string;
  readonly vendor: Vendor;
  readonly channel: Channel;
  readonly priority: number;
  readonly fingerprint: string;
  /** Its configuration (all but the sealed secret, which the fingerprint stands for): a change rebuilds it. */
  readonly configKey: string;
  readonly provider: Provider;
  readonly policy: ProviderPolicy;
  readonly breaker: CircuitBreaker<[readonly OutboundMessage[], CallControl], readonly SendOutcome[]>;
  /** Each call's deadline, from the latency of the recent successful ones. */
  readonly deadlines: CallDeadlines;
  /** Calls by completion over the breaker's window: opens the breaker on calls failing at their deadline. */
  readonly completions: CompletionWindow;
  /** Its calls in flight and how long it has not answered: a stall opens the breaker and cancels them. */
  readonly stalls: StallWatch;
  /** Epoch ms before which the provider asked not to be called again (its Retry-After). */
  retryAt: number;
  readonly bucket: TokenBucket;
  /** Shared by every integration of the vendor at the same endpoint: an outage there opens them all. */
  readonly health: VendorHealth;
  /** Requests in flight (written or waiting for a connection), until the adapter has settled them. */
  inFlight: number;
  /** The credential rejection code, once the provider refused the credentials: skipped from then on. */
  rejected: string | null;
  /** The last failure's code or reason, for the breaker's record. */
  lastFailure: string | null;
};

/** Every message of a call failed transiently (an outage, 503s): counts as a failure for the breaker. */
export class AllTransient extends Error {
  constructor(readonly outcomes: readonly SendOutcome[]) {
    super(outcomes[0]?.outcome === 'transient' ? outcomes[0].reason : 'all transient');
  }
}

/** The provider refused the integration's credentials: that integration's fault, not the vendor's. */
export class CredentialsRejected extends AllTransient {
  override readonly name = 'CredentialsRejected';
}

export type RegistryDeps = Readonly<{
  eventStore: EventStore;
  cipher: PersonalDataCipher;
  config: Pick<DeliveryConfig, 'policies' | 'vendorPolicies'>;
  logger: Logger;
  clientOptions?: ProviderClientOptions;
  /** Where a vendor's delivery receipts for this integration go (Twilio's status callbacks), if anywhere. */
  receiptsUrl?: (owner: string, name: string, vendor: Vendor) => string | undefined;
  onBreaker?: (route: Route, state: BreakerState, reason: string) => void;
  /** A route was built (a new integration, or one configured again): its breaker starts closed. */
  onBuilt?: (route: Route) => void;
  /** An owner's integrations are read again at most this often while in use (default 1 s). */
  refreshMs?: number;
  /** Builds the client of an integration (default: the vendor's SDK); tests isolate the router with their own. */
  clientOf?: (integration: Integration, secret: IntegrationSecret) => Provider;
}>;

type Owner = {
  loaded: Loaded<IntegrationsState> | null;
  loading: Promise<void> | null;
  usedAt: number;
  routes: Map<string, Route>;
};

/**
 * The integrations of every tenant in use, and the platform defaults, as routes: each built
 * lazily from its events (the secret opened with its owner's key), replaced when it is configured
 * again, retired when removed. Chains are read synchronously by the scheduler; an owner not yet
 * loaded is loaded in the background and has no chain until then.
 */
export class IntegrationRegistry {
  private readonly owners = new Map<string, Owner>();
  private readonly cache: StreamCache<IntegrationEvent, IntegrationsState>;
  private readonly health = new Map<string, VendorHealth>();
  private readonly timer: NodeJS.Timeout;
  private readonly stallMonitor = new StallMonitor();
  /** Why a route's breaker is being opened by us, when it is not its error rate. */
  private readonly openedFor = new WeakMap<Route, string>();
  private closed = false;
  /** This worker's share of every quota: its bus partitions over all of them. */
  private quotaShare = 1;

  constructor(private readonly deps: RegistryDeps) {
    this.cache = new StreamCache(deps.eventStore, integrationDecider, 100_000);
    this.timer = setInterval(() => void this.refreshInUse(), deps.refreshMs ?? 1_000);
    this.timer.unref();
    this.stallMonitor.start();
  }

  /** The tenant's chain for a channel: its own integrations by priority, then the platform defaults. Null until loaded. */
  chain(tenantId: string, channel: Channel): readonly Route[] | null {
    const own = this.routesOf(tenantId);
    const platform = this.routesOf(PLATFORM);
    if (!own || !platform) return null;
    const pick = (routes: Iterable<Route>) => [...routes].filter((r) => r.channel === channel).sort((a, b) => a.priority - b.priority || a.name.localeCompare(b.name));
    return [...pick(own), ...pick(platform)];
  }

  /** Loads (or refreshes) a tenant's integrations and the platform defaults. */
  async ensure(tenantId: string): Promise<void> {
    await Promise.all([this.load(tenantId), this.load(PLATFORM)]);
  }

  /**
   * The share of every integration's quota this worker may use: its partitions over all, set on
   * every rebalance. Each worker sends only its partitions' deliveries, so the shares add up to
   * the quota across the cluster without a coordinator on the send path.
   */
  setQuotaShare(fraction: number): void {
    this.quotaShare = fraction;
    for (const route of this.routes()) route.bucket.share(fraction);
  }

  /** Every route currently built, for metrics and shutdown. */
  routes(): Route[] {
    return [...this.owners.values()].flatMap((o) => [...o.routes.values()]);
  }

  route(owner: string, name: string): Route | undefined {
    return this.owners.get(owner)?.routes.get(name);
  }

  private routesOf(owner: string): Iterable<Route> | null {
    let o = this.owners.get(owner);
    if (!o) {
      o = { loaded: null, loading: null, usedAt: 0, routes: new Map() };
      this.owners.set(owner, o);
    }
    o.usedAt = Date.now();
    if (!o.loaded) {
      void this.load(owner);
      return null;
    }
    return o.routes.values();
  }

  private load(owner: string): Promise<void> {
    let o = this.owners.get(owner);
    if (!o) {
      o = { loaded: null, loading: null, usedAt: Date.now(), routes: new Map() };
      this.owners.set(owner, o);
    }
    const entry = o;
    entry.loading ??= this.refresh(owner, entry)
      .catch((e) => this.deps.logger.error({ err: e, owner }, 'loading provider integrations failed'))
      .finally(() => (entry.loading = null));
    return entry.loading;
  }

  private async refreshInUse(): Promise<void> {
    const recent = Date.now() - 5 * 60_000;
    await Promise.all([...this.owners].filter(([, o]) => o.usedAt >= recent).map(([owner]) => this.load(owner)));
  }

  private async refresh(owner: string, o: Owner): Promise<void> {
    const loaded = await this.cache.load(streams.integrations(owner));
    if (this.closed || loaded === o.loaded) return;
    const next = new Map<string, Route>();
    for (const [name, integration] of loaded.state.integrations) {
      const current = o.routes.get(name);
      if (current && sameRoute(current, integration)) {
        next.set(name, current);
        continue;
      }
      const route = await this.build(integration);
      if (route) next.set(name, route);
    }
    for (const [name, route] of o.routes) if (next.get(name) !== route) this.retire(route);
    o.routes = next;
    o.loaded = loaded;
  }

  private async build(integration: Integration): Promise<Route | null> {
    const { owner, name } = integration;
    let secret;
    try {
      secret = await openIntegrationSecret(this.deps.cipher, owner, integration.credentials);
    } catch (e) {
      this.deps.logger.error({ err: e, owner, integration: name }, 'provider credentials do not open');
      return null;
    }
    if (!secret) return null;
    const receiptsUrl = this.deps.receiptsUrl?.(owner, name, integration.vendor);
    const policy = policyFor(this.deps.config, integration);
    // Connections at least as many as the requests the router lets be in flight: none waits in an
    // agent's queue, where a call given up could not reach it.
    const clientOptions = this.deps.clientOptions ?? {};
    const sized = { ...clientOptions, maxSockets: Math.max(clientOptions.maxSockets ?? policy.concurrency, policy.concurrency), timeoutMs: clientOptions.timeoutMs ?? policy.timeoutMs };
    let provider: Provider;
    try {
      provider = this.deps.clientOf
        ? this.deps.clientOf(integration, secret)
        : createProvider(toProviderIntegration(owner, integrationSpecOf(integration), secret, receiptsUrl ? { receiptsUrl } : {}), sized);
    } catch (e) {
      this.deps.logger.error({ err: e, owner, integration: name }, 'provider client could not be built');
      return null;
    }
    const breaker = new CircuitBreaker(
      async (messages: readonly OutboundMessage[], control: CallControl) => {
        const sending = provider.send(messages, { signal: control.signal, onAnswer: control.onAnswer });
        control.onSending(sending);
        let outcomes: readonly SendOutcome[];
        try {
          outcomes = await settleWithin(sending, control.signal, control.graceMs);
        } catch (e) {
          // Given up: a failure for the breaker, whatever the adapter made of the cancellation.
          if (e instanceof GivenUp) throw e;
          if (control.signal.aborted) throw GivenUp.by(control.signal, e instanceof ProviderUnavailableError ? e.outcomes : null);
          // An adapter reports a call that failed on the provider's side as unavailable; refused
          // credentials are this integration's fault, which the vendor's health must not count.
          if (e instanceof ProviderUnavailableError && e.outcomes.some(rejectsCredentials)) throw new CredentialsRejected(e.outcomes);
          throw e;
        }
        if (control.signal.aborted) throw GivenUp.by(control.signal, outcomes);
        if (outcomes.length > 0 && outcomes.every((o) => o.outcome === 'transient')) {
          throw outcomes.some(rejectsCredentials) ? new CredentialsRejected(outcomes) : new AllTransient(outcomes);
        }
        return outcomes;
      },
      {
        // The deadline is the router's, per call and enforced by cancellation (CallDeadlines).
        timeout: false,
        errorThresholdPercentage: policy.errorThresholdPercentage,
        volumeThreshold: policy.volumeThreshold,
        resetTimeout: policy.resetTimeoutMs,
        rollingCountTimeout: policy.windowMs,
        rollingCountBuckets: 10,
        name: `${owner}/${name}`,
      },
    );
    const deadlines = new CallDeadlines(policy);
    const route: Route = {
      owner,
      name,
      vendor: integration.vendor,
      channel: integration.channel,
      priority: integration.priority,
      fingerprint: integration.fingerprint,
      configKey: configKeyOf(integration),
      provider,
      policy,
      breaker,
      deadlines,
      completions: new CompletionWindow(policy),
      stalls: this.stallMonitor.watch(
        () => {
          const silentMs = deadlines.stallMs();
          return silentMs === null ? null : { silentMs, messages: policy.volumeThreshold };
        },
        (silentMs) => this.stalled(route, silentMs),
      ),
      retryAt: 0,
      bucket: sharedBucket(policy.ratePerSecond, this.quotaShare),
      health: this.healthOf(integration.vendor, integration.endpoint?.url ?? null),
      inFlight: 0,
      rejected: integration.credentialsRejected,
      lastFailure: integration.credentialsRejected,
    };
    breaker.on('open', () => this.deps.onBreaker?.(route, 'open', route.rejected ? `credentials rejected: ${route.rejected}` : (this.openedFor.get(route) ?? 'error threshold reached')));
    breaker.on('halfOpen', () => this.deps.onBreaker?.(route, 'half-open', 'reset timeout elapsed: probing'));
    breaker.on('close', () => this.deps.onBreaker?.(route, 'closed', 'probe succeeded'));
    this.deps.onBuilt?.(route);
    return route;
  }

  /**
   * Calls outstanding and no answer for longer than its typical latency allows: the integration
   * hangs. Its breaker opens first, so the cancelled calls' deliveries are retried on the next
   * integration of their chain, then every call is cancelled (none of their requests is written
   * afterwards).
   */
  private stalled(route: Route, silentMs: number): void {
    const reason = new Stalled(silentMs);
    route.lastFailure = reason.message;
    // A route replaced meanwhile has its calls cancelled, its breaker (shut down) left alone.
    if (!route.breaker.opened && this.route(route.owner, route.name) === route) {
      this.openedFor.set(route, `${reason.message}: calls cancelled`);
      route.breaker.open();
      this.openedFor.delete(route);
    }
    const calls = route.stalls.abort(reason);
    this.deps.logger.warn({ owner: route.owner, integration: route.name, silentMs: Math.round(silentMs), calls }, 'provider stopped answering: its calls cancelled, failing over');
  }

  private healthOf(vendor: Vendor, endpoint: string | null): VendorHealth {
    const key = `${vendor}|${endpoint ?? 'production'}`;
    let h = this.health.get(key);
    if (!h) {
      h = new VendorHealth(key, undefined, (state) =>
        this.deps.logger.warn({ vendor, endpoint: endpoint ?? 'production', state }, state === 'open' ? 'vendor failing for several integrations: all of them skipped' : 'vendor endpoint circuit changed'),
      );
      this.health.set(key, h);
    }
    return h;
  }

  /** A replaced or removed integration: no new calls; its client closes once its calls are done. */
  private retire(route: Route): void {
    route.breaker.shutdown();
    const closeWhenIdle = (tries: number) => {
      if (route.inFlight === 0 || tries <= 0) void route.provider.close().catch(() => undefined);
      else setTimeout(() => closeWhenIdle(tries - 1), 100).unref();
    };
    closeWhenIdle(300);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.stallMonitor.stop();
    await Promise.all([...this.owners.values()].map((o) => o.loading));
    for (const route of this.routes()) {
      route.breaker.shutdown();
      await route.provider.close().catch(() => undefined);
    }
  }
}

/** A tenth of a second's quota as burst: bounded overshoot within any second. */
const sharedBucket = (ratePerSecond: number, share: number): TokenBucket => {
  const bucket = new TokenBucket(ratePerSecond, Math.max(1, Math.ceil(ratePerSecond / 10)));
  bucket.share(share);
  return bucket;
};

const configKeyOf = (i: Integration): string => {
  const { credentials: _sealed, ...rest } = i;
  return JSON.stringify(rest);
};

const sameRoute = (route: Route, integration: Integration): boolean => route.configKey === configKeyOf(integration);

const integrationSpecOf = (i: Integration) => ({
  name: i.name,
  channel: i.channel,
  priority: i.priority,
  settings: i.settings,
  quotaPerSecond: i.quotaPerSecond,
  endpoint: i.endpoint,
  ca: i.ca,
});
