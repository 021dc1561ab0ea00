import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { Registry } from 'prom-client';
import type { ServiceConfig } from './config';
import { createLogger, type Logger } from '#platform/logger';
import { systemClock, type Clock } from '#platform/clock';
import { randomIds, ulid, type IdGenerator } from '#platform/ids';
import { openInfrastructure, sqliteFiles, type Infrastructure } from './adapters';
import { startWalCheckpointer, type WalCheckpointer } from '#platform/sqlite-checkpointer';
import { processHealth, type Health } from '#platform/health';
import { masterKeyId, PersonalDataCipher, parseMasterKey, type MasterKeyring } from '#platform/crypto/personal-data';
import { chainKeys as chainKeysOf, type ChainKeys } from '#platform/event-store/chain';
import { writePrivateFile } from '#platform/private-file';
import type { RunningServer } from '#api/server';
import { startApi } from '#api/start';
import { openRateLimitBackend } from '#api/rate-limit-backend';
import { receiptRoute } from '#api/receipts';
import { dashboardRoute } from '#api/dashboard';
import { createReceiptIntake } from '#delivery/receipts/intake';
import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { KeyVault } from '#platform/key-vault/port';
import { createCommands, type Commands } from '#command/application';
import { Shredder } from '#expiry/shredder';
import { ExpiryService } from '#expiry/service';
import { evictErasedKeys } from '#expiry/evictor';
import { LiveHub } from '#query/live/hub';
import { startProjections } from '#projections/runner';
import { allCollections, allReadModels, audienceReadModels, runnerGroups } from '#projections/index';
import type { JobBus } from '#platform/bus/port';
import type { DeliveryConfig } from '#delivery/config';
import { startWebhookDispatcher } from '#delivery/webhooks/index';
import type { WebhookConfig } from '#delivery/webhooks/config';
import { cachedPerKey, cachedSendsUnderWay, estimateAdmission, sendsUnderWay } from '#delivery/admission';
import { chainCapacity } from '#delivery/routing/capacity';
import { testIntegration } from '#delivery/routing/test-integration';
import { PLATFORM } from '#schema/integrations';
import { applyPlatformDefaults } from './providers';
import { createMetrics, type DeliveryMetrics } from '#delivery/metrics';
import { startDelivery, type DeliveryRole } from '#delivery/runtime';
import { startSandbox, type Sandbox, type SandboxDescription } from '#sandbox/index';
import { sandboxProviderInputs } from '#sandbox/inputs';
import { waitForReadModels } from '#projections/wait';
import { createRegistry } from '#platform/metrics';
import { startOpsServer, type OpsServer } from '#platform/ops/server';
import { checkReadiness, type ReadinessCheck } from '#platform/ops/readiness';
import { readinessChecks, registerRoleMetrics } from './ops';
import { PIPELINE_ROLES, pipelineGroups, startPipelineThread, type PipelineThread } from './pipeline';

export type App = Readonly<{
  config: ServiceConfig;
  logger: Logger;
  eventStore: EventStore;
  readStore: ReadStore;
  vault: KeyVault;
  cipher: PersonalDataCipher;
  /** Keys that authenticate the audit chain's heads (derived from the master keys). */
  chainKeys: ChainKeys;
  commands: Commands;
  expiry: ExpiryService | null;
  bus: JobBus;
  deliveryConfig: DeliveryConfig;
  delivery: DeliveryRole | null;
  /** The provider sandbox this process started (embedded mode), for tests and the walk-through. */
  sandbox: Sandbox | null;
  metrics: DeliveryMetrics;
  server: RunningServer | null;
  /** The ops port (/livez, /startupz, /readyz, /metrics); none for a command-line tool (no roles). */
  ops: OpsServer | null;
  /** The operator key, when this start created it (first start on an empty store). */
  operatorKey: string | null;
  /**
   * Readiness of this process's long-running parts (projections, expiry, key evictor, planner,
   * live hub, webhook outbox): each restarts itself after a store error and is unhealthy meanwhile.
   */
  health: Health;
  /** Resolves when the read models reflect every event appended so far. */
  settle: () => Promise<void>;
  stop: () => Promise<void>;
}>;

export type AppOptions = Readonly<{
  clock?: Clock;
  ids?: IdGenerator;
  logger?: Logger;
  expiry?: Partial<Pick<ConstructorParameters<typeof ExpiryService>[0], 'onShredded' | 'batchSize' | 'leaseTtlMs' | 'restartBackoff' | 'history'>>;
  /** Tests: wraps the opened stores (to inject faults). */
  wrapInfrastructure?: (infrastructure: Infrastructure) => Infrastructure;
  /** Overrides of the delivery configuration (tests), over what the environment configured. */
  delivery?: Partial<DeliveryConfig>;
  webhooks?: Partial<WebhookConfig>;
  /** Whether this start serves the ops port (false: a thread of a process whose main thread does). */
  ops?: boolean;
  /** Where the built dashboard is (tests build their own); the clone's `dist/dashboard` by default. */
  dashboardDir?: string;
  /** Whether this start's SQLite connections checkpoint their WAL (false: the pipeline thread, whose process's checkpointer does). */
  checkpoints?: boolean;
}>;

/** The clone's root, whether this runs from the sources (tests) or from dist/. */
const cloneRoot = (): string => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
};

/**
 * The embedded default keeps its master key beside the data; production passes MASTER_KEY, and
 * during a rotation MASTER_KEY_PREVIOUS too (keys it wrapped unwrap until `notify keys rotate`
 * has wrapped them all again).
 */
export const masterKeysOf = (config: ServiceConfig, logger: Logger): MasterKeyring => {
  const previous = config.masterKeyPrevious ? [parseMasterKey(config.masterKeyPrevious)] : [];
  if (config.masterKey) return { current: parseMasterKey(config.masterKey), previous };
  const file = path.join(config.dataDir, 'master.key');
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    logger.warn({ file }, 'no MASTER_KEY configured: generated one for the embedded default; set MASTER_KEY in production');
  }
  return { current: parseMasterKey(fs.readFileSync(file, 'utf8').trim()), previous };
};

/** Where the operator key goes: a private file only where configured (the embedded default). */
export const operatorKeyFile = (config: ServiceConfig): string | null =>
  config.writeOperatorKeyFile ? path.join(config.dataDir, 'operator.key') : null;

/** How old a view of the sends under way the admission of a new one may use. */
const ADMISSION_VIEW_MS = 100;
/** How old a view of an owner's integrations (their quotas) the admission may use. */
const ADMISSION_INTEGRATIONS_MS = 1_000;

/** Starts the roles named in the configuration, on the embedded adapters. */
export const startApp = async (config: ServiceConfig, options: AppOptions = {}): Promise<App> => {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  const registry = createRegistry();
  // Listening before anything starts: liveness answers during a long start, readiness once all of it runs.
  let started = false;
  let draining = false;
  const checks: ReadinessCheck[] = [];
  const extraMetrics: (() => Promise<string>)[] = [];
  const ops = config.roles.length === 0 || options.ops === false ? null : await startOpsServer(config.ops.host, config.ops.port, {
    started: () => started,
    readiness: () => checkReadiness(checks, processHealth.report(), draining, config.ops.readinessTimeoutMs),
    registry,
    extraMetrics,
  }, logger);
  try {
    return await startRoles(config, options, { logger, clock, registry, ops, checks, extraMetrics, markStarted: () => (started = true), markDraining: () => (draining = true) });
  } catch (e) {
    await ops?.stop();
    throw e;
  }
};

type OpsWiring = Readonly<{
  logger: Logger;
  clock: Clock;
  registry: Registry;
  ops: OpsServer | null;
  checks: ReadinessCheck[];
  extraMetrics: (() => Promise<string>)[];
  markStarted: () => void;
  markDraining: () => void;
}>;

const startRoles = async (config: ServiceConfig, options: AppOptions, wiring: OpsWiring): Promise<App> => {
  const { logger, clock, registry, ops } = wiring;
  fs.mkdirSync(config.dataDir, { recursive: true });
  const masters = masterKeysOf(config, logger);
  // Chain heads are authenticated with a key derived from the master key (the previous one still verifies).
  const chainKeys = chainKeysOf([masters.current, ...(masters.previous ?? [])].map((key) => ({ id: masterKeyId(key), key })));
  const threaded = config.pipelineThread && config.roles.includes('api') && config.roles.some((r) => PIPELINE_ROLES.includes(r));
  // With the pipeline on a thread of its own, a third thread checkpoints the SQLite files (below):
  // no request's commit and no fan-out batch's pays for copying pages and the fsyncs around it.
  // A process without the API appends in the background: commands do not queue behind its appends.
  const opened = await openInfrastructure(config, logger, { chainKeys, checkpoints: options.checkpoints ?? !threaded, background: !config.roles.includes('api') });
  let checkpointer: WalCheckpointer | null = null;
  if (threaded && sqliteFiles(config).length > 0) {
    try {
      checkpointer = await startWalCheckpointer({ paths: sqliteFiles(config), onError: (message) => logger.error({ message }, 'WAL checkpoint failed; commits checkpoint past the fallback size') });
    } catch (e) {
      await opened.close();
      throw e;
    }
  }
  const infrastructure = options.wrapInfrastructure ? options.wrapInfrastructure(opened) : opened;
  const health = processHealth;
  const { eventStore, readStore, vault, bus } = infrastructure;
  const cipher = new PersonalDataCipher(vault, masters);
  const shredder = new Shredder({ eventStore, vault, cipher, clock });
  const deliveryConfig: DeliveryConfig = { ...config.delivery, ...options.delivery };
  const underWay = cachedSendsUnderWay(sendsUnderWay(readStore), ADMISSION_VIEW_MS);
  const integrationsView = cachedPerKey((owner) => commands.integrations.state(owner), ADMISSION_INTEGRATIONS_MS);
  const commands = createCommands({
    eventStore,
    cipher,
    clock,
    ids: options.ids ?? randomIds,
    eraser: shredder,
    webhookUrls: { allowHttpLocalhost: config.webhooks.allowHttpLocalhost },
    admission: async (tenantId, target, minutes, now) => {
      const [own, platform] = await Promise.all([integrationsView(tenantId), integrationsView(PLATFORM)]);
      return estimateAdmission(readStore, (channel) => chainCapacity(deliveryConfig, own, platform, channel), deliveryConfig.clusterRatePerSecond, tenantId, target, minutes, now, Math.random, underWay);
    },
  });
  // Delivery's metrics are exposed by the thread that delivers (see below).
  const metrics = createMetrics(threaded ? createRegistry() : registry);
  // With the API here, projections, delivery and expiry go to threads of their own (started below).
  const roles = threaded ? config.roles.filter((r) => !PIPELINE_ROLES.includes(r)) : config.roles;
  const pipelines: PipelineThread[] = [];
  wiring.checks.push(...readinessChecks(roles, infrastructure));
  registerRoleMetrics(registry, roles, infrastructure, clock, config.deliveryPlans);
  const stops: (() => Promise<void>)[] = [];
  // Every role reads the read models' collections, so declare them even where projections don't run.
  await readStore.ensureCollections(allCollections);

  const startRunner = (name: string, models: typeof allReadModels) =>
    startProjections({ eventStore, readStore, models, health: health.register(`projections:${name}`), onError: (e) => logger.error({ err: e, runner: name }, 'projection failed; restarting from its checkpoints') });
  const projections = roles.includes('projections')
    ? Object.fromEntries(await Promise.all(Object.entries(runnerGroups).map(async ([name, models]) => [name, await startRunner(name, models)] as const)))
    : null;
  if (projections) stops.push(async () => {
    for (const runner of Object.values(projections).reverse()) await runner.stop();
  });

  let expiry: ExpiryService | null = null;
  if (roles.includes('expiry')) {
    const leases = await infrastructure.openLeases();
    expiry = new ExpiryService({ eventStore, readStore, leases, shredder, clock, logger, instanceId: `${os.hostname()}:${process.pid}:${ulid()}`, ...options.expiry });
    await expiry.start();
    stops.push(async () => {
      await expiry!.stop();
      await leases.close();
    });
  }

  // Every process that decrypts keeps a key cache; an erasure anywhere must empty it here too.
  if (roles.includes('api') || roles.includes('delivery')) {
    const evictor = await evictErasedKeys(eventStore, cipher, {
      health: health.register('key-evictor'),
      onError: (e) => logger.error({ err: e }, 'key eviction failed; keys are read from the vault until it resumes'),
    });
    stops.push(() => evictor.stop());
  }

  // The platform's default integrations: the sandbox's (npm start), and PROVIDERS_FILE's.
  let sandbox: Sandbox | null = null;
  let description: SandboxDescription | null = null;
  if (config.sandbox.kind === 'embedded') {
    sandbox = await startSandbox({ faults: { latencyMs: config.sandbox.latencyMs } });
    description = sandbox.describe();
    stops.push(() => sandbox!.close());
  } else if (config.sandbox.kind === 'file') {
    description = JSON.parse(fs.readFileSync(config.sandbox.path, 'utf8')) as SandboxDescription;
  }
  const fromFile = config.platformProviders;
  if (description || config.providersFile) {
    const fileNames = new Set(fromFile.map((i) => i.name));
    const sandboxInputs = description ? sandboxProviderInputs(description).filter((i) => !fileNames.has(i.name)) : [];
    await applyPlatformDefaults(commands, [...sandboxInputs, ...fromFile]);
  }

  let publicUrl = config.publicUrl;
  let delivery: DeliveryRole | null = null;
  if (roles.includes('delivery')) {
    // A send waits once for who may receive it (the audience's read models), never for the activity.
    const audience = projections?.['audience'];
    const readModelsCaughtUp = audience
      ? (position: number) => audience.caughtUp(position)
      : (position: number) => waitForReadModels(readStore, audienceReadModels.filter((m) => m.name === 'users' || m.name === 'groups'), position, { eventStore });
    delivery = await startDelivery({
      eventStore, readStore, bus, cipher, clock, logger, metrics, readModelsCaughtUp,
      config: deliveryConfig,
      // Receipts come back to the API (in this process, its URL once it listens).
      receiptsUrl: (owner, name, vendor) => (publicUrl ? `${publicUrl}/webhooks/${vendor}/${owner}/${name}` : undefined),
      onCredentialsRejected: (owner, name, fingerprint, code) => commands.integrations.rejectCredentials(owner, name, fingerprint, code),
      plan: config.deliveryPlans,
      // Where the projections run elsewhere (another process, or the other pipeline thread) four
      // dispatch rounds may overlap, each waiting for its intent's append; where they share this
      // thread's loop, one.
      dispatchRounds: projections ? 1 : 4,
    });
    // Stopped before the sandbox, after the API: in-flight sends finish and are recorded.
    stops.splice(stops.length - (sandbox ? 1 : 0), 0, () => delivery!.stop());
    // Tenants' status webhooks: one dispatcher at a time in the cluster, behind a lease.
    const webhookLeases = await infrastructure.openLeases();
    const webhooks = await startWebhookDispatcher({
      eventStore, readStore, cipher, clock, logger,
      config: { ...config.webhooks, ...options.webhooks },
      leases: webhookLeases,
      instanceId: `${os.hostname()}:${process.pid}:${ulid()}`,
    });
    stops.splice(stops.length - (sandbox ? 1 : 0), 0, async () => {
      await webhooks.stop();
      await webhookLeases.close();
    });
  }

  let server: RunningServer | null = null;
  let operatorKey: string | null = null;
  if (roles.includes('api')) {
    const localReceipts = createReceiptIntake({ commands, cipher, logger });
    operatorKey = await commands.operator.bootstrapKey();
    const keyFile = operatorKeyFile(config);
    if (operatorKey && keyFile) writePrivateFile(keyFile, operatorKey + '\n');
    const live = new LiveHub({ eventStore, readStore, logger });
    await live.start();
    stops.push(() => live.stop());
    const rateLimitCounters = await openRateLimitBackend(config.api.rateLimits, config.adapters);
    stops.push(() => rateLimitCounters.close());
    server = await startApi({
      services: {
        commands, eventStore, readStore, cipher, live, chainKeys,
        providers: {
          test: (owner, name, address) => testIntegration({ eventStore, cipher }, owner, name, address),
          allowTenantEndpoints: config.allowTenantEndpoints,
        },
      },
      host: config.host,
      port: config.port,
      logger,
      limits: { ...config.api, maxDepth: config.maxQueryDepth, maxCost: config.maxQueryCost },
      ws: config.api.ws,
      rateLimits: { ...config.api.rateLimits, backend: rateLimitCounters.backend },
      routes: [
        // Providers' receipts are recorded on a pipeline thread once it is up: with two, the one
        // that does not send (a receipt per delivery would slow the sending).
        receiptRoute({ handle: (c) => (pipelines.at(-1)?.receipt(c) ?? localReceipts.handle(c)) }, () => config.publicUrl),
        dashboardRoute(options.dashboardDir ?? path.join(cloneRoot(), 'dist', 'dashboard')),
        // What the api readiness check calls: the API's own port takes connections and answers.
        (req, res) => {
          if (req.url !== '/livez') return false;
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
          return true;
        },
        // Kept for load balancers that probe the API's own port: the ops port's readiness.
        async (req, res) => {
          if (req.url !== '/healthz') return false;
          const ready = (await checkReadiness(wiring.checks, health.report(), false, config.ops.readinessTimeoutMs)).ready;
          res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ready ? 'ok' : 'not ready' }));
          return true;
        },
      ],
      registry,
    });
    stops.unshift(() => server!.stop());
    const apiLivez = server.url.replace(/\/graphql$/, '/livez');
    wiring.checks.push({
      name: 'api',
      check: async () => {
        const res = await fetch(apiLivez, { signal: AbortSignal.timeout(config.ops.readinessTimeoutMs) });
        if (res.status !== 200) throw new Error(`the API answered ${res.status}`);
      },
    });
    // Without PUBLIC_URL, receipts of this process's own sends come back to where it listens.
    publicUrl ??= server.url.replace(/\/graphql$/, '');
  }

  if (threaded) {
    try {
      for (const group of pipelineGroups(config.roles, config.pipelineThreads)) {
        pipelines.push(await startPipelineThread({ roles: group, publicUrl }, logger, (reason) => {
          logger.fatal({ reason }, 'a pipeline thread ended: exiting for a restart');
          process.exit(1);
        }));
      }
    } catch (e) {
      for (const thread of pipelines) await thread.stop().catch(() => {});
      for (const stop of stops) await stop().catch(() => {});
      await infrastructure.close();
      await checkpointer?.stop();
      throw e;
    }
    for (const thread of pipelines) {
      // Its metrics are counted where it runs; its readiness is its own stores' and components'.
      wiring.extraMetrics.push(() => thread.metrics());
      wiring.checks.push({ name: pipelines.length === 1 ? 'pipeline-thread' : `pipeline-thread:${thread.roles.join('+')}`, check: () => thread.ready() });
    }
    // After the API stops taking requests, before the sandbox closes: in-flight sends finish.
    stops.splice(1, 0, () => Promise.all(pipelines.map((thread) => thread.stop())).then(() => undefined));
  }

  const app: App = {
    config,
    logger,
    eventStore,
    readStore,
    vault,
    cipher,
    chainKeys,
    commands,
    expiry,
    bus,
    deliveryConfig,
    delivery,
    sandbox,
    metrics,
    server,
    ops,
    operatorKey,
    health,
    settle: async () => {
      const head = await eventStore.headPosition();
      if (projections) await Promise.all(Object.values(projections).map((runner) => runner.caughtUp(head)));
      if (expiry) await expiry.caughtUp(head);
    },
    stop: async () => {
      wiring.markDraining();
      try {
        for (const stop of stops) await stop();
        await infrastructure.close();
        await checkpointer?.stop();
      } finally {
        await ops?.stop();
      }
    },
  };
  wiring.markStarted();
  return app;
};
