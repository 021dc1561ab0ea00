import http from 'node:http';
import { ApolloServer, HeaderMap, type BaseContext } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, parse, validate, specifiedRules, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { CloseCode } from 'graphql-ws';
import { isDomainError } from '#schema/errors';
import type { Logger } from '#platform/logger';
import { checkCost, depthLimit } from './limits';

export type Route = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> | boolean;

export type GraphQLServerOptions<Ctx extends BaseContext> = Readonly<{
  schema: GraphQLSchema;
  host: string;
  port: number;
  logger: Logger;
  maxDepth: number;
  maxCost: number;
  /** Builds the context of one HTTP request; throw a GraphQLError to refuse it. */
  httpContext: (req: http.IncomingMessage) => Promise<Ctx>;
  /** Builds the context of one WebSocket connection from its connection params. */
  wsContext: (connectionParams: Readonly<Record<string, unknown>> | undefined) => Promise<Ctx>;
  /** Extra HTTP routes (health, metrics); return true when handled. */
  routes?: readonly Route[];
  maxBodyBytes?: number;
}>;

export type RunningServer = Readonly<{ url: string; wsUrl: string; port: number; stop: () => Promise<void> }>;

const INPUT_VALIDATION = /got invalid value|does not exist in ".*" enum|Expected value of type|Expected type|cannot represent/i;

/**
 * One error shape for every failure: DomainErrors keep their code and message; an invalid
 * argument literal is BAD_USER_INPUT like an invalid variable; anything unexpected is logged
 * and reported without internals.
 */
export const formatError = (logger: Logger) => (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
  const original = unwrapResolverError(error);
  if (isDomainError(original)) {
    return {
      message: original.message,
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: original.code, ...(original.field ? { field: original.field } : {}) },
    };
  }
  const code = formatted.extensions?.['code'];
  if (code === 'GRAPHQL_VALIDATION_FAILED' && INPUT_VALIDATION.test(formatted.message)) {
    return { ...formatted, extensions: { ...formatted.extensions, code: 'BAD_USER_INPUT' } };
  }
  if (code === 'INTERNAL_SERVER_ERROR' || code === undefined) {
    logger.error({ err: original, path: formatted.path }, 'unexpected error');
    return { message: 'internal error', ...(formatted.path ? { path: formatted.path } : {}), extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  }
  return formatted;
};

const readBody = (req: http.IncomingMessage, limit: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(Object.assign(new Error(`request body over ${limit} bytes`), { status: 413 }));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

/** Apollo Server 5 on a plain node:http server, with graphql-ws subscriptions on the same port. */
export const startGraphQLServer = async <Ctx extends BaseContext>(options: GraphQLServerOptions<Ctx>): Promise<RunningServer> => {
  const { schema, logger } = options;
  const httpServer = http.createServer();
  // Longer than clients' and load balancers' idle timeouts, so the server is not the side that
  // closes an idle keep-alive connection just as a request is sent on it.
  httpServer.keepAliveTimeout = 65_000;
  httpServer.headersTimeout = 66_000;
  const wss = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const validationRules = [depthLimit(options.maxDepth)];
  const format = formatError(logger);

  const wsCleanup = useServer<Record<string, unknown>, { ctx?: Ctx }>(
    {
      schema,
      onConnect: async (ctx) => {
        try {
          ctx.extra.ctx = await options.wsContext(ctx.connectionParams);
          return true;
        } catch (e) {
          const reason = isDomainError(e) ? e.message : 'unauthenticated';
          ctx.extra.socket.close(CloseCode.Forbidden, reason.slice(0, 120));
          return false;
        }
      },
      context: (ctx) => ctx.extra.ctx!,
      onSubscribe: (_ctx, _id, payload) => {
        let document;
        try {
          document = parse(payload.query);
        } catch (e) {
          return [e as GraphQLError];
        }
        const errors = validate(schema, document, [...specifiedRules, ...validationRules]);
        if (errors.length > 0) return errors;
        try {
          checkCost(schema, document, payload.variables ?? undefined, payload.operationName, options.maxCost);
        } catch (e) {
          return [e as GraphQLError];
        }
        return undefined;
      },
      // Subscriptions bypass Apollo, so their errors get the same formatting here.
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors ? { ...result, errors: result.errors.map((e) => format(e.toJSON(), e)) } : undefined,
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => format(e.toJSON(), e)),
    },
    wss,
  );

  const apollo = new ApolloServer<Ctx>({
    schema,
    validationRules,
    introspection: true,
    // The process owns shutdown (cli/src/main.ts); Apollo's own signal handler would race it.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    formatError: format,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      {
        async serverWillStart() {
          return { async drainServer() { await wsCleanup.dispose(); } };
        },
        async requestDidStart() {
          return {
            async didResolveOperation({ request, document }) {
              checkCost(schema, document, request.variables, request.operationName, options.maxCost);
            },
          };
        },
      },
    ],
  });
  await apollo.start();
  const maxBody = options.maxBodyBytes ?? 1_000_000;

  httpServer.on('request', (req, res) => {
    void (async () => {
      try {
        for (const route of options.routes ?? []) if (await route(req, res)) return;
        const url = new URL(req.url ?? '/', 'http://localhost');
        if (url.pathname !== '/graphql') {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found; the API is at /graphql"}');
          return;
        }
        const headers = new HeaderMap();
        for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
        const raw = req.method === 'POST' ? await readBody(req, maxBody) : '';
        let body: unknown = raw;
        if (raw && (headers.get('content-type') ?? '').includes('json')) {
          try {
            body = JSON.parse(raw);
          } catch {
            res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ message: 'request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] }));
            return;
          }
        }
        const response = await apollo.executeHTTPGraphQLRequest({
          httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
          context: () => options.httpContext(req),
        });
        for (const [k, v] of response.headers) res.setHeader(k, v);
        res.statusCode = response.status ?? 200;
        if (response.body.kind === 'complete') res.end(response.body.string);
        else {
          for await (const chunk of response.body.asyncIterator) res.write(chunk);
          res.end();
        }
      } catch (e) {
        const status = (e as { status?: number }).status ?? 500;
        if (status === 500) logger.error({ err: e }, 'http handler failed');
        if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ message: status === 500 ? 'internal error' : (e as Error).message }] }));
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port, options.host, () => resolve());
  });
  const address = httpServer.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const base = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  return {
    url: `http://${base}/graphql`,
    wsUrl: `ws://${base}/graphql`,
    port,
    stop: async () => {
      await apollo.stop();
      wss.close();
    },
  };
};

/** A GraphQLError that also sets the HTTP status, for refusals in context creation. */
export const httpError = (message: string, code: string, status: number): GraphQLError =>
  new GraphQLError(message, { extensions: { code, http: { status } } });
