import { describe, expect, it } from 'vitest';
import type { NotificationRequested, UserRegistered } from '#schema/events';
import { eventLog, ReadModelSpecification, sealed } from './read-model.test-support';
import { usersReadModel } from './users/evolve';
import { groupsReadModel } from './groups/evolve';
import { timelineReadModel } from './timeline/evolve';
import { deliveryEntryId, erasureMarkId, type TimelineEntryDocument } from './timeline/document';

const registered: UserRegistered = {
  type: 'UserRegistered',
  data: { userId: 'u', name: sealed('n'), devices: [], consent: { start: '2026-01-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' }, optIn: true, groupIds: ['g'] },
};

describe('read models on erasure', () => {
  it('users: the user leaves as soon as the erasure is decided', () => {
    for (const decided of [{ type: 'ConsentExpired', data: { userId: 'u', consentEnd: '2027-01-01T00:00:00.000Z' } }, { type: 'UserErasureRequested', data: { userId: 'u' } }] as const) {
      const log = eventLog();
      ReadModelSpecification.for(usersReadModel).given([log.record(registered)]).when([log.record(decided)]).then({ 'acme:u': null });
    }
  });

  it('groups: a shredded user leaves every group count', () => {
    const log = eventLog();
    const given = [
      log.record({ type: 'GroupCreated', data: { groupId: 'g', name: 'G' } }),
      log.record(registered),
      log.record({ type: 'UserRegistered', data: { ...registered.data, userId: 'v' } }),
    ];
    const collection = ReadModelSpecification.for(groupsReadModel)
      .given(given)
      .when([log.record({ type: 'UserDataShredded', data: { userId: 'u', reason: 'consent-expired', groupIds: ['g'] } })])
      .collection();
    expect(collection.get('acme:g')?.memberCount).toBe(1);
  });

  it("timeline: shredding purges the user's whole timeline and leaves only a mark of where", () => {
    const log = eventLog();
    const given = [log.record(registered), log.record({ type: 'OptInChanged', data: { userId: 'u', optIn: false } })];
    const shredded = log.record({ type: 'UserDataShredded', data: { userId: 'u', reason: 'erasure-requested', groupIds: [] } });
    expect(timelineReadModel.purge?.(shredded)).toEqual({ tenantId: 'acme', userId: 'u' });
    const left = [...ReadModelSpecification.for(timelineReadModel).given(given).when([shredded]).collection().values()];
    expect(left).toEqual([
      expect.objectContaining({ id: erasureMarkId('acme', 'u'), tenantId: 'acme', userId: '~erased', position: shredded.position, summary: 'data shredded' }),
    ]);
    const expired = log.record({ type: 'ConsentExpired', data: { userId: 'u', consentEnd: '2027-01-01T00:00:00.000Z' } });
    expect(timelineReadModel.evolve(null, expired, 'x', () => null)?.summary).toBe('consent period ended at 2027-01-01T00:00:00.000Z');
    expect(timelineReadModel.purge?.(expired)).toBeNull();
  });

  describe('timeline: a send answered after the erasure', () => {
    const ref = { deliveryId: 'dl-1', userId: 'u', deviceId: 'd1', channel: 'email' as const };
    const request: NotificationRequested = {
      type: 'NotificationRequested',
      data: {
        notificationId: 'n1',
        text: 'hi',
        target: { kind: 'users', userIds: ['u'] },
        idempotencyKey: null,
        requestHash: 'h',
        requestedAt: '2026-03-01T09:00:00.000Z',
        deadline: '2026-03-01T10:00:00.000Z',
      },
    };
    const setup = () => {
      const log = eventLog();
      const reg = log.record(registered);
      const requested = log.record(request);
      const outcome = (requestedPosition: number) => [
        log.record({ type: 'DeliveryAttempted', data: { notificationId: 'n1', requestedPosition, requestedAt: requested.metadata.at, deliveries: [{ ...ref, provider: 'sendgrid', latencyMs: 12, outcome: 'accepted' }] } }),
        log.record({ type: 'DeliverySucceeded', data: { notificationId: 'n1', requestedPosition, requestedAt: requested.metadata.at, deliveries: [{ ...ref, provider: 'sendgrid' }] } }),
      ];
      return { log, reg, requested, outcome };
    };
    const spec = ReadModelSpecification.for(timelineReadModel);
    const ofUser = (docs: Map<string, TimelineEntryDocument>) => [...docs.values()].filter((d) => d.userId === 'u');

    it('creates no entry for a request made before the shredding, in a later batch or the same one', () => {
      const { log, reg, requested, outcome } = setup();
      const shredded = log.record({ type: 'UserDataShredded', data: { userId: 'u', reason: 'erasure-requested', groupIds: [] } });
      const late = outcome(requested.position);
      expect(ofUser(spec.given([reg, requested, shredded]).when(late).collection())).toEqual([]);
      expect(ofUser(spec.given([]).when([reg, requested, shredded, ...late]).collection())).toEqual([]);
    });

    it('records the deliveries of a user registered again after the shredding', () => {
      const { log, reg, requested, outcome } = setup();
      const shredded = log.record({ type: 'UserDataShredded', data: { userId: 'u', reason: 'erasure-requested', groupIds: [] } });
      const again = log.record(registered);
      const second = log.record(request);
      const docs = spec.given([reg, requested, shredded, again, second]).when([...outcome(requested.position), ...outcome(second.position)]).collection();
      expect(docs.has(deliveryEntryId('acme', 'u', requested.position, 'd1'))).toBe(false);
      expect(docs.get(deliveryEntryId('acme', 'u', second.position, 'd1'))).toMatchObject({ status: 'succeeded', provider: 'sendgrid' });
    });

    it('still records an outcome when no erasure happened', () => {
      const { reg, requested, outcome } = setup();
      const docs = spec.given([reg, requested]).when(outcome(requested.position)).collection();
      expect(docs.get(deliveryEntryId('acme', 'u', requested.position, 'd1'))?.status).toBe('succeeded');
    });

    it('creates no entry for a device invalidated by a send requested before the shredding', () => {
      const { log, reg, requested } = setup();
      const shredded = log.record({ type: 'UserDataShredded', data: { userId: 'u', reason: 'consent-expired', groupIds: [] } });
      const invalidated = log.record({ type: 'DeviceInvalidated', data: { userId: 'u', deviceId: 'd1', provider: 'fcm', reason: 'unregistered', requestedPosition: requested.position } });
      expect(ofUser(spec.given([reg, requested, shredded]).when([invalidated]).collection())).toEqual([]);
    });
  });
});
