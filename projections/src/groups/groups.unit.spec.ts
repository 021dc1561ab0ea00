import { describe, it } from 'vitest';
import type { UserRegistered } from '#schema/events';
import { eventLog, ReadModelSpecification, sealed } from '../read-model.test-support';
import { groupsReadModel } from './evolve';
import type { GroupDocument } from './document';

const spec = ReadModelSpecification.for(groupsReadModel);

const registration = (userId: string, groupIds: readonly string[]): UserRegistered => ({
  type: 'UserRegistered',
  data: {
    userId,
    name: sealed(`name of ${userId}`),
    devices: [],
    consent: { start: '2026-01-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' },
    optIn: true,
    groupIds,
  },
});

describe('groups read model', () => {
  const setup = () => {
    const log = eventLog({ tenantId: 'acme' });
    const betaCreated = log.record({ type: 'GroupCreated', data: { groupId: 'beta', name: 'Beta testers' } });
    const gammaCreated = log.record({ type: 'GroupCreated', data: { groupId: 'gamma', name: 'Gamma' } });
    const beta: GroupDocument = {
      id: 'acme:beta',
      tenantId: 'acme',
      groupId: 'beta',
      name: 'Beta testers',
      memberCount: 0,
      createdAt: log.atPosition(1),
      updatedAt: log.atPosition(1),
    };
    const gamma: GroupDocument = { ...beta, id: 'acme:gamma', groupId: 'gamma', name: 'Gamma', createdAt: log.atPosition(2), updatedAt: log.atPosition(2) };
    return { log, created: [betaCreated, gammaCreated], beta, gamma };
  };

  it('creates an empty group', () => {
    const { created, beta, gamma } = setup();
    spec.given([]).when(created).thenAll([beta, gamma]);
  });

  it('renames a group', () => {
    const { log, created, beta } = setup();
    spec
      .given(created)
      .when([log.record({ type: 'GroupRenamed', data: { groupId: 'beta', name: 'Early access' } })])
      .then({ 'acme:beta': { ...beta, name: 'Early access', updatedAt: log.atPosition(3) } });
  });

  it('counts a registered user once in each of its groups', () => {
    const { log, created, beta, gamma } = setup();
    spec
      .given(created)
      .when([log.record(registration('u1', ['beta', 'gamma', 'beta'])), log.record(registration('u2', ['beta']))])
      .then({ 'acme:beta': { ...beta, memberCount: 2 }, 'acme:gamma': { ...gamma, memberCount: 1 } });
  });

  it('counts joins and leaves', () => {
    const { log, created, beta, gamma } = setup();
    spec
      .given([...created, log.record(registration('u1', ['beta']))])
      .when([
        log.record({ type: 'UserJoinedGroup', data: { userId: 'u2', groupId: 'beta' } }),
        log.record({ type: 'UserJoinedGroup', data: { userId: 'u1', groupId: 'gamma' } }),
        log.record({ type: 'UserLeftGroup', data: { userId: 'u1', groupId: 'beta' } }),
      ])
      .then({ 'acme:beta': { ...beta, memberCount: 1 }, 'acme:gamma': { ...gamma, memberCount: 1 } });
  });

  it('never counts below zero', () => {
    const { log, created, beta } = setup();
    spec
      .given(created)
      .when([log.record({ type: 'UserLeftGroup', data: { userId: 'u1', groupId: 'beta' } })])
      .then({ 'acme:beta': beta });
  });

  it('keeps groups of the same id apart per tenant', () => {
    const { created, beta } = setup();
    const globex = eventLog({ tenantId: 'globex' });
    const other = globex.record({ type: 'GroupCreated', data: { groupId: 'beta', name: 'Globex beta' } });
    spec
      .given(created)
      .when([{ ...other, position: 3 }, { ...globex.record(registration('u1', ['beta'])), position: 4 }])
      .then({
        'acme:beta': beta,
        'globex:beta': { ...beta, id: 'globex:beta', tenantId: 'globex', name: 'Globex beta', memberCount: 1, createdAt: other.metadata.at, updatedAt: other.metadata.at },
      });
  });

  it('ignores memberships of a group it never saw created', () => {
    const { log } = setup();
    spec
      .given([])
      .when([log.record({ type: 'UserJoinedGroup', data: { userId: 'u1', groupId: 'nope' } })])
      .thenAll([]);
  });
});
