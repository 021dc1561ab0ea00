import { describe, it } from 'vitest';
import type { RequestNotification } from '#schema/commands';
import type { NotificationEvent } from '#schema/events';
import { DeciderSpecification } from '../decider-spec';
import { notificationDecider } from './decider';

const now = new Date('2026-06-01T12:00:00Z');
const spec = DeciderSpecification.for(notificationDecider);
const request = (over: Partial<RequestNotification['data']> = {}): RequestNotification => ({
  type: 'RequestNotification',
  data: { notificationId: 'n1', text: '안녕', target: { kind: 'group', groupId: 'g' }, idempotencyKey: 'k', requestHash: 'h1', deliveryDeadlineMinutes: 15, ...over },
  now,
});
const requested: NotificationEvent = {
  type: 'NotificationRequested',
  data: { notificationId: 'n1', text: '안녕', target: { kind: 'group', groupId: 'g' }, idempotencyKey: 'k', requestHash: 'h1', requestedAt: '2026-06-01T12:00:00.000Z', deadline: '2026-06-01T12:15:00.000Z' },
};

describe('notification decider', () => {
  it('sets the deadline from the tenant deadline', () => spec.given([]).when(request()).then([requested]));
  it('a retry with the same body changes nothing', () => spec.given([requested]).when(request()).thenNothingHappens());
  it('the same key with another body is a conflict', () =>
    spec.given([requested]).when(request({ requestHash: 'h2' })).thenThrows('CONFLICT', /idempotency key "k" was already used for a different request/));
  it('limits the text to 1500 bytes', () => {
    spec.given([]).when(request({ text: '가'.repeat(500) })).then([{ ...requested, data: { ...requested.data, text: '가'.repeat(500) } }]);
    spec.given([]).when(request({ text: '가'.repeat(501) })).thenThrows('BAD_USER_INPUT', /1503 bytes in UTF-8, the limit is 1500 bytes/);
  });
  it('checks the target', () => {
    spec.given([]).when(request({ target: { kind: 'users', userIds: [] } })).thenThrows('BAD_USER_INPUT', /userIds/);
    spec.given([]).when(request({ target: { kind: 'group', groupId: 'a@b.c' } })).thenThrows('BAD_USER_INPUT', /groupId/);
  });
  it('rejects a deadline out of range', () => spec.given([]).when(request({ deliveryDeadlineMinutes: 45 })).thenThrows('BAD_USER_INPUT', /between 10 and 30/));
});
