import http from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger';
import type { Readiness } from './readiness';

export type OpsProbes = Readonly<{
  /** Set once every role this process runs has started (the startup probe). */
  started: () => boolean;
  readiness: () => Promise<Readiness>;
  registry: Registry;
  /** Expositions of other threads of this process (the pipeline thread's), merged in. */
  extraMetrics?: readonly (() => Promise<string>)[];
}>;

/**
 * Appends other expositions' metric families to `own`, skipping families `own` already has
 * (process-wide ones, which every thread's registry reports alike).
 */
export const mergeExpositions = (own: string, others: readonly string[]): string => {
  const names = new Set([...own.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
  const out = [own.endsWith('\n') ? own : `${own}\n`];
  for (const other of others) {
    for (const family of other.split(/\n(?=# HELP )/)) {
      const name = /^# HELP (\S+)/.exec(family)?.[1];
      if (!name || names.has(name)) continue;
      names.add(name);
      out.push(family.endsWith('\n') ? family : `${family}\n`);
    }
  }
  return out.join('');
};

export type OpsServer = Readonly<{ port: number; url: string; stop: () => Promise<void> }>;

const json = (res: http.ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
};

/**
 * The operations endpoints, the same in every process whatever its roles: /livez (the event loop
 * answers), /startupz, /readyz (dependencies answer, components run, not draining) and /metrics.
 */
export const opsHandler = (probes: OpsProbes, logger: Logger) => async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
  const path = (req.url ?? '/').split('?')[0];
  try {
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'GET only' });
    switch (path) {
      case '/livez':
        return json(res, 200, { status: 'ok' });
      case '/startupz':
        return probes.started() ? json(res, 200, { status: 'started' }) : json(res, 503, { status: 'starting' });
      case '/readyz': {
        if (!probes.started()) return json(res, 503, { status: 'starting' });
        const r = await probes.readiness();
        return json(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : r.draining ? 'draining' : 'not ready', ...r });
      }
      case '/metrics': {
        const own = await probes.registry.metrics();
        const text = probes.extraMetrics?.length ? mergeExpositions(own, await Promise.all(probes.extraMetrics.map((m) => m()))) : own;
        res.writeHead(200, { 'content-type': probes.registry.contentType }).end(text);
        return;
      }
      default:
        return json(res, 404, { error: 'not found; try /livez, /startupz, /readyz or /metrics' });
    }
  } catch (e) {
    logger.error({ err: e, path }, 'ops endpoint failed');
    if (!res.headersSent) json(res, 500, { error: 'internal error' });
    else res.end();
  }
};

/** Listens on the ops port; started before the roles so liveness answers during a long start. */
export const startOpsServer = async (host: string, port: number, probes: OpsProbes, logger: Logger): Promise<OpsServer> => {
  const handle = opsHandler(probes, logger);
  const server = http.createServer((req, res) => void handle(req, res));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  return {
    port: actual,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
};
