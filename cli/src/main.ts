#!/usr/bin/env node
import 'reflect-metadata';
import { ConfigError, loadConfig } from './config';
import { startApp } from './app';
import fs from 'node:fs';
import path from 'node:path';
import { ulid } from '#platform/ids';
import { watch } from './watch';
import { AUDIT_USAGE, parseAuditArgs, runAudit, UsageError } from './audit';

const USAGE = `usage: notify [command]

commands:
  start                        run the service (default); configured by environment variables
  watch <notificationId>       print a notification's progress live (needs API_URL, API_KEY)
  operator-key                 issue a new operator key, revoke the others, print it (same DATA_DIR)
  audit export|verify ...      replay a tenant's log (JSON Lines or CSV), or verify its hash chain
  help                         this text`;

const start = async (): Promise<void> => {
  const config = loadConfig(process.env);
  const app = await startApp(config);
  const url = app.server?.url;
  app.logger.info({ url, roles: config.roles, dataDir: config.dataDir }, 'started');
  if (url) process.stdout.write(`\nGraphQL API:    ${url}\nSubscriptions:  ${app.server!.wsUrl}\n`);
  const a = config.adapters;
  process.stdout.write(`Roles:          ${config.roles.join(', ')} (event store ${a.eventStore}, read store ${a.readStore}, bus ${a.bus})\n`);
  if (app.operatorKey) {
    process.stdout.write(`Operator key:   ${app.operatorKey}\n                (shown once; also written to ${config.dataDir}/operator.key in the embedded default)\n\n`);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app.stop().then(
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
    if (config.writeOperatorKeyFile) fs.writeFileSync(path.join(config.dataDir, 'operator.key'), token + '\n', { mode: 0o600 });
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
  } finally {
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
