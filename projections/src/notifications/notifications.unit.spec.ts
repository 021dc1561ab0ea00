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
