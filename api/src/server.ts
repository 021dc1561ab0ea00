import http from 'node:http';
import { ApolloServer, HeaderMap, type BaseContext, type GraphQLRequestContextDidResolveOperation } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { unwrapResolverError } from '@apollo/server/errors';
import {
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationRule,
} from 'graphql';
import { WebSocketServer, type WebSocket } from 'ws';
import { CloseCode, handleProtocols, makeServer, type Context as WsContext, type SubscribePayload } from 'graphql-ws';
import { isDomainError } from '#schema/errors';
import { currentRequestId, withLogContext, type Logger } from '#platform/logger';
import { describeActiveSpan, extractTrace, inSpan, SpanKind } from '#platform/tracing';
import { ulid } from '#platform/ids';
import { Lanes } from './lanes';
import type { ApiSettings } from '#platform/config';
import { aliasAndDirectiveLimit, checkCost, depthLimit, mutationFieldLimit, requestError, selectOperation } from './limits';

export type Route = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> | boolean;

/** What the API refuses before running anything (see README, "API in brief"): the configured settings, with depth and cost. */
export type RequestLimits = Readonly<{ maxDepth: number; maxCost: number }> & Omit<ApiSettings, 'ws' | 'rateLimits'>;

export type WebSocketLimits = ApiSettings['ws'];

/** Who a context belongs to, for counting connections and closing a revoked key's sockets. */
export type Identity = Readonly<{ key: string; tenantId: string | null }>;

export type GraphQLServerOptions<Ctx extends BaseContext> = Readonly<{
  schema: GraphQLSchema;
  host: string;
  port: number;
  logger: Logger;
  limits: RequestLimits;
  ws: WebSocketLimits;
  /** Builds the context of one HTTP request (authenticated, admitted by the rate limits); throw a GraphQLError to refuse it. */
  httpContext: (req: http.IncomingMessage, requestId: string) => Promise<Ctx>;
  /**
   * Builds the context of one WebSocket operation from the connection params: called at connect
   * and again for every subscribe, so a revoked key stops at its next operation.
   */
  wsContext: (connectionParams: Readonly<Record<string, unknown>> | undefined) => Promise<Ctx>;
  identify: (ctx: Ctx) => Identity;
  /** Runs once an operation is chosen and priced, before it executes (sends' rate limits). */
  beforeExecute?: (ctx: Ctx, operation: OperationDefinitionNode, document: DocumentNode) => Promise<void>;
  /** Calls back with the identity key of every API key revoked from now on; resolves to a stop function. */
  watchRevocations?: (onRevoked: (key: string) => void) => Promise<() => Promise<void>>;
  /** Extra HTTP routes (health, metrics); return true when handled. */
  routes?: readonly Route[];
  /** Called once per GraphQL operation that got an answer (HTTP) or was refused or started (WebSocket): access log, metrics. */
  onOperation?: (record: OperationRecord) => void;
}>;

/** One GraphQL operation as the access log and the metrics see it: ids, names and codes only. */
export type OperationRecord = Readonly<{
  requestId: string;
  transport: 'http' | 'ws';
  /** `<type>.<first root field>` (bounded by the schema), or `unknown` when it never parsed. */
  operation: string;
  /** The client's operation name, when it gave a valid one. */
  operationName: string | null;
  tenantId: string | null;
  status: number;
  /** The first error's code, null when it succeeded. */
  code: string | null;
  durationMs: number;
}>;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;

/** The caller's `x-request-id` when it is a sane token, else a new one; echoed in the response. */
export const requestIdOf = (req: http.IncomingMessage, make: () => string): string => {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : make();
};

/** The metric label of an operation: its type and first root field, which the schema bounds. */
export const operationLabel = (operation: OperationDefinitionNode | null | undefined): string => {
  if (!operation) return 'unknown';
  const first = operation.selectionSet.selections.find((s) => s.kind === 'Field');
  return `${operation.operation}.${first && first.kind === 'Field' ? first.name.value : 'unknown'}`;
};

const nameOf = (name: unknown): string | null => (typeof name === 'string' && NAME.test(name) ? name : null);

export type RunningServer = Readonly<{ url: string; wsUrl: string; port: number; stop: () => Promise<void> }>;

const INPUT_VALIDATION = /got invalid value|does not exist in ".*" enum|Expected value of type|Expected type|cannot represent/i;

/** Close codes of the WebSocket: graphql-ws's, and the standard ones clients reconnect on. */
export const WS_CLOSE = {
  /** A key that is missing, invalid or revoked at connect (graphql-ws's Forbidden). */
  forbidden: CloseCode.Forbidden,
  /** The key was revoked while the socket was open: the client must not retry with it. */
  revoked: CloseCode.Unauthorized,
  /** The connection reached WS_MAX_CONNECTION_MS: reconnect (RFC 6455 Going Away). */
  lifetime: 1001,
  /** Too many connections for the key or tenant, or its requests are rate limited: reconnect later (RFC 6455 Try Again Later). */
  tryAgainLater: 1013,
  /** A message over WS_MAX_PAYLOAD_BYTES (RFC 6455 Message Too Big; sent by ws). */
  tooBig: 1009,
} as const;

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
  const { http: _http, ...extensions } = (formatted.extensions ?? {}) as Record<string, unknown>;
  const code = extensions['code'];
  if (code === 'GRAPHQL_VALIDATION_FAILED' && INPUT_VALIDATION.test(formatted.message)) {
    return { ...formatted, extensions: { ...extensions, code: 'BAD_USER_INPUT' } };
  }
  // Apollo's own refusals of a malformed request (an APQ hash that does not match its text) carry a 4xx and no code.
  const status = original instanceof GraphQLError ? (original.extensions?.['http'] as { status?: number } | undefined)?.status : undefined;
  if ((code === 'INTERNAL_SERVER_ERROR' || code === undefined) && status !== undefined && status >= 400 && status < 500) {
    return { message: formatted.message, extensions: { ...extensions, code: 'BAD_REQUEST' } };
  }
  if (code === 'INTERNAL_SERVER_ERROR' || code === undefined) {
    logger.error({ err: original, path: formatted.path }, 'unexpected error');
    return { message: 'internal error', ...(formatted.path ? { path: formatted.path } : {}), extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  }
  return { ...formatted, extensions };
};

type Body = Readonly<{ kind: 'ok'; text: string }> | Readonly<{ kind: 'tooLarge'; drained: boolean }>;

/** Bodies over the limit are read to their end and discarded (up to this much), so the client reads the 413 instead of a reset. */
const DRAIN_FACTOR = 16;

const readBody = (req: http.IncomingMessage, limit: number): Promise<Body> =>
  new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = Number.isFinite(declared) && declared > limit;
    if (over && declared > limit * DRAIN_FACTOR) {
      resolve({ kind: 'tooLarge', drained: false });
      return;
    }
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        if (size > limit * DRAIN_FACTOR) {
          req.removeAllListeners('data');
          req.pause();
          resolve({ kind: 'tooLarge', drained: false });
        }
      } else chunks.push(c);
    });
    req.on('end', () => resolve(over ? { kind: 'tooLarge', drained: true } : { kind: 'ok', text: Buffer.concat(chunks).toString('utf8') }));
    req.on('error', reject);
  });

const jsonError = (res: http.ServerResponse, status: number, message: string, code: string, headers: Record<string, string> = {}): void => {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
};

type SocketEntry<Ctx> = {
  socket: WebSocket;
  identity: Identity | null;
  ws: WsContext<Record<string, unknown>, { socket: WebSocket }> | null;
  ctx: Ctx | null;
  timers: NodeJS.Timeout[];
  /** Subscriptions admitted (past every check) and not yet completed. */
  admitted: Set<string>;
};

/** Apollo Server 5 on a plain node:http server, with graphql-ws subscriptions on the same port. */
export const startGraphQLServer = async <Ctx extends BaseContext>(options: GraphQLServerOptions<Ctx>): Promise<RunningServer> => {
  const { schema, logger, limits } = options;
  const httpServer = http.createServer();
  // Longer than clients' and load balancers' idle timeouts, so the server is not the side that
  // closes an idle keep-alive connection just as a request is sent on it.
  httpServer.keepAliveTimeout = 65_000;
  httpServer.headersTimeout = 66_000;
  const validationRules: ValidationRule[] = [
    depthLimit(limits.maxDepth),
    aliasAndDirectiveLimit(limits.maxAliases, limits.maxDirectives),
    mutationFieldLimit(limits.maxMutationFields),
  ];
  const format = formatError(logger);
  const lanes = new Lanes(limits.tenantConcurrency, limits.tenantQueue);
  const costContext = { auditScanLimit: limits.auditScanLimit };

  // ---- WebSocket: subscriptions only, every operation authenticated ---------------------------
  const wss = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: options.ws.maxPayloadBytes, handleProtocols });
  const sockets = new Map<WebSocket, SocketEntry<Ctx>>();
  const entriesOf = (pick: (i: Identity) => boolean) => [...sockets.values()].filter((e) => e.identity && pick(e.identity));
  const subscriptionsOf = (entries: SocketEntry<Ctx>[]) => entries.reduce((n, e) => n + e.admitted.size, 0);
  const close = (entry: SocketEntry<Ctx>, code: number, reason: string) => {
    if (entry.socket.readyState === entry.socket.OPEN || entry.socket.readyState === entry.socket.CONNECTING) entry.socket.close(code, reason.slice(0, 120));
  };
  const wsRules = [...specifiedRules, ...validationRules, ...(limits.introspection ? [] : [NoSchemaIntrospectionCustomRule])];
  const withCode = (e: GraphQLError, code: string): GraphQLError =>
    e.extensions?.['code'] ? e : new GraphQLError(e.message, { nodes: e.nodes ?? null, source: e.source ?? null, positions: e.positions ?? null, path: e.path ?? null, originalError: e.originalError ?? null, extensions: { ...e.extensions, code } });
  const asErrors = (e: unknown): GraphQLError[] => {
    if (e instanceof GraphQLError) return [e];
    if (isDomainError(e)) return [new GraphQLError(e.message, { originalError: e })];
    throw e;
  };

  type Seen = { label: string; name: string | null; tenantId: string | null };
  const subscribe = async (ctx: WsContext<Record<string, unknown>, { socket: WebSocket }>, id: string, payload: SubscribePayload, seen: Seen): Promise<ExecutionArgs | readonly GraphQLError[]> => {
    const entry = sockets.get(ctx.extra.socket);
    if (!entry?.identity) return [requestError('the connection is not authenticated', 'UNAUTHENTICATED', {}, 401)];
    // The key is checked again for every operation: a revoked key stops here.
    let context: Ctx;
    try {
      context = await options.wsContext(ctx.connectionParams);
    } catch (e) {
      const errors = asErrors(e);
      if (errors[0]?.extensions?.['code'] === 'UNAUTHENTICATED' || (isDomainError(e) && e.code === 'UNAUTHENTICATED')) close(entry, WS_CLOSE.revoked, 'API key invalid or revoked');
      return errors;
    }
    entry.ctx = context;
    seen.tenantId = options.identify(context).tenantId;
    let document: DocumentNode;
    try {
      document = parse(payload.query, { maxTokens: limits.maxTokens });
    } catch (e) {
      return [withCode(e as GraphQLError, 'GRAPHQL_PARSE_FAILED')];
    }
    const errors = validate(schema, document, wsRules);
    if (errors.length > 0) return errors.map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED'));
    try {
      const operation = selectOperation(document, payload.operationName);
      seen.label = operationLabel(operation);
      seen.name = operation.name?.value ?? seen.name;
      if (operation.operation !== 'subscription') {
        return [requestError(`only subscriptions run over WebSocket; send ${operation.operation === 'mutation' ? 'mutations' : 'queries'} as HTTP POST to /graphql`, 'BAD_REQUEST')];
      }
      checkCost(schema, document, payload.variables, payload.operationName, limits.maxCost, costContext);
      await options.beforeExecute?.(context, operation, document);
    } catch (e) {
      return asErrors(e);
    }
    // Counted and admitted in one synchronous step: subscribes of one burst cannot all pass.
    const ws = options.ws;
    const identity = entry.identity;
    if (subscriptionsOf(entriesOf((i) => i.key === identity.key)) >= ws.maxSubscriptionsPerKey) {
      return [requestError(`too many subscriptions for this API key (limit ${ws.maxSubscriptionsPerKey}); complete some first`, 'RATE_LIMITED')];
    }
    if (identity.tenantId !== null && subscriptionsOf(entriesOf((i) => i.tenantId === identity.tenantId)) >= ws.maxSubscriptionsPerTenant) {
      return [requestError(`too many subscriptions for this tenant (limit ${ws.maxSubscriptionsPerTenant}); complete some first`, 'RATE_LIMITED')];
    }
    entry.admitted.add(id);
    return {
      schema,
      document,
      contextValue: context,
      variableValues: payload.variables ?? null,
      operationName: payload.operationName ?? null,
    };
  };

  const graphqlWs = makeServer<Record<string, unknown>, { socket: WebSocket }>({
    schema,
    onConnect: async (ctx) => {
      const entry = sockets.get(ctx.extra.socket);
      if (!entry) return false;
      let context: Ctx;
      try {
        context = await options.wsContext(ctx.connectionParams);
      } catch (e) {
        const code = e instanceof GraphQLError ? e.extensions?.['code'] : isDomainError(e) ? e.code : undefined;
        if (code === 'RATE_LIMITED') close(entry, WS_CLOSE.tryAgainLater, (e as Error).message);
        else if (code !== undefined) close(entry, WS_CLOSE.forbidden, (e as Error).message);
        else {
          logger.error({ err: e }, 'WebSocket connection failed');
          close(entry, CloseCode.InternalServerError, 'internal error');
        }
        return false;
      }
      const identity = options.identify(context);
      const ws = options.ws;
      if (entriesOf((i) => i.key === identity.key).length >= ws.maxConnectionsPerKey) {
        close(entry, WS_CLOSE.tryAgainLater, `too many connections for this API key (limit ${ws.maxConnectionsPerKey})`);
        return false;
      }
      if (identity.tenantId !== null && entriesOf((i) => i.tenantId === identity.tenantId).length >= ws.maxConnectionsPerTenant) {
        close(entry, WS_CLOSE.tryAgainLater, `too many connections for this tenant (limit ${ws.maxConnectionsPerTenant})`);
        return false;
      }
      entry.identity = identity;
      entry.ws = ctx;
      entry.ctx = context;
      const lifetime = setTimeout(() => close(entry, WS_CLOSE.lifetime, 'connection lifetime reached; reconnect'), ws.maxConnectionMs);
      lifetime.unref();
      entry.timers.push(lifetime);
      return true;
    },
    // One access line per subscribe, admitted or refused, like an HTTP operation's.
    onSubscribe: async (ctx, id, payload): Promise<ExecutionArgs | readonly GraphQLError[]> => {
      const started = performance.now();
      const requestId = ulid();
      const seen: Seen = { label: 'unknown', name: nameOf(payload.operationName), tenantId: null };
      const result = await withLogContext({ requestId }, () => subscribe(ctx, id, payload, seen));
      const code = Array.isArray(result) ? String((result as readonly GraphQLError[])[0]?.extensions?.['code'] ?? 'BAD_REQUEST') : null;
      options.onOperation?.({ requestId, transport: 'ws', operation: seen.label, operationName: seen.name, tenantId: seen.tenantId, status: code ? 400 : 200, code, durationMs: performance.now() - started });
      return result;
    },
    onComplete: (ctx, id) => {
      sockets.get(ctx.extra.socket)?.admitted.delete(id);
    },
    // Subscriptions bypass Apollo, so their errors get the same formatting here.
    onNext: (_ctx, _id, _payload, _args, result) =>
      result.errors ? { ...result, errors: result.errors.map((e) => format(e.toJSON(), e)) } : undefined,
    onError: (_ctx, _id, _payload, errors) => errors.map((e) => format(e.toJSON(), e)),
  });

  wss.on('connection', (socket, request) => {
    const entry: SocketEntry<Ctx> = { socket, identity: null, ws: null, ctx: null, timers: [], admitted: new Set() };
    sockets.set(socket, entry);
    // ws has already closed with 1009 (a message over maxPayload) or 1002 (a protocol error) when it reports one here.
    socket.on('error', (err) => logger.debug({ err }, 'WebSocket error'));
    if (options.ws.keepAliveMs > 0) {
      let alive = true;
      socket.on('pong', () => (alive = true));
      const ping = setInterval(() => {
        if (!alive) {
          socket.terminate();
          return;
        }
        alive = false;
        if (socket.readyState === socket.OPEN) socket.ping();
      }, options.ws.keepAliveMs);
      ping.unref();
      entry.timers.push(ping);
    }
    const closed = graphqlWs.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (err) => (err ? reject(err) : resolve()));
          }),
        close: (code, reason) => close(entry, code ?? 1000, reason ?? ''),
        onMessage: (cb) =>
          socket.on('message', (data) => {
            void cb(String(data)).catch((err: unknown) => {
              logger.error({ err }, 'WebSocket message failed');
              close(entry, CloseCode.InternalServerError, 'internal error');
            });
          }),
      },
      { socket },
    );
    socket.once('close', (code, reason) => {
      for (const t of entry.timers) clearTimeout(t);
      sockets.delete(socket);
      void closed(code, String(reason)).catch((err: unknown) => logger.warn({ err }, 'WebSocket close handling failed'));
    });
    void request;
  });
  const stopWatching = options.watchRevocations
    ? await options.watchRevocations((key) => {
        for (const entry of entriesOf((i) => i.key === key)) close(entry, WS_CLOSE.revoked, 'API key revoked');
      })
    : null;
  const closeSockets = async () => {
    for (const entry of sockets.values()) close(entry, 1001, 'Going away');
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  };

  // ---- HTTP: Apollo --------------------------------------------------------------------------
  const apollo = new ApolloServer<Ctx>({
    schema,
    validationRules,
    introspection: limits.introspection,
    parseOptions: { maxTokens: limits.maxTokens },
    // The process owns shutdown (cli/src/main.ts); Apollo's own signal handler would race it.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    formatError: format,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      limits.landingPage ? ApolloServerPluginLandingPageLocalDefault({ embed: true }) : ApolloServerPluginLandingPageDisabled(),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await stopWatching?.();
              await closeSockets();
            },
          };
        },
        async requestDidStart() {
          const started = performance.now();
          let label = 'unknown';
          let name: string | null = null;
          return {
            async willSendResponse({ response, request, contextValue, errors }) {
              describeActiveSpan(`graphql ${label}`, { 'graphql.operation.name': label, 'notify.request_id': currentRequestId() ?? '' });
              if (!options.onOperation) return;
              const body = response.body;
              const first = (body.kind === 'single' ? body.singleResult.errors?.[0] : undefined) ?? errors?.[0];
              const code = first ? String((first.extensions?.['code'] as string | undefined) ?? 'INTERNAL_SERVER_ERROR') : null;
              const ctx = contextValue as Ctx | undefined;
              options.onOperation({
                requestId: currentRequestId() ?? 'unknown',
                transport: 'http',
                operation: label,
                operationName: name ?? nameOf(request.operationName),
                tenantId: ctx ? options.identify(ctx).tenantId : null,
                status: response.http.status ?? 200,
                code,
                durationMs: performance.now() - started,
              });
            },
            async didResolveOperation({ request, document, contextValue }: GraphQLRequestContextDidResolveOperation<Ctx>) {
              const operation = selectOperation(document, request.operationName);
              label = operationLabel(operation);
              name = operation.name?.value ?? null;
              if (operation.operation === 'subscription') {
                throw requestError('subscriptions run over WebSocket (graphql-ws) at this URL, not over HTTP', 'BAD_REQUEST');
              }
              checkCost(schema, document, request.variables, request.operationName, limits.maxCost, costContext);
              await options.beforeExecute?.(contextValue, operation, document);
            },
          };
        },
      },
    ],
  });
  await apollo.start();

  httpServer.on('request', (req, res) => {
    const requestId = requestIdOf(req, ulid);
    res.setHeader('x-request-id', requestId);
    void withLogContext({ requestId }, () => inSpan('http', { parent: extractTrace(req.headers), kind: SpanKind.SERVER }, async () => {
      try {
        for (const route of options.routes ?? []) if (await route(req, res)) return;
        const url = new URL(req.url ?? '/', 'http://localhost');
        if (url.pathname !== '/graphql') {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found; the API is at /graphql"}');
          return;
        }
        const headers = new HeaderMap();
        for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
        let raw = '';
        if (req.method === 'POST') {
          const body = await readBody(req, limits.maxBodyBytes);
          if (body.kind === 'tooLarge') {
            // Drained: the connection stays usable. Not drained (far over): answer, then close it.
            jsonError(res, 413, `request body over the limit of ${limits.maxBodyBytes} bytes`, 'PAYLOAD_TOO_LARGE', body.drained ? {} : { connection: 'close' });
            if (!body.drained) res.once('finish', () => req.socket.destroySoon());
            return;
          }
          raw = body.text;
        }
        let body: unknown = raw;
        if (raw && (headers.get('content-type') ?? '').includes('json')) {
          try {
            body = JSON.parse(raw);
          } catch {
            jsonError(res, 400, 'request body is not valid JSON', 'BAD_REQUEST');
            return;
          }
        }
        const httpGraphQLRequest = { method: req.method ?? 'GET', headers, search: url.search, body };
        // The landing page (a browser's GET) needs no key; Apollo answers it without a context.
        const browsing = req.method === 'GET' && !req.headers.authorization && (req.headers.accept ?? '').includes('text/html');
        let context: Ctx | null = null;
        let release: (() => void) | null = null;
        if (!browsing) {
          // Authenticated and admitted first, then queued in the tenant's own lane.
          const started = performance.now();
          try {
            context = await options.httpContext(req, requestId);
            const identity = options.identify(context);
            release = await lanes.acquire(identity.tenantId ?? identity.key);
          } catch (e) {
            if (!(e instanceof GraphQLError)) throw e;
            const http = (e.extensions?.['http'] ?? {}) as { status?: number; headers?: Map<string, string> };
            const formatted = format(e.toJSON(), e);
            res.writeHead(http.status ?? 400, { 'content-type': 'application/json', ...Object.fromEntries(http.headers ?? []) });
            res.end(JSON.stringify({ errors: [formatted] }));
            // Refused before the operation was parsed (authentication, rate limits, the tenant's queue).
            options.onOperation?.({
              requestId, transport: 'http', operation: 'unknown', operationName: nameOf((body as { operationName?: unknown } | null)?.operationName),
              tenantId: context ? options.identify(context).tenantId : null, status: http.status ?? 400,
              code: String(formatted.extensions?.['code'] ?? 'BAD_REQUEST'), durationMs: performance.now() - started,
            });
            return;
          }
        }
        let response;
        try {
          response = await apollo.executeHTTPGraphQLRequest({
            httpGraphQLRequest,
            context: () => (context ? Promise.resolve(context) : options.httpContext(req, requestId)),
          });
        } finally {
          release?.();
        }
        for (const [k, v] of response.headers) res.setHeader(k, v);
        res.statusCode = response.status ?? 200;
        if (response.body.kind === 'complete') res.end(response.body.string);
        else {
          for await (const chunk of response.body.asyncIterator) res.write(chunk);
          res.end();
        }
      } catch (e) {
        logger.error({ err: e }, 'http handler failed');
        jsonError(res, 500, 'internal error', 'INTERNAL_SERVER_ERROR');
      }
    }));
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
