import { expect } from 'vitest';
import type { AnyEvent, EventMetadata, RecordedEvent, Sealed } from '#schema/events';
import { streams } from '#schema/streams';
import type { Doc } from '#platform/read-store/port';
import { foldEvents, touchedIds } from './fold';
import type { ReadModel } from './read-model';

export const sealed = (plain: string): Sealed => `pd1.${Buffer.from(plain).toString('base64url')}` as Sealed;

/** The stream a decider would have appended the event to. */
export const streamOf = (tenantId: string, event: AnyEvent): string => {
  switch (event.type) {
    case 'OperatorKeyIssued':
    case 'OperatorKeyRevoked':
      return streams.operator();
    case 'TenantRegistered':
    case 'DeliveryDeadlineChanged':
    case 'DeliveryHistoryChanged':
    case 'ApiKeyIssued':
    case 'ApiKeyRevoked':
      return streams.tenant(event.data.tenantId);
    case 'UserRegistered':
    case 'UserRenamed':
    case 'DeviceAdded':
    case 'DeviceChanged':
    case 'DeviceRemoved':
    case 'ConsentPeriodChanged':
    case 'OptInChanged':
    case 'UserJoinedGroup':
    case 'UserLeftGroup':
    case 'ConsentExpired':
    case 'UserErasureRequested':
    case 'UserDataShredded':
    case 'DeviceInvalidated':
      return streams.user(tenantId, event.data.userId);
    case 'NotificationPlanningProgressed':
    case 'NotificationPlanned':
    case 'NotificationCompleted':
      return streams.notification(tenantId, event.data.notificationId);
    case 'DeliveryDispatched':
    case 'DeliveryAttempted':
    case 'DeliverySucceeded':
    case 'DeliveryFailed':
    case 'DeliveryExpired':
      return streams.deliveries(tenantId, event.data.notificationId, 0);
    case 'DeliverySlicePlanned':
      return streams.deliveries(tenantId, event.data.notificationId, event.data.partition);
    case 'NotificationSliced':
      return streams.notification(tenantId, event.data.notificationId);
    case 'DeliveryReceipted':
      return streams.receipt(tenantId, event.data.deliveries[0]!.deliveryId);
    case 'ProviderCircuitChanged':
      return streams.provider(event.data.provider);
    case 'ProviderConfigured':
    case 'ProviderRemoved':
    case 'ProviderCredentialsRejected':
      return streams.integrations(event.data.owner);
    case 'WebhookEndpointRegistered':
    case 'WebhookEndpointChanged':
    case 'WebhookEndpointRemoved':
    case 'WebhookEndpointDisabled':
    case 'WebhookEndpointEnabled':
      return streams.webhooks(tenantId);
    case 'GroupCreated':
    case 'GroupRenamed':
      return streams.group(tenantId, event.data.groupId);
    case 'NotificationRequested':
      return streams.notification(tenantId, event.data.notificationId);
    default: {
      const never: never = event;
      throw new Error(`unknown event ${JSON.stringify(never)}`);
    }
  }
};

export const T0 = Date.parse('2026-03-01T09:00:00.000Z');

/**
 * Records plain events as the store would: positions from 1, revisions per stream, and one
 * minute between events so times are easy to read in assertions.
 */
export const eventLog = (options: Readonly<{ tenantId?: string; actor?: string }> = {}) => {
  const tenantId = options.tenantId ?? 'acme';
  let position = 0;
  const revisions = new Map<string, number>();
  const record = <E extends AnyEvent>(event: E, metadata: Partial<EventMetadata> = {}): RecordedEvent<E> => {
    position += 1;
    const tenant = metadata.tenantId ?? tenantId;
    const streamName = streamOf(tenant, event);
    const revision = (revisions.get(streamName) ?? -1) + 1;
    revisions.set(streamName, revision);
    return {
      ...event,
      streamName,
      revision,
      position,
      metadata: {
        tenantId: tenant,
        actor: options.actor ?? 'kadmin',
        requestId: `req-${position}`,
        at: new Date(T0 + position * 60_000).toISOString(),
        ...metadata,
      },
    } as RecordedEvent<E>;
  };
  return { record, atPosition: (p: number) => new Date(T0 + p * 60_000).toISOString() };
};

type Docs<D> = Readonly<Record<string, D | null>>;

/**
 * Given / when / then for a read model on an in-memory collection, folding the same way the
 * runner does: `then` lists the documents expected after `when` (null: absent), `thenAll` the
 * whole collection.
 */
export const ReadModelSpecification = {
  for: <D extends Doc>(model: ReadModel<D>) => ({
    given: (given: readonly RecordedEvent[]) => ({
      when: (when: readonly RecordedEvent[]) => {
        const run = (): Map<string, D> => {
          const collection = new Map<string, D>();
          for (const batch of [given, when]) {
            const docs = new Map<string, D | null>(collection);
            for (const id of touchedIds(model, batch)) if (!docs.has(id)) docs.set(id, null);
            const folded = foldEvents(model, docs, batch);
            collection.clear();
            for (const [id, doc] of folded.docs) if (doc) collection.set(id, doc);
          }
          return collection;
        };
        return {
          then: (expected: Docs<D>) => {
            const collection = run();
            for (const [id, doc] of Object.entries(expected)) expect(collection.get(id) ?? null, id).toEqual(doc);
          },
          thenAll: (expected: readonly D[]) => {
            expect([...run().values()].sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(expected);
          },
          thenUnchanged: () => {
            const before = ReadModelSpecification.for(model).given([]).when(given).collection();
            expect(run()).toEqual(before);
          },
          collection: () => run(),
        };
      },
    }),
  }),
};
