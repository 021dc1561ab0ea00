import { describe, it } from 'vitest';
import type { ConsentPeriod, Sealed, SealedDevice, UserEvent } from '#schema/events';
import type { UserCommand } from '#schema/commands';
import { DeciderSpecification } from '../decider-spec';
import { userDecider } from './decider';

const sealed = (s: string) => s as Sealed;
const now = new Date('2026-06-01T00:00:00Z');
const consent: ConsentPeriod = { start: '2026-01-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' };
const device = (id: string, kind: SealedDevice['kind'] = 'email'): SealedDevice => ({ deviceId: id, kind, address: sealed(`sealed-${id}`) });
const spec = DeciderSpecification.for(userDecider);
const cmd = (c: Omit<UserCommand, 'now'>): UserCommand => ({ ...c, now }) as UserCommand;

const registered: UserEvent = {
  type: 'UserRegistered',
  data: { userId: 'u', name: sealed('n1'), devices: [device('d1')], consent, optIn: true, groupIds: ['g1'] },
};

describe('user decider', () => {
  describe('RegisterUser', () => {
    const register = (over: Partial<Extract<UserCommand, { type: 'RegisterUser' }>['data']> = {}) =>
      cmd({ type: 'RegisterUser', data: { userId: 'u', name: sealed('n1'), devices: [device('d1')], consent, optIn: true, groupIds: ['g1', 'g1'], ...over } });

    it('registers, de-duplicating groups', () => spec.given([]).when(register()).then([registered]));
    it('rejects an existing user', () => spec.given([registered]).when(register()).thenThrows('CONFLICT', /user u already exists/));
    it('needs a device', () => spec.given([]).when(register({ devices: [] })).thenThrows('BAD_USER_INPUT', /devices: a user needs at least one device/));
    it('allows at most 20 devices', () =>
      spec.given([]).when(register({ devices: Array.from({ length: 21 }, (_, i) => device(`d${i}`)) })).thenThrows('BAD_USER_INPUT', /21 devices, the limit is 20/));
    it('rejects duplicate device ids', () => spec.given([]).when(register({ devices: [device('d1'), device('d1')] })).thenThrows('BAD_USER_INPUT', /unique/));
    it('rejects a consent period that ends before it starts', () =>
      spec.given([]).when(register({ consent: { start: consent.end, end: consent.start } })).thenThrows('BAD_USER_INPUT', /consent\.end/));
    it('rejects a consent period that has already ended', () =>
      spec.given([]).when(register({ consent: { start: '2025-01-01T00:00:00.000Z', end: '2026-05-31T00:00:00.000Z' } })).thenThrows('BAD_USER_INPUT', /consent\.end: .* already passed/));
    it('allows at most 100 groups', () =>
      spec.given([]).when(register({ groupIds: Array.from({ length: 101 }, (_, i) => `g${i}`) })).thenThrows('BAD_USER_INPUT', /101 groups, the limit is 100/));
  });

  describe('UpdateUser', () => {
    it('records only what changes', () =>
      spec.given([registered]).when(cmd({ type: 'UpdateUser', data: { userId: 'u', name: sealed('n2'), optIn: false, consent, groupIds: ['g2'] } })).then([
        { type: 'UserRenamed', data: { userId: 'u', name: sealed('n2') } },
        { type: 'OptInChanged', data: { userId: 'u', optIn: false } },
        { type: 'UserJoinedGroup', data: { userId: 'u', groupId: 'g2' } },
        { type: 'UserLeftGroup', data: { userId: 'u', groupId: 'g1' } },
      ]));
    it('changes the consent period', () => {
      const next = { start: '2026-02-01T00:00:00.000Z', end: '2028-01-01T00:00:00.000Z' };
      spec.given([registered]).when(cmd({ type: 'UpdateUser', data: { userId: 'u', consent: next } })).then([{ type: 'ConsentPeriodChanged', data: { userId: 'u', consent: next } }]);
    });
    it('does nothing when nothing changes', () =>
      spec.given([registered]).when(cmd({ type: 'UpdateUser', data: { userId: 'u', optIn: true, groupIds: ['g1'], consent } })).thenNothingHappens());
    it('rejects an unknown user', () => spec.given([]).when(cmd({ type: 'UpdateUser', data: { userId: 'u', optIn: false } })).thenThrows('NOT_FOUND', /user u was not found/));
    it('accepts a consent period shortened into the past: the expiry then runs at once', () =>
      spec
        .given([registered])
        .when(cmd({ type: 'UpdateUser', data: { userId: 'u', consent: { start: '2020-01-01T00:00:00Z', end: '2021-01-01T00:00:00Z' } } }))
        .then([{ type: 'ConsentPeriodChanged', data: { userId: 'u', consent: { start: '2020-01-01T00:00:00.000Z', end: '2021-01-01T00:00:00.000Z' } } }]));
    it('still rejects a consent period that ends before it starts', () =>
      spec.given([registered]).when(cmd({ type: 'UpdateUser', data: { userId: 'u', consent: { start: '2022-01-01T00:00:00Z', end: '2021-01-01T00:00:00Z' } } })).thenThrows('BAD_USER_INPUT', /consent\.end/));
  });

  describe('devices', () => {
    it('adds a device', () =>
      spec.given([registered]).when(cmd({ type: 'AddDevice', data: { userId: 'u', device: device('d2', 'sms') } })).then([{ type: 'DeviceAdded', data: { userId: 'u', device: device('d2', 'sms') } }]));
    it('rejects a device id in use', () => spec.given([registered]).when(cmd({ type: 'AddDevice', data: { userId: 'u', device: device('d1') } })).thenThrows('CONFLICT', /d1/));
    it('rejects a 21st device', () =>
      spec
        .given([registered, ...Array.from({ length: 19 }, (_, i): UserEvent => ({ type: 'DeviceAdded', data: { userId: 'u', device: device(`x${i}`) } }))])
        .when(cmd({ type: 'AddDevice', data: { userId: 'u', device: device('y') } }))
        .thenThrows('BAD_USER_INPUT', /20 devices, the limit is 20/));
    it('changes a device, even its kind', () =>
      spec.given([registered]).when(cmd({ type: 'ChangeDevice', data: { userId: 'u', device: device('d1', 'ios') } })).then([{ type: 'DeviceChanged', data: { userId: 'u', device: device('d1', 'ios') } }]));
    it('rejects changing an unknown device', () =>
      spec.given([registered]).when(cmd({ type: 'ChangeDevice', data: { userId: 'u', device: device('zz') } })).thenThrows('NOT_FOUND', /device zz was not found/));
    it('removes a device', () =>
      spec
        .given([registered, { type: 'DeviceAdded', data: { userId: 'u', device: device('d2') } }])
        .when(cmd({ type: 'RemoveDevice', data: { userId: 'u', deviceId: 'd1' } }))
        .then([{ type: 'DeviceRemoved', data: { userId: 'u', deviceId: 'd1' } }]));
    it('refuses to remove the last device', () =>
      spec.given([registered]).when(cmd({ type: 'RemoveDevice', data: { userId: 'u', deviceId: 'd1' } })).thenThrows('BAD_USER_INPUT', /deviceId: .* at least one device/));
    it('refuses to remove an already removed device', () =>
      spec
        .given([registered, { type: 'DeviceAdded', data: { userId: 'u', device: device('d2') } }, { type: 'DeviceRemoved', data: { userId: 'u', deviceId: 'd2' } }])
        .when(cmd({ type: 'RemoveDevice', data: { userId: 'u', deviceId: 'd2' } }))
        .thenThrows('NOT_FOUND', /device d2/));
  });

  describe('groups', () => {
    it('joins', () => spec.given([registered]).when(cmd({ type: 'JoinGroup', data: { userId: 'u', groupId: 'g2' } })).then([{ type: 'UserJoinedGroup', data: { userId: 'u', groupId: 'g2' } }]));
    it('joining twice changes nothing', () => spec.given([registered]).when(cmd({ type: 'JoinGroup', data: { userId: 'u', groupId: 'g1' } })).thenNothingHappens());
    it('leaves', () => spec.given([registered]).when(cmd({ type: 'LeaveGroup', data: { userId: 'u', groupId: 'g1' } })).then([{ type: 'UserLeftGroup', data: { userId: 'u', groupId: 'g1' } }]));
    it('leaving a group not joined changes nothing', () =>
      spec.given([registered, { type: 'UserLeftGroup', data: { userId: 'u', groupId: 'g1' } }]).when(cmd({ type: 'LeaveGroup', data: { userId: 'u', groupId: 'g1' } })).thenNothingHappens());
    it('needs a registered user', () => spec.given([]).when(cmd({ type: 'JoinGroup', data: { userId: 'u', groupId: 'g' } })).thenThrows('NOT_FOUND'));
  });

  describe('erasure', () => {
    const expired: UserEvent = { type: 'ConsentExpired', data: { userId: 'u', consentEnd: consent.end } };
    const after = new Date('2027-01-01T00:00:00.001Z');
    const shredded: UserEvent = { type: 'UserDataShredded', data: { userId: 'u', reason: 'consent-expired', groupIds: ['g1'] } };

    it('expires a consent period that has ended', () =>
      spec.given([registered]).when({ type: 'ExpireConsent', data: { userId: 'u' }, now: after }).then([expired]));
    it('does not expire a consent period still running (it may have been extended)', () =>
      spec.given([registered]).when({ type: 'ExpireConsent', data: { userId: 'u' }, now }).thenNothingHappens());
    it('expires once', () => spec.given([registered, expired]).when({ type: 'ExpireConsent', data: { userId: 'u' }, now: after }).thenNothingHappens());
    it('records the shredding with the groups to leave, once', () => {
      spec.given([registered, expired]).when({ type: 'RecordShredding', data: { userId: 'u' }, now: after }).then([shredded]);
      spec.given([registered, expired, shredded]).when({ type: 'RecordShredding', data: { userId: 'u' }, now: after }).thenNothingHappens();
    });
    it('records no shredding without an erasure under way', () =>
      spec.given([registered]).when({ type: 'RecordShredding', data: { userId: 'u' }, now }).thenNothingHappens());
    it('erases on request, by the same path', () => {
      spec.given([registered]).when(cmd({ type: 'RequestErasure', data: { userId: 'u' } })).then([{ type: 'UserErasureRequested', data: { userId: 'u' } }]);
      spec
        .given([registered, { type: 'UserErasureRequested', data: { userId: 'u' } }])
        .when(cmd({ type: 'RecordShredding', data: { userId: 'u' } }))
        .then([{ type: 'UserDataShredded', data: { userId: 'u', reason: 'erasure-requested', groupIds: ['g1'] } }]);
    });
    it('erases no unknown user', () => spec.given([]).when(cmd({ type: 'RequestErasure', data: { userId: 'u' } })).thenThrows('NOT_FOUND'));
    it('treats an erased user as gone', () => {
      spec.given([registered, expired]).when(cmd({ type: 'UpdateUser', data: { userId: 'u', optIn: false } })).thenThrows('NOT_FOUND');
      spec.given([registered, expired, shredded]).when(cmd({ type: 'AddDevice', data: { userId: 'u', device: device('d9') } })).thenThrows('NOT_FOUND');
      spec.given([registered, expired]).when(cmd({ type: 'RegisterUser', data: { userId: 'u', name: sealed('n'), devices: [device('d1')], consent, optIn: true, groupIds: [] } })).thenThrows('CONFLICT', /being erased/);
    });
    it('lets a shredded id be registered again, as a new person', () =>
      spec
        .given([registered, expired, shredded])
        .when(cmd({ type: 'RegisterUser', data: { userId: 'u', name: sealed('n9'), devices: [device('d1')], consent, optIn: true, groupIds: [] } }))
        .then([{ type: 'UserRegistered', data: { userId: 'u', name: sealed('n9'), devices: [device('d1')], consent, optIn: true, groupIds: [] } }]));
  });
});
