import type { OperationDefinitionNode } from 'graphql';
import { isDomainError } from '#schema/errors';
import { currentRequestId, type Logger } from '#platform/logger';
import { ulid } from '#platform/ids';
import type { Subscription } from '#platform/event-store/port';
import { authenticate, type Principal } from './auth';
import type { GraphQLContext, Services } from './context';
import { apiSchema } from './schema';
import { httpError, startGraphQLServer, type RequestLimits, type Route, type RunningServer, type WebSocketLimits } from './server';
import { RateLimits, TenantLimitOverrides, type RateLimitBackend, type RateLimitValues } from './rate-limits';
import { countRootFields } from './operations';
import { observeOperations } from './observe';
import type { Registry } from 'prom-client';

export type ApiOptions = Readonly<{
  services: Services;
  host: string;
  port: number;
  logger: Logger;
  limits: RequestLimits;
  ws: WebSocketLimits;
  rateLimits: RateLimitValues & Readonly<{ backend: RateLimitBackend }>;
  /** Extra HTTP routes on the same port (health, metrics). */
  routes?: readonly Route[];
  /** Where the request metrics go (the process's registry); absent: none kept. */
  registry?: Registry;
}>;

/** The key a principal authenticated with, as the revocation events name it. */
export const keyRef = (p: Principal): string => (p.kind === 'operator' ? `operator.${p.keyId}` : `${p.tenantId}.${p.keyId}`);

/** The api role: GraphQL over HTTP and WebSocket, every request authenticated by its API key. */
export const startApi = async (options: ApiOptions): Promise<RunningServer> => {
  const { services, logger } = options;
  const overrides = new TenantLimitOverrides(services.readStore);
  await overrides.start();
  const { backend, ...defaults } = options.rateLimits;
  const rateLimits = new RateLimits({ backend, defaults, overrides, logger });
  const api = { rateLimits, overrides, auditScanLimit: options.limits.auditScanLimit };

  const context = async (authorization: unknown, requestId: string): Promise<GraphQLContext> => {
    let principal: Principal;
    try {
      principal = await authenticate(services.commands, typeof authorization === 'string' ? authorization : null);
    } catch (e) {
      if (isDomainError(e)) throw httpError(e.message, e.code, 401);
      throw e;
    }
    await rateLimits.admitRequest(principal);
    return { principal, requestId, services, api };
  };

  return startGraphQLServer<GraphQLContext>({
    schema: await apiSchema(),
    host: options.host,
    port: options.port,
    logger,
    limits: options.limits,
    ws: options.ws,
    httpContext: (req, requestId) => context(req.headers.authorization, requestId),
    // A subscribe runs in its access line's log context: the same request id.
    wsContext: (params) => context(params?.['authorization'] ?? params?.['Authorization'], currentRequestId() ?? ulid()),
    identify: (ctx) => ({ key: keyRef(ctx.principal), tenantId: ctx.principal.kind === 'tenant' ? ctx.principal.tenantId : null }),
    beforeExecute: async (ctx, operation: OperationDefinitionNode, document) => {
      if (operation.operation !== 'mutation') return;
      // A rejected request sends nothing: the sends are counted before any runs.
      await rateLimits.admitSends(ctx.principal, countRootFields(document, operation, 'sendNotification'));
    },
    // Every replica sees every revocation through the log, within its poll interval.
    watchRevocations: async (onRevoked) => {
      let seen = await services.eventStore.headPosition();
      let stopped = false;
      let retry: NodeJS.Timeout | null = null;
      let subscription: Subscription | null = null;
      const follow = () => {
        subscription = services.eventStore.subscribe({
          after: seen,
          types: ['ApiKeyRevoked', 'OperatorKeyRevoked'],
          handler: async (events) => {
            for (const e of events) {
              if (e.type === 'ApiKeyRevoked') onRevoked(`${e.data.tenantId}.${e.data.keyId}`);
              else if (e.type === 'OperatorKeyRevoked') onRevoked(`operator.${e.data.keyId}`);
              seen = e.position;
            }
          },
          // The store failed: follow again from the last revocation seen.
          onError: (e) => {
            logger.error({ err: e }, 'API key revocation watch failed; retrying');
            if (!stopped) retry = setTimeout(follow, 1_000);
          },
        });
      };
      follow();
      return async () => {
        stopped = true;
        if (retry) clearTimeout(retry);
        await subscription?.stop();
      };
    },
    routes: options.routes ?? [],
    ...(options.registry ? { onOperation: observeOperations(options.registry, logger) } : {}),
  });
};
