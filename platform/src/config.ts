import path from 'node:path';

export const ROLES = ['api', 'projections', 'delivery', 'expiry'] as const;
export type Role = (typeof ROLES)[number];
/** `command` and `query` both name the API role: one process serves mutations and queries. */
const ROLE_ALIASES: Readonly<Record<string, Role>> = { command: 'api', query: 'api' };
export const EVENT_STORES = ['sqlite', 'postgres', 'eventstoredb'] as const;
export const READ_STORES = ['sqlite', 'mongodb', 'postgres'] as const;
export const BUSES = ['sqlite', 'kafka'] as const;
export type Adapters = Readonly<{
  eventStore: (typeof EVENT_STORES)[number];
  /** The read store; the key vault and the expiry lease live beside it (PostgreSQL: schemas `notify_read` and `notify_keyvault`). */
  readStore: (typeof READ_STORES)[number];
  bus: (typeof BUSES)[number];
  postgresUrl: string | null;
  eventStoreDbUrl: string | null;
  mongodbUrl: string | null;
  /** The database of the read models; the key vault uses `<name>_keyvault`. */
  mongodbDatabase: string;
  kafkaBrokers: readonly string[];
  /** Prefix of Kafka topics and consumer groups, so deployments can share a broker. */
  kafkaPrefix: string;
}>;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const RATE_LIMIT_STORES = ['auto', 'memory', 'postgres', 'mongodb'] as const;

/** Limits of the GraphQL API against expensive, malformed and abusive requests. */
export type ApiSettings = Readonly<{
  /** Schema introspection; off by default with NODE_ENV=production. */
  introspection: boolean;
  /** Apollo's landing page on GET /graphql from a browser; follows `introspection` by default. */
  landingPage: boolean;
  maxAliases: number;
  maxDirectives: number;
  /** Lexical tokens a document may hold (checked while parsing). */
  maxTokens: number;
  /** Top-level mutation fields one request may hold. */
  maxMutationFields: number;
  maxBodyBytes: number;
  /** Events one filtered auditLog request reads at most before answering a page (possibly short) with a cursor. */
  auditScanLimit: number;
  /** HTTP requests of one tenant running at once on one replica; more wait in its queue, up to `tenantQueue`. */
  tenantConcurrency: number;
  tenantQueue: number;
  ws: Readonly<{
    maxPayloadBytes: number;
    keepAliveMs: number;
    /** A connection is closed (1001, clients reconnect) after this long, so its key is checked afresh. */
    maxConnectionMs: number;
    maxConnectionsPerKey: number;
    maxConnectionsPerTenant: number;
    maxSubscriptionsPerKey: number;
    maxSubscriptionsPerTenant: number;
  }>;
  /** Per minute; 0 turns a limit off. Tenants' overrides are set by the operator (setTenantLimits). */
  rateLimits: Readonly<{
    /** Where the counters live: `auto` picks PostgreSQL or MongoDB when the cluster has one, else memory. */
    store: (typeof RATE_LIMIT_STORES)[number];
    tenantRequestsPerMinute: number;
    keyRequestsPerMinute: number;
    tenantSendsPerMinute: number;
    keySendsPerMinute: number;
  }>;
}>;

export type Config = Readonly<{
  host: string;
  port: number;
  dataDir: string;
  /** Base64 or hex of 32 bytes; absent: the embedded default keeps one in `<dataDir>/master.key`. */
  masterKey: string | null;
  /**
   * The master key being rotated away from (MASTER_KEY_PREVIOUS): data keys it wrapped still
   * unwrap until `notify keys rotate` has wrapped every one again with MASTER_KEY.
   */
  masterKeyPrevious: string | null;
  /** Ed25519 private key (PKCS#8 PEM or base64 of the 32-byte seed) that signs audit checkpoints. */
  auditSigningKey: string | null;
  /** Ed25519 public key (SPKI PEM or base64 of 32 bytes) that checkpoints are verified against. */
  auditVerifyKey: string | null;
  roles: readonly Role[];
  logLevel: LogLevel;
  maxQueryDepth: number;
  maxQueryCost: number;
  /**
   * Write a new operator key to `<dataDir>/operator.key` (mode 0600). Defaults to true only in the
   * embedded default (SQLite stores); with external stores only when set explicitly.
   */
  writeOperatorKeyFile: boolean;
  /** Print a new operator key on stdout (PRINT_OPERATOR_KEY): only when asked. */
  printOperatorKey: boolean;
  /**
   * The provider sandbox as the platform's default integrations: none (production: only what is
   * configured), one in this process (`embedded`, what `npm start` runs), or one running elsewhere
   * (the path of the JSON description its process printed).
   */
  sandbox: Readonly<{ kind: 'none' }> | Readonly<{ kind: 'embedded'; latencyMs: number }> | Readonly<{ kind: 'file'; path: string }>;
  /** A JSON file of platform default integrations, applied at start (the file is their source of truth). */
  providersFile: string | null;
  /** Whether tenants may point their integrations at custom endpoints (operators always may). */
  allowTenantEndpoints: boolean;
  /** The service's public base URL, for providers' delivery receipts (status callbacks); null: none asked for. */
  publicUrl: string | null;
  adapters: Adapters;
  /** Whether a delivery process also plans fan-outs (one planner is enough; more are safe). */
  deliveryPlans: boolean;
  /**
   * With the api role and projections, delivery or expiry in one process: run those on a worker
   * thread of their own (PIPELINE_THREAD, default true), so requests never queue behind a
   * fan-out's work on the same event loop.
   */
  pipelineThread: boolean;
  /**
   * How many threads the pipeline takes (PIPELINE_THREADS, 1 or 2, default 2): with 2, delivery
   * runs on one, and projections, expiry and the providers' receipts on the other, so a fan-out's
   * sending and its recording each have a core where there are two.
   */
  pipelineThreads: 1 | 2;
  /**
   * The pipeline thread's scheduling priority (PIPELINE_NICE, 0 to 19, default 10; Linux): where
   * the cores are contended, requests get the CPU first and the pipeline takes what is left.
   */
  pipelineNice: number;
  api: ApiSettings;
  ops: OpsSettings;
}>;

/** The operations port every process serves (probes, metrics) and how long shutdown may take. */
export type OpsSettings = Readonly<{
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** How long a stopping process drains (finishes requests and sends in flight) before it exits anyway. */
  drainMs: number;
  /** How long one readiness check (a store or the bus answering) may take before it counts as failed. */
  readinessTimeoutMs: number;
}>;

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads environment variables for every section of the configuration and collects what is wrong
 * instead of stopping at the first problem; the loader throws one ConfigError with all of them.
 */
export class EnvReader {
  readonly problems: string[] = [];

  constructor(readonly env: Env) {}

  value(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  problem(message: string): void {
    this.problems.push(message);
  }

  integer(name: string, fallback: number, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
    const raw = this.value(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw) || n < min || n > max) {
      this.problem(max === Number.MAX_SAFE_INTEGER ? `${name} must be an integer >= ${min}, got "${raw}"` : `${name} must be an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return n;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.value(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      this.problem(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
      return fallback;
    }
    return raw as T;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.value(name);
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes'].includes(raw.toLowerCase())) return true;
    if (['0', 'false', 'no'].includes(raw.toLowerCase())) return false;
    this.problem(`${name} must be true or false, got "${raw}"`);
    return fallback;
  }

  /** Throws every problem collected so far, at once. */
  check(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}

/** The service-wide sections: where it listens, which roles and adapters, limits of the API. */
export const readServiceConfig = (r: EnvReader, cwd: string = process.cwd()): Config => {
  const value = (name: string) => r.value(name);
  const integer = (name: string, fallback: number, min: number, max: number) => r.integer(name, fallback, min, max);
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => r.oneOf(name, allowed, fallback);
  const bool = (name: string, fallback: boolean) => r.bool(name, fallback);
  const problems = { push: (m: string) => r.problem(m) };

  const rolesRaw = value('ROLES');
  let roles: Role[] = [...ROLES];
  if (rolesRaw !== undefined && rolesRaw !== 'all') {
    const listed = rolesRaw.split(',').map((r) => r.trim()).filter(Boolean).map((r) => ROLE_ALIASES[r] ?? r);
    const unknown = listed.filter((r) => !(ROLES as readonly string[]).includes(r));
    if (unknown.length > 0 || listed.length === 0) {
      problems.push(`ROLES must be "all" or a comma-separated list of ${ROLES.join(', ')}, got "${rolesRaw}" (command and query are aliases of api)`);
    } else {
      roles = [...new Set(listed as Role[])];
    }
  }

  const masterKey = value('MASTER_KEY') ?? null;
  const masterKeyPrevious = value('MASTER_KEY_PREVIOUS') ?? null;
  for (const [name, key] of [['MASTER_KEY', masterKey], ['MASTER_KEY_PREVIOUS', masterKeyPrevious]] as const) {
    if (key === null) continue;
    const bytes = /^[0-9a-fA-F]{64}$/.test(key) ? 32 : Buffer.from(key, 'base64').length;
    if (bytes !== 32) problems.push(`${name} must be 32 bytes, base64 or hex (make one: openssl rand -base64 32)`);
  }
  if (masterKeyPrevious !== null && masterKey === null) problems.push('MASTER_KEY_PREVIOUS needs MASTER_KEY (the new master key)');
  const auditSigningKey = r.env['AUDIT_SIGNING_KEY']?.trim() || null;
  const auditVerifyKey = r.env['AUDIT_VERIFY_KEY']?.trim() || null;

  const eventStore = oneOf('EVENT_STORE', EVENT_STORES, 'sqlite');
  const readStore = oneOf('READ_STORE', READ_STORES, 'sqlite');
  const bus = oneOf('BUS', BUSES, 'sqlite');
  const url = (name: string, schemes: readonly string[], neededFor: string | null): string | null => {
    const raw = value(name);
    if (raw === undefined) {
      if (neededFor) problems.push(`${name} is required with ${neededFor}`);
      return null;
    }
    if (!schemes.some((s) => raw.startsWith(`${s}://`))) problems.push(`${name} must start with ${schemes.map((s) => `${s}://`).join(' or ')}, got "${raw}"`);
    return raw;
  };
  const brokers = (value('KAFKA_BROKERS') ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  if (bus === 'kafka' && brokers.length === 0) problems.push('KAFKA_BROKERS is required with BUS=kafka (host:port, comma-separated)');
  for (const b of brokers) if (!/^[^\s:/]+:\d{1,5}$/.test(b)) problems.push(`KAFKA_BROKERS must list host:port entries, got "${b}"`);
  const mongodbDatabase = value('MONGODB_DATABASE') ?? 'notify';
  if (!/^[A-Za-z0-9_-]{1,50}$/.test(mongodbDatabase)) problems.push(`MONGODB_DATABASE must be 1 to 50 letters, digits, _ or -, got "${mongodbDatabase}"`);
  const kafkaPrefix = value('KAFKA_PREFIX') ?? 'notify';
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(kafkaPrefix)) problems.push(`KAFKA_PREFIX must be 1 to 100 letters, digits, _ or -, got "${kafkaPrefix}"`);
  const adapters: Adapters = {
    eventStore,
    readStore,
    bus,
    postgresUrl: url(
      'POSTGRES_URL',
      ['postgres', 'postgresql'],
      eventStore === 'postgres' ? 'EVENT_STORE=postgres' : readStore === 'postgres' ? 'READ_STORE=postgres' : null,
    ),
    eventStoreDbUrl: url('EVENTSTORE_CONNECTION_STRING', ['esdb', 'esdb+discover', 'kurrentdb', 'kurrentdb+discover', 'kdb', 'kdb+discover'], eventStore === 'eventstoredb' ? 'EVENT_STORE=eventstoredb' : null),
    mongodbUrl: url('MONGODB_URL', ['mongodb', 'mongodb+srv'], readStore === 'mongodb' ? 'READ_STORE=mongodb' : null),
    mongodbDatabase,
    kafkaBrokers: brokers,
    kafkaPrefix,
  };
  // Processes that share servers must share the master key; only the embedded default may keep its own.
  if (masterKey === null && (eventStore !== 'sqlite' || readStore !== 'sqlite')) {
    problems.push(`MASTER_KEY is required with EVENT_STORE=${eventStore} and READ_STORE=${readStore}: every process must wrap data keys with the same master key (make one: openssl rand -base64 32)`);
  }

  const publicUrl = (raw: string | undefined): string | null => {
    if (raw === undefined) return null;
    if (!/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(raw)) {
      problems.push(`PUBLIC_URL must be an http(s) base URL such as https://notify.example.com, got "${raw}"`);
      return null;
    }
    return raw.replace(/\/+$/, '');
  };
  const config: Config = {
    host: value('HOST') ?? '127.0.0.1',
    port: integer('PORT', 4000, 0, 65535),
    dataDir: path.resolve(cwd, value('DATA_DIR') ?? 'data'),
    masterKey,
    masterKeyPrevious,
    auditSigningKey,
    auditVerifyKey,
    roles,
    logLevel: oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    maxQueryDepth: integer('MAX_QUERY_DEPTH', 12, 2, 100),
    maxQueryCost: integer('MAX_QUERY_COST', 20_000, 10, 10_000_000),
    // Only the embedded default keeps the key beside its data; elsewhere an operator asks for it.
    writeOperatorKeyFile: bool('WRITE_OPERATOR_KEY_FILE', eventStore === 'sqlite' && readStore === 'sqlite'),
    printOperatorKey: bool('PRINT_OPERATOR_KEY', false),
    adapters,
    deliveryPlans: bool('DELIVERY_PLAN', true),
    pipelineThread: bool('PIPELINE_THREAD', true),
    pipelineThreads: integer('PIPELINE_THREADS', 2, 1, 2) as 1 | 2,
    pipelineNice: integer('PIPELINE_NICE', 10, 0, 19),
    sandbox: value('SANDBOX_FILE')
      ? { kind: 'file', path: path.resolve(cwd, value('SANDBOX_FILE')!) }
      : oneOf('SANDBOX', ['none', 'embedded'] as const, 'none') === 'embedded'
        ? { kind: 'embedded', latencyMs: integer('SANDBOX_LATENCY_MS', 20, 0, 60_000) }
        : { kind: 'none' },
    providersFile: value('PROVIDERS_FILE') ? path.resolve(cwd, value('PROVIDERS_FILE')!) : null,
    allowTenantEndpoints: bool('ALLOW_TENANT_ENDPOINTS', false),
    publicUrl: publicUrl(value('PUBLIC_URL')),
    api: readApiSettings(r, adapters),
    ops: {
      host: value('OPS_HOST') ?? value('HOST') ?? '127.0.0.1',
      port: integer('OPS_PORT', 9464, 0, 65535),
      drainMs: integer('SHUTDOWN_DRAIN_MS', 20_000, 0, 600_000),
      readinessTimeoutMs: integer('READINESS_TIMEOUT_MS', 2_000, 100, 60_000),
    },
  };
  if (config.ops.port !== 0 && config.ops.port === config.port && config.ops.host === config.host && roles.includes('api')) {
    problems.push(`OPS_PORT must differ from PORT (both ${config.port})`);
  }
  return config;
};

/** The API's limits (see README, "API in brief"). */
export const readApiSettings = (r: EnvReader, adapters: Pick<Adapters, 'postgresUrl' | 'mongodbUrl'>): ApiSettings => {
  const production = r.value('NODE_ENV') === 'production';
  const introspection = r.bool('INTROSPECTION', !production);
  const store = r.oneOf('RATE_LIMIT_STORE', RATE_LIMIT_STORES, 'auto');
  if (store === 'postgres' && !adapters.postgresUrl) r.problem('RATE_LIMIT_STORE=postgres needs POSTGRES_URL');
  if (store === 'mongodb' && !adapters.mongodbUrl) r.problem('RATE_LIMIT_STORE=mongodb needs MONGODB_URL');
  return {
    introspection,
    landingPage: r.bool('LANDING_PAGE', introspection),
    maxAliases: r.integer('MAX_QUERY_ALIASES', 30, 0, 10_000),
    maxDirectives: r.integer('MAX_QUERY_DIRECTIVES', 20, 0, 10_000),
    maxTokens: r.integer('MAX_QUERY_TOKENS', 3_000, 100, 1_000_000),
    maxMutationFields: r.integer('MAX_MUTATION_FIELDS', 20, 1, 1_000),
    maxBodyBytes: r.integer('MAX_BODY_BYTES', 1_000_000, 1_000, 100_000_000),
    auditScanLimit: r.integer('AUDIT_SCAN_LIMIT', 10_000, 100, 10_000_000),
    tenantConcurrency: r.integer('TENANT_CONCURRENCY', 8, 1, 10_000),
    tenantQueue: r.integer('TENANT_QUEUE', 200, 0, 1_000_000),
    ws: {
      maxPayloadBytes: r.integer('WS_MAX_PAYLOAD_BYTES', 1_000_000, 1_000, 100_000_000),
      keepAliveMs: r.integer('WS_KEEPALIVE_MS', 12_000, 0, 3_600_000),
      maxConnectionMs: r.integer('WS_MAX_CONNECTION_MS', 3_600_000, 1_000, 7 * 24 * 3_600_000),
      maxConnectionsPerKey: r.integer('WS_MAX_CONNECTIONS_PER_KEY', 20, 1, 1_000_000),
      maxConnectionsPerTenant: r.integer('WS_MAX_CONNECTIONS_PER_TENANT', 200, 1, 1_000_000),
      maxSubscriptionsPerKey: r.integer('WS_MAX_SUBSCRIPTIONS_PER_KEY', 100, 1, 1_000_000),
      maxSubscriptionsPerTenant: r.integer('WS_MAX_SUBSCRIPTIONS_PER_TENANT', 1_000, 1, 1_000_000),
    },
    rateLimits: {
      store,
      tenantRequestsPerMinute: r.integer('RATE_LIMIT_TENANT_REQUESTS', 6_000, 0),
      keyRequestsPerMinute: r.integer('RATE_LIMIT_KEY_REQUESTS', 3_000, 0),
      tenantSendsPerMinute: r.integer('RATE_LIMIT_TENANT_SENDS', 600, 0),
      keySendsPerMinute: r.integer('RATE_LIMIT_KEY_SENDS', 300, 0),
    },
  };
};
