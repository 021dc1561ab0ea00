import { GraphQLError } from 'graphql';
import { RateLimiterMemory, RateLimiterMongo, RateLimiterPostgres, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { ReadStore } from '#platform/read-store/port';
import type { Logger } from '#platform/logger';
import type { Principal } from './auth';

/** Per minute; 0: no limit. */
export type RateLimitValues = Readonly<{
  tenantRequestsPerMinute: number;
  keyRequestsPerMinute: number;
  tenantSendsPerMinute: number;
  keySendsPerMinute: number;
}>;

/**
 * Where the counters live. In memory on the embedded default (one process); in the cluster's
 * PostgreSQL or MongoDB where the API runs as several replicas, so a limit holds for the cluster.
 */
export type RateLimitBackend =
  | Readonly<{ kind: 'memory' }>
  | Readonly<{ kind: 'postgres'; pool: unknown }>
  | Readonly<{ kind: 'mongodb'; client: unknown; database: string }>;

export const RATE_LIMITED = 'RATE_LIMITED';

/** HTTP 429 with Retry-After (seconds), and the same code over WebSocket. */
export const rateLimited = (message: string, retryAfterSeconds: number): GraphQLError =>
  new GraphQLError(message, {
    extensions: {
      code: RATE_LIMITED,
      retryAfterSeconds,
      http: { status: 429, headers: new Map([['retry-after', String(retryAfterSeconds)]]) },
    },
  });

const WINDOW_SECONDS = 60;
/** The counters count freely; each tenant's limit is compared with the count (limits differ per tenant). */
const UNBOUNDED = 1_000_000_000;

const counter = (backend: RateLimitBackend, name: string): RateLimiterAbstract => {
  const memory = new RateLimiterMemory({ points: UNBOUNDED, duration: WINDOW_SECONDS, keyPrefix: name });
  switch (backend.kind) {
    case 'memory':
      return memory;
    case 'postgres':
      // Pass the pool; the table is created on first use. A store failure falls back to memory.
      return new RateLimiterPostgres(
        { storeClient: backend.pool, storeType: 'pool', tableName: 'notify_rate_limits', points: UNBOUNDED, duration: WINDOW_SECONDS, keyPrefix: name, insuranceLimiter: memory, clearExpiredByTimeout: true },
        () => undefined,
      );
    case 'mongodb':
      return new RateLimiterMongo({ storeClient: backend.client, dbName: backend.database, tableName: 'notify_rate_limits', points: UNBOUNDED, duration: WINDOW_SECONDS, keyPrefix: name, insuranceLimiter: memory });
  }
};

const OVERRIDES = 'api_tenant_limits';
const OVERRIDES_TTL_MS = 5_000;

export type TenantLimitsDocument = Readonly<{ id: string; tenantId: string } & { [K in keyof RateLimitValues]: number | null } & { setAt: string; setBy: string }>;

/**
 * The operator's per-tenant overrides, kept in the read store beside the read models (shared by
 * every replica; each replica rereads a tenant's after OVERRIDES_TTL_MS).
 */
export class TenantLimitOverrides {
  private readonly cache = new Map<string, { at: number; doc: TenantLimitsDocument | null }>();

  constructor(private readonly store: ReadStore, private readonly now: () => number = Date.now) {}

  async start(): Promise<void> {
    await this.store.ensureCollections([{ name: OVERRIDES, indexes: [] }]);
  }

  async get(tenantId: string): Promise<TenantLimitsDocument | null> {
    const hit = this.cache.get(tenantId);
    if (hit && this.now() - hit.at < OVERRIDES_TTL_MS) return hit.doc;
    const doc = await this.store.get<TenantLimitsDocument>(OVERRIDES, tenantId);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(tenantId, { at: this.now(), doc });
    return doc;
  }

  async set(doc: TenantLimitsDocument): Promise<void> {
    await this.store.commit({ checkpoints: [], changes: [{ op: 'put', collection: OVERRIDES, doc }] });
    this.cache.set(doc.tenantId, { at: this.now(), doc });
  }
}

type Kind = 'requests' | 'sends';

/** Requests and sends per minute, per tenant and per API key. */
export class RateLimits {
  private readonly counters: Record<Kind, RateLimiterAbstract>;
  /** Counters known to be over a limit until a time: refused here without asking the store again (while that limit holds). */
  private readonly blocked = new Map<string, { until: number; limit: number }>();
  private lastStoreWarning = 0;

  constructor(
    private readonly deps: Readonly<{ backend: RateLimitBackend; defaults: RateLimitValues; overrides: TenantLimitOverrides; logger: Logger; now?: () => number }>,
  ) {
    this.counters = { requests: counter(deps.backend, 'notify_req'), sends: counter(deps.backend, 'notify_send') };
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** The limits in force for a tenant: its overrides over the defaults. */
  async effective(tenantId: string): Promise<RateLimitValues> {
    const o = await this.deps.overrides.get(tenantId);
    const d = this.deps.defaults;
    return {
      tenantRequestsPerMinute: o?.tenantRequestsPerMinute ?? d.tenantRequestsPerMinute,
      keyRequestsPerMinute: o?.keyRequestsPerMinute ?? d.keyRequestsPerMinute,
      tenantSendsPerMinute: o?.tenantSendsPerMinute ?? d.tenantSendsPerMinute,
      keySendsPerMinute: o?.keySendsPerMinute ?? d.keySendsPerMinute,
    };
  }

  /** One request (an HTTP request, a WebSocket connection or subscription). Throws RATE_LIMITED. */
  admitRequest(p: Principal): Promise<void> {
    return this.admit(p, 'requests', 1);
  }

  /** `count` notifications about to be sent (sendNotification fields of one request). */
  admitSends(p: Principal, count: number): Promise<void> {
    return count > 0 ? this.admit(p, 'sends', count) : Promise.resolve();
  }

  private async admit(p: Principal, kind: Kind, points: number): Promise<void> {
    const limits = p.kind === 'tenant' ? await this.effective(p.tenantId) : this.deps.defaults;
    const keyLimit = kind === 'requests' ? limits.keyRequestsPerMinute : limits.keySendsPerMinute;
    const tenantLimit = p.kind === 'tenant' ? (kind === 'requests' ? limits.tenantRequestsPerMinute : limits.tenantSendsPerMinute) : 0;
    const checks: { key: string; limit: number; what: string }[] = [];
    if (keyLimit > 0) checks.push({ key: `${kind}:k:${p.kind === 'tenant' ? p.tenantId : 'operator'}.${p.keyId}`, limit: keyLimit, what: `this API key's ${kind}` });
    if (tenantLimit > 0 && p.kind === 'tenant') checks.push({ key: `${kind}:t:${p.tenantId}`, limit: tenantLimit, what: `tenant ${p.tenantId}'s ${kind}` });
    const now = this.now();
    for (const c of checks) {
      const block = this.blocked.get(c.key);
      if (block && block.until > now && block.limit === c.limit) throw this.refusal(c.what, c.limit, block.until - now);
    }
    const results = await Promise.all(checks.map(async (c) => {
      try {
        return { c, res: await this.counters[kind].consume(c.key, points) };
      } catch (e) {
        // The counters' store is down and the insurance failed: let the request through, say so.
        if (now - this.lastStoreWarning > 60_000) {
          this.lastStoreWarning = now;
          this.deps.logger.warn({ err: e }, 'rate limit counters unavailable: requests are not limited');
        }
        return null;
      }
    }));
    for (const r of results) {
      if (!r || r.res.consumedPoints <= r.c.limit) continue;
      if (this.blocked.size > 100_000) this.blocked.clear();
      this.blocked.set(r.c.key, { until: now + r.res.msBeforeNext, limit: r.c.limit });
      throw this.refusal(r.c.what, r.c.limit, r.res.msBeforeNext);
    }
  }

  private refusal(what: string, limit: number, ms: number): GraphQLError {
    return rateLimited(`rate limit exceeded: ${what} are limited to ${limit} a minute; retry after ${Math.max(1, Math.ceil(ms / 1000))} s`, Math.max(1, Math.ceil(ms / 1000)));
  }
}
