import { describe, expect, it } from 'vitest';
import type { UserRegistered } from '../../schema/src/events';
import { eventLog, ReadModelSpecification, sealed } from './read-model.test-support';
import { usersReadModel } from './users/evolve';
import { groupsReadModel } from './groups/evolve';
import { timelineReadModel } from './timeline/evolve';

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

  it("timeline: shredding purges the user's whole timeline and adds nothing", () => {
    const log = eventLog();
    const shredded = log.record({ type: 'UserDataShredded', data: { userId: 'u', reason: 'erasure-requested', groupIds: [] } });
    expect(timelineReadModel.purge?.(shredded)).toEqual({ tenantId: 'acme', userId: 'u' });
    expect(timelineReadModel.evolve(null, shredded, 'acme:u:1')).toBeNull();
    const expired = log.record({ type: 'ConsentExpired', data: { userId: 'u', consentEnd: '2027-01-01T00:00:00.000Z' } });
    expect(timelineReadModel.evolve(null, expired, 'x')?.summary).toBe('consent period ended at 2027-01-01T00:00:00.000Z');
    expect(timelineReadModel.purge?.(expired)).toBeNull();
  });
});
