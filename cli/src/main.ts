#!/usr/bin/env node
import 'reflect-metadata';
import { ConfigError, loadConfig } from './config';
import { operatorKeyFile, startApp } from './app';
import { startTracing } from './tracing';
import { writePrivateFile } from '#platform/private-file';
import { ulid } from '#platform/ids';
import { watch } from './watch';
import { AUDIT_USAGE, parseAuditArgs, runAudit, UsageError } from './audit';
import { describeOutcome, KEYS_USAGE, KeysUsageError, parseKeysArgs, runKeysRotate } from './keys';

const USAGE = `usage: notify [command]

commands:
  start                        run the service (default); configured by environment variables
  watch <notificationId>       print a notification's progress live (needs API_URL, API_KEY)
  operator-key                 issue a new operator key, revoke the others, print it (same DATA_DIR)
  audit export|verify|checkpoint ...
                               replay a tenant's log (JSON Lines or CSV), verify its hash chain (against a
                               signed checkpoint), or sign a checkpoint of every chain head (AUDIT_SIGNING_KEY)
  keys rotate [--batch <n>]    wrap every data key again with MASTER_KEY (MASTER_KEY_PREVIOUS: the old one)
  help                         this text`;

const start = async (): Promise<void> => {
  const config = loadConfig(process.env);
  // Before anything opens a connection or serves a request: every span belongs to the SDK.
  const stopTracing = await startTracing(process.env);
  const app = await startApp(config);
  const url = app.server?.url;
  app.logger.info({ url, ops: app.ops?.url, roles: config.roles, dataDir: config.dataDir }, 'started');
  if (url) process.stdout.write(`\nGraphQL API:    ${url}\nSubscriptions:  ${app.server!.wsUrl}\nDashboard:      ${url.replace(/\/graphql$/, '/dashboard/')}\n`);
  if (app.ops) process.stdout.write(`Ops:            ${app.ops.url}/readyz, /livez, /startupz, /metrics\n`);
  const a = config.adapters;
  process.stdout.write(`Roles:          ${config.roles.join(', ')} (event store ${a.eventStore}, read store ${a.readStore}, bus ${a.bus})\n`);
  if (app.operatorKey) {
    // The key goes to stdout only when asked: logs of a deployment are read by many.
    const file = operatorKeyFile(config);
    if (config.printOperatorKey) process.stdout.write(`Operator key:   ${app.operatorKey}\n                (shown once${file ? `; also in ${file}` : ''})\n\n`);
    else if (file) process.stdout.write(`Operator key:   written to ${file} (readable only by you)\n\n`);
    else process.stdout.write('Operator key:   created, shown nowhere; run "notify operator-key" to issue one (or start with PRINT_OPERATOR_KEY=true)\n\n');
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal, drainMs: config.ops.drainMs }, 'stopping');
    // Past SHUTDOWN_DRAIN_MS the process exits anyway; the manifests' grace period is longer.
    const force = setTimeout(() => {
      app.logger.error({ drainMs: config.ops.drainMs }, 'drain did not finish in time; exiting');
      process.exit(1);
    }, config.ops.drainMs);
    force.unref();
    app.stop().then(() => stopTracing?.()).then(
      () => process.exit(0),
      (e) => {
        app.logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
};

/** Works beside a running embedded service: SQLite allows a second writer, and keys are read fresh. */
const rotateOperatorKey = async (): Promise<void> => {
  const config = { ...loadConfig(process.env), roles: [] };
  const app = await startApp(config);
  try {
    const token = await app.commands.operator.rotateKey({ keyId: 'cli', requestId: ulid() });
    const file = operatorKeyFile(config);
    if (file) writePrivateFile(file, token + '\n');
    // Asked for by running the command: the one place the key is printed without PRINT_OPERATOR_KEY.
    process.stdout.write(`${token}\n`);
  } finally {
    await app.stop();
  }
};

const audit = async (argv: readonly string[]): Promise<void> => {
  let args;
  try {
    args = parseAuditArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message}\n${AUDIT_USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const app = await startApp({ ...loadConfig(process.env), roles: [] });
  try {
    process.exitCode = await runAudit(app, args);
  } catch (e) {
    // A missing key, an unreadable or forged checkpoint: say what, no stack trace.
    if (!(e instanceof Error) || e instanceof ConfigError) throw e;
    process.stderr.write(`${e.message}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  } finally {
    await app.stop();
  }
};

const keys = async (argv: readonly string[]): Promise<void> => {
  let args;
  try {
    args = parseKeysArgs(argv);
  } catch (e) {
    if (!(e instanceof KeysUsageError)) throw e;
    process.stderr.write(`${e.message}\n${KEYS_USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const app = await startApp({ ...loadConfig(process.env), roles: [] });
  const abort = new AbortController();
  const interrupt = () => abort.abort();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    const outcome = await runKeysRotate(app, args, process.stderr, { signal: abort.signal });
    process.stdout.write(describeOutcome(outcome, app.cipher.masterKeyId));
    process.exitCode = outcome.rotation.complete && outcome.heads.invalid.length === 0 ? 0 : 1;
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    process.stderr.write(`\n${e.message}\n`);
    process.exitCode = 1;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await app.stop();
  }
};

const main = async (argv: readonly string[]): Promise<void> => {
  const [command = 'start', ...rest] = argv;
  switch (command) {
    case 'start':
      return start();
    case 'operator-key':
      return rotateOperatorKey();
    case 'watch':
      return watch(rest, process.env);
    case 'audit':
      return audit(rest);
    case 'keys':
      return keys(rest);
    case 'help':
    case '--help':
      process.stdout.write(USAGE + '\n');
      return;
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
      process.exitCode = 2;
  }
};

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof ConfigError) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
