import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultDeliveryConfig } from '#delivery/config';
import { defaultWebhookConfig } from '#delivery/webhooks/config';
import { ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('gives the embedded defaults for an empty environment', () => {
    const c = loadConfig({}, '/srv/app');
    expect(c).toMatchObject({ host: '127.0.0.1', port: 4000, dataDir: path.resolve('/srv/app', 'data'), masterKey: null, logLevel: 'info' });
    expect(c.roles).toEqual(['api', 'projections', 'delivery', 'expiry']);
  });

  it('reads every variable', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const c = loadConfig({ PORT: '8080', HOST: '0.0.0.0', DATA_DIR: '/var/lib/notify', MASTER_KEY: key, ROLES: 'api, projections', LOG_LEVEL: 'debug', MAX_QUERY_DEPTH: '8', MAX_QUERY_COST: '500', WRITE_OPERATOR_KEY_FILE: 'false' });
    expect(c).toEqual({ host: '0.0.0.0', port: 8080, dataDir: '/var/lib/notify', masterKey: key, masterKeyPrevious: null, auditSigningKey: null, auditVerifyKey: null, roles: ['api', 'projections'], logLevel: 'debug', maxQueryDepth: 8, maxQueryCost: 500, writeOperatorKeyFile: false, printOperatorKey: false, sandbox: { kind: 'none' }, deliveryPlans: true, pipelineThread: true, pipelineThreads: 2, pipelineNice: 10, adapters: { eventStore: 'sqlite', readStore: 'sqlite', bus: 'sqlite', postgresUrl: null, eventStoreDbUrl: null, mongodbUrl: null, mongodbDatabase: 'notify', kafkaBrokers: [], kafkaPrefix: 'notify' }, providersFile: null, allowTenantEndpoints: false, publicUrl: null, delivery: defaultDeliveryConfig, webhooks: defaultWebhookConfig, platformProviders: [],
      api: {
        introspection: true, landingPage: true, maxAliases: 30, maxDirectives: 20, maxTokens: 3000, maxMutationFields: 20, maxBodyBytes: 1_000_000, auditScanLimit: 10_000, tenantConcurrency: 8, tenantQueue: 200,
        ws: { maxPayloadBytes: 1_000_000, keepAliveMs: 12_000, maxConnectionMs: 3_600_000, maxConnectionsPerKey: 20, maxConnectionsPerTenant: 200, maxSubscriptionsPerKey: 100, maxSubscriptionsPerTenant: 1_000 },
        rateLimits: { store: 'auto', tenantRequestsPerMinute: 6_000, keyRequestsPerMinute: 3_000, tenantSendsPerMinute: 600, keySendsPerMinute: 300 },
      },
      ops: { host: '0.0.0.0', port: 9464, drainMs: 20_000, readinessTimeoutMs: 2_000 },
    });
  });

  it('reads the ops port, its interface and the drain time, and refuses an ops port that is the API\'s', () => {
    expect(loadConfig({ OPS_PORT: '9100', OPS_HOST: '0.0.0.0', SHUTDOWN_DRAIN_MS: '5000', READINESS_TIMEOUT_MS: '500' }).ops).toEqual({ host: '0.0.0.0', port: 9100, drainMs: 5000, readinessTimeoutMs: 500 });
    expect(() => loadConfig({ OPS_PORT: '70000' })).toThrow(/OPS_PORT must be an integer from 0 to 65535, got "70000"/);
    expect(() => loadConfig({ PORT: '9000', OPS_PORT: '9000' })).toThrow(/OPS_PORT must differ from PORT/);
    // Processes without the API may use the port number the API would have.
    expect(loadConfig({ PORT: '9000', OPS_PORT: '9000', ROLES: 'delivery' }).ops.port).toBe(9000);
    expect(() => loadConfig({ SHUTDOWN_DRAIN_MS: '-1' })).toThrow(/SHUTDOWN_DRAIN_MS must be an integer from 0 to 600000/);
  });

  it('reads how many threads the pipeline takes, one or two', () => {
    expect(loadConfig({ PIPELINE_THREADS: '1' }).pipelineThreads).toBe(1);
    expect(() => loadConfig({ PIPELINE_THREADS: '3' })).toThrow(/PIPELINE_THREADS must be an integer from 1 to 2, got "3"/);
  });

  it('writes the operator key to a file only in the embedded default unless asked, and prints it only when asked', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    expect(loadConfig({})).toMatchObject({ writeOperatorKeyFile: true, printOperatorKey: false });
    const external = { MASTER_KEY: key, EVENT_STORE: 'postgres', POSTGRES_URL: 'postgres://127.0.0.1/db' };
    expect(loadConfig(external)).toMatchObject({ writeOperatorKeyFile: false, printOperatorKey: false });
    expect(loadConfig({ ...external, WRITE_OPERATOR_KEY_FILE: 'true', PRINT_OPERATOR_KEY: 'true' })).toMatchObject({ writeOperatorKeyFile: true, printOperatorKey: true });
    expect(loadConfig({ READ_STORE: 'postgres', POSTGRES_URL: 'postgres://127.0.0.1/db', MASTER_KEY: key }).writeOperatorKeyFile).toBe(false);
  });

  it('reads a previous master key for a rotation, only beside a new one', () => {
    const [a, b] = [Buffer.alloc(32, 1).toString('base64'), Buffer.alloc(32, 2).toString('hex')];
    expect(loadConfig({ MASTER_KEY: a, MASTER_KEY_PREVIOUS: b })).toMatchObject({ masterKey: a, masterKeyPrevious: b });
    expect(() => loadConfig({ MASTER_KEY_PREVIOUS: b })).toThrow(/MASTER_KEY_PREVIOUS needs MASTER_KEY/);
    expect(() => loadConfig({ MASTER_KEY: a, MASTER_KEY_PREVIOUS: 'short' })).toThrow(/MASTER_KEY_PREVIOUS must be 32 bytes/);
  });

  it('accepts a hex master key', () => {
    expect(loadConfig({ MASTER_KEY: 'ab'.repeat(32) }).masterKey).toBe('ab'.repeat(32));
  });

  it('reports every problem at once, naming the variable and the value', () => {
    try {
      loadConfig({ PORT: 'abc', ROLES: 'api,mailer', LOG_LEVEL: 'loud', MASTER_KEY: 'short', MAX_QUERY_DEPTH: '1', WRITE_OPERATOR_KEY_FILE: 'maybe' });
      expect.fail('should throw');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const problems = (e as ConfigError).problems;
      expect(problems).toHaveLength(6);
      expect(problems.join('\n')).toMatch(/PORT must be an integer from 0 to 65535, got "abc"/);
      expect(problems.join('\n')).toMatch(/ROLES .* got "api,mailer"/);
      expect(problems.join('\n')).toMatch(/LOG_LEVEL must be one of .* got "loud"/);
      expect(problems.join('\n')).toMatch(/MASTER_KEY must be 32 bytes/);
      expect(problems.join('\n')).toMatch(/MAX_QUERY_DEPTH must be an integer from 2 to 100/);
      expect(problems.join('\n')).toMatch(/WRITE_OPERATOR_KEY_FILE must be true or false/);
    }
  });

  it('selects the at-scale adapters and roles by their aliases', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const c = loadConfig({ MASTER_KEY: key, ROLES: 'command,query', EVENT_STORE: 'postgres', POSTGRES_URL: 'postgres://u:p@127.0.0.1:5432/db', READ_STORE: 'mongodb', MONGODB_URL: 'mongodb://127.0.0.1:27017/', BUS: 'kafka', KAFKA_BROKERS: '127.0.0.1:9092, 127.0.0.1:9093', DELIVERY_PLAN: 'false' });
    expect(c.roles).toEqual(['api']);
    expect(c.deliveryPlans).toBe(false);
    expect(c.adapters).toMatchObject({ eventStore: 'postgres', readStore: 'mongodb', bus: 'kafka', kafkaBrokers: ['127.0.0.1:9092', '127.0.0.1:9093'], mongodbDatabase: 'notify' });
  });

  it('names what an at-scale adapter is missing', () => {
    try {
      loadConfig({ EVENT_STORE: 'postgres', READ_STORE: 'mongodb', BUS: 'kafka', KAFKA_BROKERS: 'nohost', MONGODB_URL: 'http://x' });
      expect.fail('should throw');
    } catch (e) {
      const text = (e as ConfigError).problems.join('\n');
      expect(text).toMatch(/POSTGRES_URL is required with EVENT_STORE=postgres/);
      expect(text).toMatch(/MONGODB_URL must start with mongodb:\/\//);
      expect(text).toMatch(/KAFKA_BROKERS must list host:port entries, got "nohost"/);
      expect(text).toMatch(/MASTER_KEY is required with EVENT_STORE=postgres/);
    }
    expect(() => loadConfig({ EVENT_STORE: 'cassandra' })).toThrow(/EVENT_STORE must be one of sqlite, postgres, eventstoredb, got "cassandra"/);
    expect(() => loadConfig({ READ_STORE: 'postgres', MASTER_KEY: 'ab'.repeat(32) })).toThrow(/POSTGRES_URL is required with READ_STORE=postgres/);
    expect(() => loadConfig({ READ_STORE: 'postgres', POSTGRES_URL: 'postgres://127.0.0.1/db' })).toThrow(/MASTER_KEY is required with EVENT_STORE=sqlite and READ_STORE=postgres/);
    expect(loadConfig({ READ_STORE: 'postgres', POSTGRES_URL: 'postgres://127.0.0.1/db', MASTER_KEY: 'ab'.repeat(32) }).adapters).toMatchObject({ eventStore: 'sqlite', readStore: 'postgres', postgresUrl: 'postgres://127.0.0.1/db' });
    expect(() => loadConfig({ BUS: 'kafka' })).toThrow(/KAFKA_BROKERS is required with BUS=kafka/);
  });

  it('reads the delivery section with the others and reports its problems in the same error', () => {
    const c = loadConfig({ DELIVERY_MAX_IN_FLIGHT: '2000', PROVIDER_TWILIO_RATE: '100', PROVIDER_FCM_PRIMARY_TIMEOUT_MS: '1500', PROVIDER_SMTP_MIN_STALL_MS: '2000' });
    expect(c.delivery.maxInFlight).toBe(2000);
    expect(c.delivery.policies['twilio']!.ratePerSecond).toBe(100);
    expect(c.delivery.policies['fcm-primary']!.timeoutMs).toBe(1500);
    expect(c.delivery.policies['smtp']!.minStallMs).toBe(2000);
    expect(c.delivery.policies['sns']!.minStallMs).toBe(750);
    try {
      loadConfig({ PORT: 'abc', DELIVERY_MAX_IN_FLIGHT: 'lots', PROVIDER_SNS_RATE: '0' });
      expect.fail('should throw');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const problems = (e as ConfigError).problems;
      expect(problems).toHaveLength(3);
      expect(problems.join('\n')).toMatch(/PORT must be an integer from 0 to 65535, got "abc"/);
      expect(problems.join('\n')).toMatch(/DELIVERY_MAX_IN_FLIGHT must be an integer >= 1, got "lots"/);
      expect(problems.join('\n')).toMatch(/PROVIDER_SNS_RATE must be an integer >= 1, got "0"/);
    }
  });
});
