import type http from 'node:http';
import { isDomainError } from '#schema/errors';
import type { Logger } from '#platform/logger';
import { ulid } from '#platform/ids';
import { authenticate } from './auth';
import type { GraphQLContext, Services } from './context';
import { apiSchema } from './schema';
import { httpError, startGraphQLServer, type Route, type RunningServer } from './server';

export type ApiOptions = Readonly<{
  services: Services;
  host: string;
  port: number;
  logger: Logger;
  maxQueryDepth: number;
  maxQueryCost: number;
  /** Extra HTTP routes on the same port (health, metrics). */
  routes?: readonly Route[];
}>;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

const requestIdOf = (req: http.IncomingMessage): string => {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : ulid();
};

/** The api role: GraphQL over HTTP and WebSocket, every request authenticated by its API key. */
export const startApi = async (options: ApiOptions): Promise<RunningServer> => {
  const { services } = options;
  const context = async (authorization: unknown, requestId: string): Promise<GraphQLContext> => {
    try {
      const principal = await authenticate(services.commands, typeof authorization === 'string' ? authorization : null);
      return { principal, requestId, services };
    } catch (e) {
      if (isDomainError(e)) throw httpError(e.message, e.code, 401);
      throw e;
    }
  };
  return startGraphQLServer<GraphQLContext>({
    schema: await apiSchema(),
    host: options.host,
    port: options.port,
    logger: options.logger,
    maxDepth: options.maxQueryDepth,
    maxCost: options.maxQueryCost,
    httpContext: (req) => context(req.headers.authorization, requestIdOf(req)),
    wsContext: (params) => context(params?.['authorization'] ?? params?.['Authorization'], ulid()),
    routes: options.routes ?? [],
  });
};
