import { describe, expect, it } from 'vitest';
import type { NotificationRequested } from '#schema/events';
import { eventLog, ReadModelSpecification } from '../read-model.test-support';
import { notificationsReadModel } from './evolve';
import type { NotificationDocument } from './document';

const spec = ReadModelSpecification.for(notificationsReadModel);

const requested = (notificationId: string, target: NotificationRequested['data']['target']): NotificationRequested => ({
  type: 'NotificationRequested',
  data: {
    notificationId,
    text: 'Your parcel is on its way',
    target,
    idempotencyKey: `idem-${notificationId}`,
    requestHash: 'f'.repeat(64),
    requestedAt: '2026-03-01T09:00:30.000Z',
    deadline: '2026-03-01T09:20:30.000Z',
  },
});

describe('notifications read model', () => {
  it('records a request with empty progress', () => {
    const log = eventLog({ tenantId: 'acme' });
    const event = log.record(requested('n1', { kind: 'group', groupId: 'beta' }));
    const expected: NotificationDocument = {
      id: 'acme:n1',
      tenantId: 'acme',
      notificationId: 'n1',
      text: 'Your parcel is on its way',
      target: { kind: 'group', groupId: 'beta' },
      idempotencyKey: 'idem-n1',
      status: 'REQUESTED',
      requestedAt: '2026-03-01T09:00:30.000Z',
      deadline: '2026-03-01T09:20:30.000Z',
      progress: { recipients: null, total: 0, pending: 0, succeeded: 0, failed: 0, expired: 0, byChannel: {}, byProvider: {} },
      lastPosition: 1,
    };
    spec.given([]).when([event]).thenAll([expected]);
  });

  it('keeps an explicit list of users, and never the request hash', () => {
    const log = eventLog({ tenantId: 'acme' });
    const doc = spec
      .given([])
      .when([log.record(requested('n2', { kind: 'users', userIds: ['u1', 'u2'] }))])
      .collection()
      .get('acme:n2');
    expect(doc?.target).toEqual({ kind: 'users', userIds: ['u1', 'u2'] });
    expect(doc).not.toHaveProperty('requestHash');
  });

  it('sums the copies beyond the first that may have reached devices, older events counting their flag as one', () => {
    const log = eventLog({ tenantId: 'acme' });
    const req = log.record(requested('n3', { kind: 'users', userIds: ['u1', 'u2', 'u3', 'u4'] }));
    const common = { notificationId: 'n3', requestedPosition: req.position, requestedAt: '2026-03-01T09:00:30.000Z' };
    const ref = (u: string) => ({ deliveryId: `dl-${u}`, userId: u, deviceId: 'd', channel: 'android' as const });
    const doc = spec
      .given([req])
      .when([
        log.record({
          type: 'DeliverySlicePlanned',
          data: { ...common, partition: 0, cursor: null, done: true, recipients: 4, byChannel: { ios: 0, android: 4, email: 0, sms: 0 }, skipped: {}, deliveries: ['u1', 'u2', 'u3', 'u4'].map(ref) },
        }),
        log.record({
          type: 'DeliverySucceeded',
          data: {
            ...common,
            deliveries: [
              { ...ref('u1'), provider: 'fcm-secondary' },
              { ...ref('u2'), provider: 'fcm-secondary', possiblyDuplicate: true, possibleCopies: 3 },
              { ...ref('u3'), provider: 'fcm-secondary', possiblyDuplicate: true },
              { ...ref('u4'), provider: 'fcm-secondary', possiblyDuplicate: true, possibleCopies: 2 },
            ],
          },
        }),
      ])
      .collection()
      .get('acme:n3')!;
    expect(doc.progress).toMatchObject({ succeeded: 4, possiblyDuplicated: 3, possibleExtraCopies: 4 });
  });

  it('ignores a replayed event', () => {
    const log = eventLog({ tenantId: 'acme' });
    const event = log.record(requested('n1', { kind: 'group', groupId: 'beta' }));
    spec.given([event]).when([event]).thenUnchanged();
  });

  it('ignores other events', () => {
    const log = eventLog({ tenantId: 'acme' });
    spec.given([]).when([log.record({ type: 'GroupCreated', data: { groupId: 'beta', name: 'Beta' } })]).thenAll([]);
  });
});
