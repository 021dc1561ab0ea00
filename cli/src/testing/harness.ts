import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { createClient, type Client } from 'graphql-ws';
import { loadConfig } from '../config';
import type { Clock } from '#platform/clock';
import { createLogger } from '#platform/logger';
import { startApp, type App } from '../app';
import type { DeliveryConfig } from '#delivery/config';

export type GraphQLResult<T = Record<string, any>> = {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: { code?: string; field?: string } }[];
};

export type Harness = Readonly<{
  app: App;
  dataDir: string;
  url: string;
  wsUrl: string;
  operatorKey: string;
  gql: <T = Record<string, any>>(key: string | null, query: string, variables?: Record<string, unknown>) => Promise<GraphQLResult<T>>;
  /** Like gql, but fails the test on any error and returns data. */
  ok: <T = Record<string, any>>(key: string, query: string, variables?: Record<string, unknown>) => Promise<T>;
  ws: (key: string) => Client;
  stop: () => Promise<void>;
}>;

/** Every role but delivery: for tests of the API itself, whose logs delivery would add to. */
export const API_ONLY: Readonly<Record<string, string>> = { ROLES: 'api,projections,expiry' };

const created = new Set<string>();
process.once('exit', () => {
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
});

/** The whole service on the embedded default, on a free port and a fresh data directory. */
export const startHarness = async (
  options: Readonly<{
    env?: Record<string, string>;
    clock?: Clock;
    dataDir?: string;
    delivery?: Partial<DeliveryConfig>;
    /** Every log line the service writes (debug level and up), for scans of what it logs. */
    logLines?: string[];
    /** A built dashboard to serve at /dashboard. */
    dashboardDir?: string;
  }> = {},
): Promise<Harness> => {
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'notify-e2e-'));
  created.add(dataDir);
  // One thread: the tests reach into the running roles (the router's breakers, the sandbox).
  const config = { ...loadConfig({ PORT: '0', OPS_PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'silent', SANDBOX: 'embedded', ...options.env }), pipelineThread: false };
  const logger = options.logLines
    ? createLogger('debug', {}, { write: (line: string) => void options.logLines!.push(line) })
    : undefined;
  const app = await startApp(config, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.delivery ? { delivery: options.delivery } : {}),
    ...(logger ? { logger } : {}),
    ...(options.dashboardDir ? { dashboardDir: options.dashboardDir } : {}),
  });
  const server = app.server!;
  const operatorKey = app.operatorKey ?? fs.readFileSync(path.join(dataDir, 'operator.key'), 'utf8').trim();
  const clients: Client[] = [];
  const gql = async <T,>(key: string | null, query: string, variables?: Record<string, unknown>): Promise<GraphQLResult<T>> => {
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, ...((await res.json()) as object) } as GraphQLResult<T>;
  };
  return {
    app,
    dataDir,
    url: server.url,
    wsUrl: server.wsUrl,
    operatorKey,
    gql,
    ok: async <T,>(key: string, query: string, variables?: Record<string, unknown>) => {
      const r = await gql<T>(key, query, variables);
      if (r.errors) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
      return r.data as T;
    },
    ws: (key: string) => {
      const client = createClient({
        url: server.wsUrl,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${key}` },
        retryAttempts: 0,
        lazy: true,
      });
      clients.push(client);
      return client;
    },
    stop: async () => {
      await Promise.all(clients.map((c) => c.dispose()));
      await app.stop();
    },
  };
};

/** Registers a tenant through the API and returns its admin key. */
export const registerTenant = async (h: Harness, tenantId: string, minutes = 15): Promise<string> => {
  const data = await h.ok<{ registerTenant: { adminKey: { token: string } } }>(
    h.operatorKey,
    `mutation($in: RegisterTenantInput!) { registerTenant(input: $in) { adminKey { token } } }`,
    { in: { tenantId, name: `Tenant ${tenantId}`, deliveryDeadlineMinutes: minutes } },
  );
  return data.registerTenant.adminKey.token;
};

export const USER_FIELDS = 'userId name devices { deviceId kind address } consent { start end } optIn groupIds revision';
