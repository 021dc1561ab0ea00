import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '#schema/events';
import { eventLog, ReadModelSpecification, sealed } from '../read-model.test-support';
import { timelineReadModel } from './evolve';
import { deliveryEntryId, timelineEntryId, timelineUserId, type TimelineEntry, type TimelineEntryDocument } from './document';
import { timelineEntry } from './view';

const spec = ReadModelSpecification.for(timelineReadModel);
const consent = { start: '2026-01-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' };

const history = () => {
  const log = eventLog({ tenantId: 'acme' });
  const events: RecordedEvent[] = [
    log.record({
      type: 'UserRegistered',
      data: {
        userId: 'u1',
        name: sealed('Grace Hopper'),
        devices: [
          { deviceId: 'd1', kind: 'email', address: sealed('grace@example.com') },
          { deviceId: 'd2', kind: 'ios', address: sealed('apns-token-abc') },
        ],
        consent,
        optIn: true,
        groupIds: ['beta'],
      },
    }),
    log.record({ type: 'UserRenamed', data: { userId: 'u1', name: sealed('Grace B. Hopper') } }),
    log.record({ type: 'DeviceAdded', data: { userId: 'u1', device: { deviceId: 'd3', kind: 'sms', address: sealed('+15550100') } } }),
    log.record({ type: 'DeviceChanged', data: { userId: 'u1', device: { deviceId: 'd1', kind: 'email', address: sealed('g@example.org') } } }),
    log.record({ type: 'DeviceRemoved', data: { userId: 'u1', deviceId: 'd2' } }),
    log.record({ type: 'ConsentPeriodChanged', data: { userId: 'u1', consent } }),
    log.record({ type: 'OptInChanged', data: { userId: 'u1', optIn: false } }),
    log.record({ type: 'UserJoinedGroup', data: { userId: 'u1', groupId: 'gamma' } }),
    log.record({ type: 'UserLeftGroup', data: { userId: 'u1', groupId: 'beta' } }),
  ];
  return { log, events };
};

describe('timeline read model', () => {
  it('adds one entry per user event, with who, when and a summary', () => {
    const { events } = history();
    const entries = [...spec.given([]).when(events).collection().values()];
    expect(entries.map((e) => e.summary)).toEqual([
      'registered, opted in, devices: d1 (email), d2 (ios), groups: beta, consent 2026-01-01T00:00:00.000Z – 2027-01-01T00:00:00.000Z',
      'name changed',
      'device d3 (sms) added',
      'device d1 (email) changed',
      'device d2 removed',
      'consent period set to 2026-01-01T00:00:00.000Z – 2027-01-01T00:00:00.000Z',
      'opted out',
      'joined group gamma',
      'left group beta',
    ]);
    expect(entries[0]).toEqual<TimelineEntryDocument>({
      id: 'acme:u1:0000000000000001',
      tenantId: 'acme',
      userId: 'u1',
      position: 1,
      type: 'UserRegistered',
      at: events[0]!.metadata.at,
      actor: 'kadmin',
      requestId: 'req-1',
      summary: entries[0]!.summary,
    });
  });

  it('never copies a name, an address or their sealed form into an entry', () => {
    const { events } = history();
    const stored = JSON.stringify([...spec.given([]).when(events).collection().values()]);
    for (const secret of ['Grace', 'Hopper', 'example', 'apns-token', '+1555', 'pd1.']) expect(stored).not.toContain(secret);
  });

  it('adds an entry for each user a notification lists, none for a group target', () => {
    const { log, events } = history();
    const base = { text: 'hi', idempotencyKey: null, requestHash: 'x', requestedAt: consent.start, deadline: consent.end };
    const toUsers = log.record({
      type: 'NotificationRequested',
      data: { ...base, notificationId: 'n1', target: { kind: 'users', userIds: ['u1', 'u2', 'u1'] } },
    });
    const toGroup = log.record({ type: 'NotificationRequested', data: { ...base, notificationId: 'n2', target: { kind: 'group', groupId: 'gamma' } } });
    const entry = (userId: string): TimelineEntryDocument => ({
      id: timelineEntryId('acme', userId, 10),
      tenantId: 'acme',
      userId,
      position: 10,
      type: 'NotificationRequested',
      at: toUsers.metadata.at,
      actor: 'kadmin',
      requestId: 'req-10',
      summary: 'notification n1 requested',
    });
    spec
      .given(events)
      .when([toUsers, toGroup])
      .then({ 'acme:u1:0000000000000010': entry('u1'), 'acme:u2:0000000000000010': entry('u2'), 'acme:u1:0000000000000011': null });
  });

  it('writes an entry once, whatever replays', () => {
    const { events } = history();
    spec.given(events).when(events).thenUnchanged();
  });

  it('creates no entry for a delivery failed because its user was gone, whether the reason is the code or the text of older logs', () => {
    const { log, events } = history();
    const requested = log.record({
      type: 'NotificationRequested',
      data: { notificationId: 'n1', text: 'hi', target: { kind: 'users', userIds: ['u1'] }, idempotencyKey: null, requestHash: 'x', requestedAt: consent.start, deadline: consent.end },
    });
    const failed = (reason: string) =>
      log.record({
        type: 'DeliveryFailed',
        data: { notificationId: 'n1', requestedPosition: requested.position, requestedAt: consent.start, deliveries: [{ deliveryId: 'dl-1', userId: 'u1', deviceId: 'd1', channel: 'email', provider: null, reason }] },
      });
    const entry = (reason: string) => spec.given([...events, requested]).when([failed(reason)]).collection().get(deliveryEntryId('acme', 'u1', requested.position, 'd1'));
    for (const reason of ['erased', 'user erased', 'user erased or unknown']) expect(entry(reason), reason).toBeUndefined();
    expect(timelineEntry(entry('opted-out')!)).toMatchObject({ status: 'failed', steps: [{ step: 'requested' }, { step: 'failed', reason: 'opted-out' }] });
  });

  it('shows how many copies of a delivery may have reached the device, and reads older events that carry only the flag', () => {
    const { log, events } = history();
    const requested = log.record({
      type: 'NotificationRequested',
      data: { notificationId: 'n1', text: 'hi', target: { kind: 'users', userIds: ['u1'] }, idempotencyKey: null, requestHash: 'x', requestedAt: consent.start, deadline: consent.end },
    });
    const common = { notificationId: 'n1', requestedPosition: requested.position, requestedAt: consent.start };
    const ref = { deliveryId: 'dl-1', userId: 'u1', deviceId: 'd1', channel: 'email' as const };
    const id = deliveryEntryId('acme', 'u1', requested.position, 'd1');
    const attempts = [
      log.record({ type: 'DeliveryAttempted', data: { ...common, deliveries: [{ ...ref, provider: 'sendgrid', latencyMs: 1000, outcome: 'transient', reason: 'sendgrid: deadline of 1000 ms passed, answer abandoned', possibleCopies: 1 }] } }),
      log.record({ type: 'DeliveryAttempted', data: { ...common, deliveries: [{ ...ref, provider: 'smtp', latencyMs: 20, outcome: 'transient', reason: 'smtp 421', possiblyDuplicate: true, possibleCopies: 1 }] } }),
      log.record({ type: 'DeliveryAttempted', data: { ...common, deliveries: [{ ...ref, provider: 'smtp', latencyMs: 20, outcome: 'accepted', possiblyDuplicate: true, possibleCopies: 2 }] } }),
      log.record({ type: 'DeliverySucceeded', data: { ...common, deliveries: [{ ...ref, provider: 'smtp', possiblyDuplicate: true, possibleCopies: 2 }] } }),
    ];
    const entry = timelineEntry(spec.given([...events, requested]).when(attempts).collection().get(id)!);
    expect(entry).toMatchObject({ status: 'succeeded', possiblyDuplicate: true, possibleCopies: 2 });
    expect(entry.steps!.filter((s) => s.step === 'attempted').map((s) => s.possibleCopies)).toEqual([1, 1, 2]);
    expect(entry.summary).toMatch(/possibly duplicated \(up to 2 copies\)$/);
    // An older log: the flag alone, read as two copies.
    const older = log.record({ type: 'DeliverySucceeded', data: { ...common, deliveries: [{ ...ref, deviceId: 'd3', channel: 'sms', provider: 'twilio', possiblyDuplicate: true }] } });
    const old = spec.given([...events, requested]).when([older]).collection().get(deliveryEntryId('acme', 'u1', requested.position, 'd3'))!;
    expect(old).toMatchObject({ possiblyDuplicate: true, possibleCopies: 2 });
  });

  describe('delivery entries, stored compactly', () => {
    const setup = () => {
      const { log, events } = history();
      const requested = log.record({
        type: 'NotificationRequested',
        data: { notificationId: 'n1', text: 'hi', target: { kind: 'users', userIds: ['u1'] }, idempotencyKey: null, requestHash: 'x', requestedAt: consent.start, deadline: consent.end },
      });
      const common = { notificationId: 'n1', requestedPosition: requested.position, requestedAt: requested.metadata.at };
      const ref = { deliveryId: 'dl-1', userId: 'u1', deviceId: 'd1', channel: 'email' as const };
      const system = { actor: 'system', requestId: 'delivery-n1' };
      const outcomes = [
        log.record({ type: 'DeliveryAttempted', data: { ...common, deliveries: [{ ...ref, provider: 'sendgrid', latencyMs: 1000, outcome: 'transient', reason: 'sendgrid 503', possibleCopies: 1 }] } }, system),
        log.record({ type: 'DeliveryAttempted', data: { ...common, deliveries: [{ ...ref, provider: 'smtp', latencyMs: 20, outcome: 'accepted', possibleCopies: 1 }] } }, system),
        log.record({ type: 'DeliverySucceeded', data: { ...common, deliveries: [{ ...ref, provider: 'smtp' }] } }, system),
        // A provider's own time, not in the exact ISO form: kept as given.
        log.record({ type: 'DeliveryReceipted', data: { ...common, deliveries: [{ ...ref, provider: 'smtp', status: 'deferred', providerStatus: 'deferred', errorCode: '421', at: '2026-01-01T00:05:00Z' }] } }, system),
        log.record({ type: 'DeliveryReceipted', data: { ...common, deliveries: [{ ...ref, provider: 'smtp', status: 'delivered', providerStatus: 'delivered', at: '2026-01-01T00:06:00.000Z' }] } }, system),
      ];
      return { log, given: [...events, requested], requested, outcomes, id: deliveryEntryId('acme', 'u1', requested.position, 'd1'), common, ref };
    };

    it('shows every step, the request first, the summary and the recorder, as entries storing them did', () => {
      const { given, requested, outcomes, id } = setup();
      const stored = spec.given(given).when(outcomes).collection().get(id)!;
      const at = (i: number) => outcomes[i]!.metadata.at;
      expect(timelineEntry(stored)).toEqual<TimelineEntry>({
        id,
        tenantId: 'acme',
        userId: 'u1',
        position: requested.position,
        type: 'Delivery',
        at: requested.metadata.at,
        actor: 'system',
        requestId: 'delivery-n1',
        summary: 'notification n1 to device d1 (email): succeeded via smtp, delivered, 2 attempts',
        notificationId: 'n1',
        deliveryId: 'dl-1',
        deviceId: 'd1',
        channel: 'email',
        status: 'succeeded',
        provider: 'smtp',
        receipt: 'delivered',
        steps: [
          { step: 'requested', at: requested.metadata.at },
          { step: 'attempted', at: at(0), provider: 'sendgrid', latencyMs: 1000, outcome: 'transient', reason: 'sendgrid 503', possibleCopies: 1 },
          { step: 'attempted', at: at(1), provider: 'smtp', latencyMs: 20, outcome: 'accepted', possibleCopies: 1 },
          { step: 'succeeded', at: at(2), provider: 'smtp' },
          { step: 'deferred', at: '2026-01-01T00:05:00Z', provider: 'smtp', outcome: 'deferred', reason: '421' },
          { step: 'delivered', at: '2026-01-01T00:06:00.000Z', provider: 'smtp', outcome: 'delivered' },
        ],
      });
    });

    it('stores no summary, no request step and not the recorder, its steps with short keys: under 60% of the bytes of the entry shown', () => {
      const { given, outcomes, id } = setup();
      const stored = spec.given(given).when(outcomes.slice(1, 3)).collection().get(id)!;
      expect(stored).not.toHaveProperty('summary');
      expect(stored).not.toHaveProperty('steps');
      expect(stored).not.toHaveProperty('actor');
      expect(stored).not.toHaveProperty('requestId');
      // Times in ms after the request; the success names the attempt's provider by reference.
      expect(stored.s).toEqual([
        { c: 'a', t: Date.parse(outcomes[1]!.metadata.at) - Date.parse(stored.at), p: 'smtp', l: 20, o: 'accepted', n: 1 },
        { c: 's', t: Date.parse(outcomes[2]!.metadata.at) - Date.parse(stored.at), p: 1 },
      ]);
      expect(JSON.stringify(stored).length).toBeLessThan(JSON.stringify(timelineEntry(stored)).length * 0.6);
    });

    it("stores the actor and request id of a delivery event that is not the recorder's", () => {
      const { log, given, common, ref, id } = setup();
      const odd = log.record({ type: 'DeliveryExpired', data: { ...common, deliveries: [{ ...ref, reason: 'deadline' }] } }, { actor: 'operator', requestId: 'req-x' });
      const stored = spec.given(given).when([odd]).collection().get(id)!;
      expect(stored).toMatchObject({ actor: 'operator', requestId: 'req-x' });
      expect(timelineEntry(stored)).toMatchObject({ actor: 'operator', requestId: 'req-x', status: 'expired', steps: [{ step: 'requested' }, { step: 'expired', reason: 'deadline' }] });
    });

    it('reads an entry stored in the earlier format as it was, and rewrites it compactly at its next step', () => {
      const { requested, outcomes, id } = setup();
      const older: TimelineEntryDocument = {
        id,
        tenantId: 'acme',
        userId: 'u1',
        position: requested.position,
        type: 'Delivery',
        at: requested.metadata.at,
        actor: 'system',
        requestId: 'delivery-n1',
        summary: 'notification n1 to device d1 (email): succeeded via smtp, 1 attempt',
        notificationId: 'n1',
        deliveryId: 'dl-1',
        deviceId: 'd1',
        channel: 'email',
        status: 'succeeded',
        provider: 'smtp',
        steps: [
          { step: 'requested', at: requested.metadata.at },
          { step: 'attempted', at: outcomes[1]!.metadata.at, provider: 'smtp', latencyMs: 20, outcome: 'accepted', possibleCopies: 1 },
          { step: 'succeeded', at: outcomes[2]!.metadata.at, provider: 'smtp' },
        ],
      };
      const shown = timelineEntry(older);
      expect(shown).toMatchObject({ summary: older.summary, steps: older.steps, actor: 'system', requestId: 'delivery-n1' });
      const next = timelineReadModel.evolve(older, outcomes[4]!, id, () => null)!;
      expect(next).not.toHaveProperty('steps');
      expect(next).not.toHaveProperty('summary');
      expect(timelineEntry(next)).toEqual({
        ...shown,
        receipt: 'delivered',
        summary: 'notification n1 to device d1 (email): succeeded via smtp, delivered, 1 attempt',
        steps: [...older.steps!, { step: 'delivered', at: '2026-01-01T00:06:00.000Z', provider: 'smtp', outcome: 'delivered' }],
      });
    });
  });

  it('reads the user back from an entry id, whatever the user id holds', () => {
    expect(timelineUserId('acme', timelineEntryId('acme', 'u:1:x', 42))).toBe('u:1:x');
  });
});
