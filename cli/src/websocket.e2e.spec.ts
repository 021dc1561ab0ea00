import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ONLY, registerTenant, startHarness, type Harness } from './testing/harness';

/** A raw graphql-transport-ws session: the messages it got and how it closed. */
const rawSocket = async (url: string, key: string) => {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const messages: any[] = [];
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    socket.on('close', (code, reason) => resolve({ code, reason: String(reason), at: Date.now() })));
  socket.on('message', (m) => messages.push(JSON.parse(String(m))));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key}` } }));
  const next = async (pred: (m: any) => boolean, ms = 3000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const found = messages.find(pred);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no such message; got ${JSON.stringify(messages)}`);
  };
  await next((m) => m.type === 'connection_ack');
  return { socket, messages, closed, next };
};

describe('WebSocket: every operation authenticated, subscriptions only, bounded', () => {
  let h: Harness;
  let admin: string;

  beforeAll(async () => {
    h = await startHarness({
      env: { ...API_ONLY, WS_MAX_CONNECTION_MS: '1500', WS_MAX_PAYLOAD_BYTES: '10000', WS_MAX_CONNECTIONS_PER_KEY: '3', WS_MAX_SUBSCRIPTIONS_PER_KEY: '2' },
    });
    admin = await registerTenant(h, 'acme');
  });
  afterAll(() => h.stop());

  const issue = async (scopes: string) =>
    (await h.ok<{ issueApiKey: { token: string; keyId: string } }>(admin, `mutation { issueApiKey(input: { name: "k", scopes: [${scopes}] }) { token keyId } }`)).issueApiKey;

  it('refuses queries and mutations over the socket: a socket cannot mint an ADMIN key', async () => {
    const s = await rawSocket(h.wsUrl, admin);
    s.socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'mutation { issueApiKey(input: { name: "x", scopes: [ADMIN] }) { token } }' } }));
    s.socket.send(JSON.stringify({ id: '2', type: 'subscribe', payload: { query: '{ me { keyId } }' } }));
    const m1 = await s.next((m) => m.id === '1' && m.type === 'error');
    const m2 = await s.next((m) => m.id === '2' && m.type === 'error');
    expect(m1.payload[0].extensions.code).toBe('BAD_REQUEST');
    expect(m2.payload[0].extensions.code).toBe('BAD_REQUEST');
    const tenant = await h.ok<any>(admin, `{ tenant { apiKeys { name } } }`);
    expect(tenant.tenant.apiKeys.map((k: any) => k.name)).toEqual(['admin']);
    s.socket.close();
  });

  it("closes a revoked key's open sockets within a second, and its next subscribe fails", async () => {
    const key = await issue('READ');
    const s = await rawSocket(h.wsUrl, key.token);
    s.socket.send(JSON.stringify({ id: 'a', type: 'subscribe', payload: { query: 'subscription { deliveryEvents { type } }' } }));
    await new Promise((r) => setTimeout(r, 100));
    const revokedAt = Date.now();
    await h.ok(admin, `mutation($k: ID!) { revokeApiKey(keyId: $k) { tenantId } }`, { k: key.keyId });
    const closed = await Promise.race([s.closed, new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
    expect(closed).not.toBeNull();
    expect(closed!.code).toBe(4401);
    expect(closed!.at - revokedAt).toBeLessThan(1000);
  });

  it('closes operator sockets when the operator key is rotated', async () => {
    const operator = await h.ok<{ rotateOperatorKey: string }>(h.operatorKey, `mutation { rotateOperatorKey }`);
    const s = await rawSocket(h.wsUrl, operator.rotateOperatorKey);
    const again = await h.ok<{ rotateOperatorKey: string }>(operator.rotateOperatorKey, `mutation { rotateOperatorKey }`);
    const closed = await Promise.race([s.closed, new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
    expect(closed?.code).toBe(4401);
    // Hand the current operator key back to the harness's tests that follow.
    (h as { operatorKey: string }).operatorKey = again.rotateOperatorKey;
  });

  it('closes a connection at its maximum lifetime with a code graphql-ws clients reconnect on', async () => {
    const s = await rawSocket(h.wsUrl, admin);
    const opened = Date.now();
    const closed = await s.closed;
    expect(closed.code).toBe(1001);
    expect(closed.at - opened).toBeGreaterThanOrEqual(1400);
    expect(closed.at - opened).toBeLessThan(3000);
    // The client library retries 1001: a lazy client with retries resubscribes by itself.
    const client = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${admin}` }, retryAttempts: 3, retryWait: async () => undefined });
    let connects = 0;
    client.on('connected', () => connects++);
    const it = client.iterate({ query: 'subscription { deliveryEvents { type } }' });
    const reading = it.next();
    await new Promise((r) => setTimeout(r, 2200));
    expect(connects).toBeGreaterThanOrEqual(2);
    await it.return?.();
    await reading.catch(() => undefined);
    await client.dispose();
  });

  it('closes a socket whose message is over the size limit (1009), before and after authentication', async () => {
    const before = new WebSocket(h.wsUrl, 'graphql-transport-ws');
    await new Promise((r) => before.once('open', r));
    const closedBefore = new Promise<number>((r) => before.on('close', (code) => r(code)));
    before.on('error', () => undefined);
    before.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(20_000) } }));
    expect(await closedBefore).toBe(1009);

    const s = await rawSocket(h.wsUrl, admin);
    s.socket.send(JSON.stringify({ id: 'big', type: 'subscribe', payload: { query: `subscription { deliveryEvents(userId: "${'u'.repeat(20_000)}") { type } }` } }));
    expect((await s.closed).code).toBe(1009);
  });

  it('limits connections and subscriptions per key', async () => {
    const key = await issue('READ');
    const sockets = await Promise.all([1, 2, 3].map(() => rawSocket(h.wsUrl, key.token)));
    const fourth = new WebSocket(h.wsUrl, 'graphql-transport-ws');
    fourth.on('error', () => undefined);
    await new Promise((r) => fourth.once('open', r));
    const closed = new Promise<number>((r) => fourth.on('close', (code) => r(code)));
    fourth.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key.token}` } }));
    expect(await closed).toBe(1013);

    const s = sockets[0]!;
    for (const id of ['s1', 's2', 's3']) s.socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query: 'subscription { deliveryEvents { type } }' } }));
    const refused = await s.next((m) => m.type === 'error');
    expect(refused.id).toBe('s3');
    expect(refused.payload[0].extensions.code).toBe('RATE_LIMITED');
    for (const x of sockets) x.socket.close();
  });
});
