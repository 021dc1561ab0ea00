import WebSocket from 'ws';
import pino from 'pino';
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unauthenticated } from '#schema/errors';
import { httpError, startGraphQLServer, type RunningServer } from './server';

/** The server alone, with a schema of its own and a context whose key can be revoked at will. */
describe('graphql-ws on the API server', () => {
  let server: RunningServer;
  let revoked = false;
  const tick = new GraphQLObjectType({ name: 'Subscription', fields: { tick: { type: GraphQLString, subscribe: async function* () { yield { tick: 'x' }; await new Promise(() => undefined); } } } });
  const query = new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString, resolve: () => 'hi' } } });
  const context = async () => {
    if (revoked) throw httpError(unauthenticated('invalid or revoked API key').message, 'UNAUTHENTICATED', 401);
    return { who: 'k' };
  };

  beforeAll(async () => {
    server = await startGraphQLServer({
      schema: new GraphQLSchema({ query, subscription: tick }),
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
      limits: { maxDepth: 5, maxCost: 100, maxAliases: 5, maxDirectives: 5, maxTokens: 500, maxMutationFields: 2, maxBodyBytes: 10_000, auditScanLimit: 100, introspection: false, landingPage: false, tenantConcurrency: 2, tenantQueue: 2 },
      ws: { maxPayloadBytes: 10_000, keepAliveMs: 0, maxConnectionMs: 60_000, maxConnectionsPerKey: 5, maxConnectionsPerTenant: 5, maxSubscriptionsPerKey: 5, maxSubscriptionsPerTenant: 5 },
      httpContext: context,
      wsContext: context,
      identify: () => ({ key: 'k', tenantId: 't' }),
    });
  });
  afterAll(() => server.stop());

  it('authenticates every subscribe, not only the connection: a key revoked since connect is refused and its socket closed', async () => {
    revoked = false;
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
    const messages: any[] = [];
    socket.on('message', (m) => messages.push(JSON.parse(String(m))));
    const closed = new Promise<number>((r) => socket.on('close', (code) => r(code)));
    await new Promise((r) => socket.once('open', r));
    socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    while (!messages.some((m) => m.type === 'connection_ack')) await new Promise((r) => setTimeout(r, 5));
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { tick }' } }));
    while (!messages.some((m) => m.id === '1' && m.type === 'next')) await new Promise((r) => setTimeout(r, 5));

    revoked = true;
    socket.send(JSON.stringify({ id: '2', type: 'subscribe', payload: { query: 'subscription { tick }' } }));
    expect(await closed).toBe(4401);
    expect(messages.filter((m) => m.id === '2' && m.type === 'next')).toEqual([]);
    revoked = false;
  });

  it('answers a subscription sent over HTTP with BAD_REQUEST, an unknown operationName with OPERATION_RESOLUTION_FAILURE', async () => {
    const post = (body: unknown) => fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const sub = await post({ query: 'subscription { tick }' });
    expect(sub.status).toBe(400);
    expect(((await sub.json()) as any).errors[0].extensions.code).toBe('BAD_REQUEST');
    const unknown = await post({ query: '{ hello }', operationName: 'Nope' });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as any).errors[0].extensions.code).toBe('OPERATION_RESOLUTION_FAILURE');
  });
});
