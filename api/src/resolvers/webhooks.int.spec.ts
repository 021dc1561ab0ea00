import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { graphql } from 'graphql';
import { streams } from '#schema/streams';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { systemClock } from '#platform/clock';
import { randomIds } from '#platform/ids';
import { createCommands } from '#command/application';
import { handleCommand } from '#command/handler';
import { webhookDecider } from '#command/webhook/decider';
import {
  WEBHOOK_ATTEMPTS,
  WEBHOOK_ENDPOINTS,
  WEBHOOK_SENDERS,
  attemptDocId,
  endpointKey,
  webhookCollections,
  type WebhookAttemptDocument,
  type WebhookEndpointDocument,
  type WebhookSenderDocument,
} from '#projections/webhooks/document';
import { apiSchema } from '../schema';
import type { GraphQLContext, Services } from '../context';
import type { Principal } from '../auth';

const admin: Principal = { kind: 'tenant', tenantId: 'acme', keyId: 'k-admin', scopes: ['admin'] };
const reader: Principal = { kind: 'tenant', tenantId: 'acme', keyId: 'k-read', scopes: ['read', 'users:write'] };

describe('webhooks over GraphQL', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webhooks-api-'));
  const eventStore = openSqliteEventStore({ path: path.join(dir, 'events.db') });
  const readStore = openSqliteReadStore({ path: path.join(dir, 'read.db') });
  const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
  const cipher = new PersonalDataCipher(vault, randomBytes(32));
  const commands = createCommands({ eventStore, cipher, clock: systemClock, ids: randomIds, eraser: { shred: async () => [] }, webhookUrls: { allowHttpLocalhost: true } });
  const services = { commands, eventStore, readStore, cipher } as unknown as Services;
  const url = 'http://127.0.0.1:9/in';

  const run = async (principal: Principal, source: string, variables?: Record<string, unknown>) => {
    const contextValue: GraphQLContext = { principal, requestId: 'r', services, api: {} as GraphQLContext['api'] };
    const result = await graphql({ schema: await apiSchema(), source, contextValue, ...(variables ? { variableValues: variables } : {}) });
    const codes = (result.errors ?? []).map((e) => (e.originalError as { code?: string } | undefined)?.code ?? e.message);
    return { data: result.data as Record<string, any> | null | undefined, codes };
  };

  afterAll(() => Promise.all([eventStore.close(), readStore.close(), vault.close()]));

  /** What the dispatcher (delivery/src/webhooks) records: 3 messages queued, 1 sent, then 2 failing requests. */
  const dispatched = async (endpointId: string) => {
    const key = endpointKey('acme', endpointId);
    const registry = (await readStore.get<WebhookEndpointDocument>(WEBHOOK_ENDPOINTS, key))!;
    const attempt = (n: number, ok: boolean): WebhookAttemptDocument => ({
      id: attemptDocId(key, n), endpointKey: key, n, at: `2026-12-01T10:00:0${n}.000Z`, webhookId: `batch_${n}_0-${n}_0`, messages: 1,
      status: ok ? 200 : 503, error: ok ? null : 'http-503', durationMs: 12, ok,
    });
    const sender: WebhookSenderDocument = {
      id: key, tenantId: 'acme', endpointId, version: 1, sent: 1, attempts: 3, failures: 2, failingSince: '2026-12-01T10:00:02.000Z', lastSuccessAt: '2026-12-01T10:00:01.000Z',
    };
    await readStore.commit({ checkpoints: [], changes: [
      { op: 'put', collection: WEBHOOK_ENDPOINTS, doc: { ...registry, queued: 3 } },
      { op: 'put', collection: WEBHOOK_SENDERS, doc: sender },
      ...[attempt(1, true), attempt(2, false), attempt(3, false)].map((doc) => ({ op: 'put' as const, collection: WEBHOOK_ATTEMPTS, doc })),
    ] });
  };

  it('registers an endpoint for admins only, shows the secret once, then its deliveries; changes and removes it', async () => {
    const register = 'mutation($in: RegisterWebhookInput!) { registerWebhook(input: $in) { secret endpoint { endpointId url events enabled secretHint pending } } }';
    expect((await run(reader, register, { in: { url, events: ['NOTIFICATION_COMPLETED'] } })).codes).toEqual(['FORBIDDEN']);
    expect((await run(admin, register, { in: { url: 'http://hooks.example.com/in', events: ['NOTIFICATION_COMPLETED'] } })).codes).toEqual(['BAD_USER_INPUT']);
    expect((await run(admin, register, { in: { url: `https://h.example/${'a'.repeat(2048)}`, events: ['NOTIFICATION_COMPLETED'] } })).codes).toEqual(['BAD_USER_INPUT']);

    const registered = await run(admin, register, { in: { url, events: ['NOTIFICATION_COMPLETED', 'USER_SHREDDED'] } });
    expect(registered.codes).toEqual([]);
    const { secret, endpoint } = registered.data!['registerWebhook'];
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/=]{44}$/);
    expect(endpoint).toMatchObject({ url, events: ['NOTIFICATION_COMPLETED', 'USER_SHREDDED'], enabled: true, pending: 0, secretHint: `whsec_…${secret.slice(-5, -1)}` });
    const logged = JSON.stringify(await eventStore.readStream(streams.webhooks('acme')));
    expect(logged).not.toContain(secret.slice('whsec_'.length));

    const list = '{ webhooks { endpointId enabled disabled { reason } secretHint pending failingSince lastSuccessAt lastAttempts(first: 2) { at ok status messages webhookId error durationMs } } }';
    expect((await run(admin, list)).data!['webhooks']).toEqual([
      { endpointId: endpoint.endpointId, enabled: true, disabled: null, secretHint: endpoint.secretHint, pending: 0, failingSince: null, lastSuccessAt: null, lastAttempts: [] },
    ]);
    // The dispatcher's registry entry appears when it follows the log; here it is made as it would.
    await readStore.ensureCollections(webhookCollections);
    const [registeredEvent] = await eventStore.readStream(streams.webhooks('acme'));
    await readStore.commit({ checkpoints: [], changes: [{ op: 'put', collection: WEBHOOK_ENDPOINTS, doc: {
      id: endpointKey('acme', endpoint.endpointId), tenantId: 'acme', endpointId: endpoint.endpointId, url, events: ['notification.completed', 'user.shredded'],
      secret: (registeredEvent!.data as { secret: string }).secret, status: 'enabled', version: 1, queued: 0, position: registeredEvent!.position,
    } }] });
    await dispatched(endpoint.endpointId);
    expect((await run(admin, list)).data!['webhooks']).toEqual([{
      endpointId: endpoint.endpointId, enabled: true, disabled: null, secretHint: endpoint.secretHint, pending: 2,
      failingSince: '2026-12-01T10:00:02.000Z', lastSuccessAt: '2026-12-01T10:00:01.000Z',
      lastAttempts: [
        { at: '2026-12-01T10:00:03.000Z', ok: false, status: 503, messages: 1, webhookId: 'batch_3_0-3_0', error: 'http-503', durationMs: 12 },
        { at: '2026-12-01T10:00:02.000Z', ok: false, status: 503, messages: 1, webhookId: 'batch_2_0-2_0', error: 'http-503', durationMs: 12 },
      ],
    }]);
    expect((await run(reader, list)).codes).toEqual(['FORBIDDEN']);
    expect((await run(admin, '{ webhooks { lastAttempts(first: 101) { ok } } }')).codes).toEqual(['BAD_USER_INPUT']);

    const changed = await run(admin, 'mutation($in: ChangeWebhookInput!) { changeWebhook(input: $in) { events url } }', { in: { endpointId: endpoint.endpointId, events: ['DELIVERY_FAILED'] } });
    expect(changed.data!['changeWebhook']).toEqual({ events: ['DELIVERY_FAILED'], url });
    // As the dispatcher records it after failing continuously (the change made version 2).
    await handleCommand(eventStore, streams.webhooks('acme'), webhookDecider, {
      type: 'DisableWebhookEndpoint', data: { endpointId: endpoint.endpointId, reason: 'continuous-failure', failingSince: '2026-12-01T10:00:02.000Z', version: 2 }, now: new Date(),
    }, { tenantId: 'acme', actor: 'system', requestId: 'r', at: new Date().toISOString() });
    expect((await run(admin, '{ webhooks { enabled disabled { reason failingSince } } }')).data!['webhooks']).toEqual([
      { enabled: false, disabled: { reason: 'continuous-failure', failingSince: '2026-12-01T10:00:02.000Z' } },
    ]);
    const enable = 'mutation($id: ID!) { enableWebhook(endpointId: $id) { enabled disabled { reason } } }';
    expect((await run(admin, enable, { id: endpoint.endpointId })).data!['enableWebhook']).toEqual({ enabled: true, disabled: null });
    expect((await run(admin, enable, { id: endpoint.endpointId })).data!['enableWebhook']).toEqual({ enabled: true, disabled: null });
    expect((await run(admin, 'mutation($id: ID!) { removeWebhook(endpointId: $id) }', { id: endpoint.endpointId })).data!['removeWebhook']).toBe(endpoint.endpointId);
    expect((await run(admin, 'mutation($id: ID!) { removeWebhook(endpointId: $id) }', { id: endpoint.endpointId })).codes).toEqual(['NOT_FOUND']);
    expect((await run(admin, '{ webhooks { endpointId } }')).data!['webhooks']).toEqual([]);
  });
});
