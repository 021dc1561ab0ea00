import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { Config } from '../../platform/src/config';
import { createLogger, type Logger } from '../../platform/src/logger';
import { systemClock, type Clock } from '../../platform/src/clock';
import { randomIds, ulid, type IdGenerator } from '../../platform/src/ids';
import { openInfrastructure } from './adapters';
import { PersonalDataCipher, parseMasterKey } from '../../platform/src/crypto/personal-data';
import { startGraphQLServer, httpError, type RunningServer } from '../../platform/src/graphql/server';
import type { EventStore } from '../../platform/src/event-store/port';
import type { ReadStore } from '../../platform/src/read-store/port';
import type { KeyVault } from '../../platform/src/key-vault/port';
import { CommandService } from '../../command/src/application';
import { Shredder } from '../../command/src/expiry/shredder';
import { ExpiryService } from '../../command/src/expiry/service';
import { evictErasedKeys } from '../../platform/src/crypto/evictor';
import { authenticate } from '../../command/src/auth/authenticator';
import type { GraphQLContext, Services } from '../../command/src/graphql/context';
import { isDomainError } from '../../schema/src/errors';
import { LiveHub } from '../../query/src/live/hub';
import { startProjections } from '../../projections/src/runner';
import { allCollections, allReadModels } from '../../projections/src/index';
import { apiSchema } from './schema';
import type { JobBus } from '../../platform/src/bus/port';
import { deliveryConfigFrom, type DeliveryConfig } from '../../delivery/src/config';
import { estimateAdmission } from '../../delivery/src/admission';
import { createMetrics, type DeliveryMetrics } from '../../delivery/src/metrics';
import { startDelivery, type DeliveryRole } from '../../delivery/src/runtime';
import { startSandbox, type Sandbox, type SandboxDescription } from '../../delivery/src/sandbox';
import { createProviders } from '../../delivery/src/providers';
import { waitForReadModels } from '../../projections/src/wait';

export type App = Readonly<{
  config: Config;
  logger: Logger;
  eventStore: EventStore;
  readStore: ReadStore;
  vault: KeyVault;
  cipher: PersonalDataCipher;
  commands: CommandService;
  expiry: ExpiryService | null;
  bus: JobBus;
  deliveryConfig: DeliveryConfig;
  delivery: DeliveryRole | null;
  /** The provider sandbox this process started (embedded mode), for tests and the walk-through. */
  sandbox: Sandbox | null;
  metrics: DeliveryMetrics;
  server: RunningServer | null;
  /** The operator key, when this start created it (first start on an empty store). */
  operatorKey: string | null;
  /** Resolves when the read models reflect every event appended so far. */
  settle: () => Promise<void>;
  stop: () => Promise<void>;
}>;

export type AppOptions = Readonly<{
  clock?: Clock;
  ids?: IdGenerator;
  logger?: Logger;
  expiry?: Partial<Pick<ConstructorParameters<typeof ExpiryService>[0], 'onShredded' | 'batchSize' | 'leaseTtlMs'>>;
  /** Overrides of the delivery configuration (tests); environment variables apply first. */
  delivery?: Partial<DeliveryConfig>;
}>;

/** The embedded default keeps its master key beside the data; production passes MASTER_KEY. */
const masterKeyOf = (config: Config, logger: Logger): Buffer => {
  if (config.masterKey) return parseMasterKey(config.masterKey);
  const file = path.join(config.dataDir, 'master.key');
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    logger.warn({ file }, 'no MASTER_KEY configured: generated one for the embedded default; set MASTER_KEY in production');
  }
  return parseMasterKey(fs.readFileSync(file, 'utf8').trim());
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

const requestIdOf = (req: http.IncomingMessage): string => {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : ulid();
};

/** Starts the roles named in the configuration, on the embedded adapters. */
export const startApp = async (config: Config, options: AppOptions = {}): Promise<App> => {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  fs.mkdirSync(config.dataDir, { recursive: true });
  const infrastructure = await openInfrastructure(config, logger);
  const { eventStore, readStore, vault, bus } = infrastructure;
  const cipher = new PersonalDataCipher(vault, masterKeyOf(config, logger));
  const shredder = new Shredder({ eventStore, vault, cipher, clock });
  const deliveryConfig: DeliveryConfig = { ...deliveryConfigFrom(process.env), ...options.delivery };
  const commands = new CommandService({
    eventStore,
    cipher,
    clock,
    ids: options.ids ?? randomIds,
    shredder,
    admission: async (tenantId, target, minutes, now) => estimateAdmission(readStore, deliveryConfig, tenantId, target, minutes, now),
  });
  const metrics = createMetrics();
  const stops: (() => Promise<void>)[] = [];
  // Every role reads the read models' collections, so declare them even where projections don't run.
  await readStore.ensureCollections(allCollections);

  const projections = config.roles.includes('projections')
    ? await startProjections({
        eventStore,
        readStore,
        models: allReadModels,
        onError: (e) => logger.error({ err: e }, 'projection failed'),
      })
    : null;
  if (projections) stops.push(() => projections.stop());

  let expiry: ExpiryService | null = null;
  if (config.roles.includes('expiry')) {
    const leases = await infrastructure.openLeases();
    expiry = new ExpiryService({ eventStore, readStore, leases, shredder, clock, logger, instanceId: `${os.hostname()}:${process.pid}:${ulid()}`, ...options.expiry });
    await expiry.start();
    stops.push(async () => {
      await expiry!.stop();
      await leases.close();
    });
  }

  // Every process that decrypts keeps a key cache; an erasure anywhere must empty it here too.
  if (config.roles.includes('api') || config.roles.includes('delivery')) {
    const evictor = await evictErasedKeys(eventStore, cipher, (e) => logger.error({ err: e }, 'key eviction failed'));
    stops.push(() => evictor.stop());
  }

  let delivery: DeliveryRole | null = null;
  let sandbox: Sandbox | null = null;
  if (config.roles.includes('delivery')) {
    let description: SandboxDescription;
    if (config.sandbox.kind === 'embedded') {
      sandbox = await startSandbox({ faults: { latencyMs: config.sandbox.latencyMs } });
      description = sandbox.describe();
      stops.push(() => sandbox!.close());
    } else {
      description = JSON.parse(fs.readFileSync(config.sandbox.path, 'utf8')) as SandboxDescription;
    }
    const readModelsCaughtUp = projections
      ? (position: number) => projections.caughtUp(position)
      : (position: number) => waitForReadModels(readStore, ['users', 'timeline'], position);
    delivery = await startDelivery({
      eventStore, readStore, bus, cipher, clock, logger, metrics, readModelsCaughtUp,
      config: deliveryConfig,
      providers: createProviders({ sandbox: description }).all,
      plan: config.deliveryPlans,
      // The read models are another process's: each round waits a projection cycle, so four overlap.
      dispatchRounds: projections ? 1 : 4,
    });
    // Stopped before the sandbox, after the API: in-flight sends finish and are recorded.
    stops.splice(stops.length - (sandbox ? 1 : 0), 0, () => delivery!.stop());
  }

  let server: RunningServer | null = null;
  let operatorKey: string | null = null;
  if (config.roles.includes('api')) {
    operatorKey = await commands.bootstrapOperatorKey();
    if (operatorKey && config.writeOperatorKeyFile) {
      fs.writeFileSync(path.join(config.dataDir, 'operator.key'), operatorKey + '\n', { mode: 0o600 });
    }
    const live = new LiveHub({ eventStore, readStore, logger });
    await live.start();
    stops.push(() => live.stop());
    const services: Services = { commands, eventStore, readStore, cipher, live };
    const context = async (authorization: unknown, requestId: string): Promise<GraphQLContext> => {
      try {
        const principal = await authenticate(commands, typeof authorization === 'string' ? authorization : null);
        return { principal, requestId, services };
      } catch (e) {
        if (isDomainError(e)) throw httpError(e.message, e.code, 401);
        throw e;
      }
    };
    server = await startGraphQLServer<GraphQLContext>({
      schema: await apiSchema(),
      host: config.host,
      port: config.port,
      logger,
      maxDepth: config.maxQueryDepth,
      maxCost: config.maxQueryCost,
      httpContext: (req) => context(req.headers.authorization, requestIdOf(req)),
      wsContext: (params) => context(params?.['authorization'] ?? params?.['Authorization'], ulid()),
      routes: [
        (req, res) => {
          if (req.url !== '/healthz') return false;
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
          return true;
        },
        async (req, res) => {
          if (req.url !== '/metrics') return false;
          res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(await metrics.registry.metrics());
          return true;
        },
      ],
    });
    stops.unshift(() => server!.stop());
  }

  return {
    config,
    logger,
    eventStore,
    readStore,
    vault,
    cipher,
    commands,
    expiry,
    bus,
    deliveryConfig,
    delivery,
    sandbox,
    metrics,
    server,
    operatorKey,
    settle: async () => {
      const head = await eventStore.headPosition();
      if (projections) await projections.caughtUp(head);
      if (expiry) await expiry.caughtUp(head);
    },
    stop: async () => {
      for (const stop of stops) await stop();
      await infrastructure.close();
    },
  };
};
