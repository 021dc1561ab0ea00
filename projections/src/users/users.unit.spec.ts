import { shardOf } from '#schema/sharding';
import { describe, it } from 'vitest';
import type { UserRegistered } from '#schema/events';
import { eventLog, ReadModelSpecification, sealed } from '../read-model.test-support';
import { usersReadModel } from './evolve';
import type { UserDocument } from './document';

const spec = ReadModelSpecification.for(usersReadModel);

describe('users read model', () => {
  const setup = () => {
    const log = eventLog({ tenantId: 'acme' });
    const registered = log.record<UserRegistered>({
      type: 'UserRegistered',
      data: {
        userId: 'u1',
        name: sealed('Ada Lovelace'),
        devices: [{ deviceId: 'd1', kind: 'email', address: sealed('ada@example.com') }],
        consent: { start: '2026-01-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' },
        optIn: true,
        groupIds: ['beta', 'beta', 'gamma'],
      },
    });
    const ada: UserDocument = {
      id: 'acme:u1',
      tenantId: 'acme',
      userId: 'u1',
      name: sealed('Ada Lovelace'),
      devices: [{ deviceId: 'd1', kind: 'email', address: sealed('ada@example.com') }],
      consent: { start: '2026-01-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' },
      optIn: true,
      groupIds: ['beta', 'gamma'],
      registeredAt: log.atPosition(1),
      updatedAt: log.atPosition(1),
      revision: 0,
      shard: shardOf('u1'),
    };
    return { log, registered, ada };
  };

  it('creates the user on registration, keyed by tenant and user', () => {
    const { registered, ada } = setup();
    spec.given([]).when([registered]).thenAll([ada]);
  });

  it('keeps the same user id apart in two tenants', () => {
    const { registered, ada } = setup();
    const other = eventLog({ tenantId: 'globex' }).record(registered);
    spec
      .given([registered])
      .when([{ ...other, position: 2 }])
      .then({ 'acme:u1': ada, 'globex:u1': { ...ada, id: 'globex:u1', tenantId: 'globex', registeredAt: other.metadata.at, updatedAt: other.metadata.at } });
  });

  it('renames, and records the time and the stream revision', () => {
    const { log, registered, ada } = setup();
    const renamed = log.record({ type: 'UserRenamed', data: { userId: 'u1', name: sealed('Ada King') } });
    spec
      .given([registered])
      .when([renamed])
      .then({ 'acme:u1': { ...ada, name: sealed('Ada King'), updatedAt: log.atPosition(2), revision: 1 } });
  });

  it('adds, changes and removes devices in place', () => {
    const { log, registered, ada } = setup();
    const sms = { deviceId: 'd2', kind: 'sms', address: sealed('+4915112345678') } as const;
    const email = { deviceId: 'd1', kind: 'email', address: sealed('ada@example.org') } as const;
    spec
      .given([registered])
      .when([
        log.record({ type: 'DeviceAdded', data: { userId: 'u1', device: sms } }),
        log.record({ type: 'DeviceChanged', data: { userId: 'u1', device: email } }),
      ])
      .then({ 'acme:u1': { ...ada, devices: [email, sms], updatedAt: log.atPosition(3), revision: 2 } });
  });

  it('removes a device', () => {
    const { log, registered, ada } = setup();
    spec
      .given([registered])
      .when([log.record({ type: 'DeviceRemoved', data: { userId: 'u1', deviceId: 'd1' } })])
      .then({ 'acme:u1': { ...ada, devices: [], updatedAt: log.atPosition(2), revision: 1 } });
  });

  it('changes consent and opt-in', () => {
    const { log, registered, ada } = setup();
    const consent = { start: '2026-02-01T00:00:00.000Z', end: '2026-08-01T00:00:00.000Z' };
    spec
      .given([registered])
      .when([
        log.record({ type: 'ConsentPeriodChanged', data: { userId: 'u1', consent } }),
        log.record({ type: 'OptInChanged', data: { userId: 'u1', optIn: false } }),
      ])
      .then({ 'acme:u1': { ...ada, consent, optIn: false, updatedAt: log.atPosition(3), revision: 2 } });
  });

  it('joins and leaves groups, never listing one twice', () => {
    const { log, registered, ada } = setup();
    spec
      .given([registered])
      .when([
        log.record({ type: 'UserJoinedGroup', data: { userId: 'u1', groupId: 'delta' } }),
        log.record({ type: 'UserJoinedGroup', data: { userId: 'u1', groupId: 'delta' } }),
        log.record({ type: 'UserLeftGroup', data: { userId: 'u1', groupId: 'beta' } }),
      ])
      .then({ 'acme:u1': { ...ada, groupIds: ['gamma', 'delta'], updatedAt: log.atPosition(4), revision: 3 } });
  });

  it('ignores an event it has already applied (same or older stream revision)', () => {
    const { log, registered } = setup();
    const optedOut = log.record({ type: 'OptInChanged', data: { userId: 'u1', optIn: false } });
    spec.given([registered, optedOut]).when([optedOut, registered]).thenUnchanged();
  });

  it('ignores changes to a user it never saw registered, and events of other aggregates', () => {
    const { log } = setup();
    spec
      .given([])
      .when([
        log.record({ type: 'OptInChanged', data: { userId: 'u9', optIn: false } }),
        log.record({ type: 'GroupCreated', data: { groupId: 'beta', name: 'Beta testers' } }),
      ])
      .thenAll([]);
  });
});
