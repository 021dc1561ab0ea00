import type { NotificationCommand, RequestNotification } from '../../../schema/src/commands';
import type { NotificationEvent, NotificationRequested, NotificationTarget } from '../../../schema/src/events';
import { conflict } from '../../../schema/src/errors';
import { parseDeliveryDeadlineMinutes, parseEntityId, parseNotificationText, parseUserIds } from '../../../schema/src/values';

export type NotificationState =
  | Readonly<{ status: 'None' }>
  | (Readonly<{ status: 'Requested' }> & NotificationRequested['data']);

export const initialState = (): NotificationState => ({ status: 'None' });

const checkTarget = (target: NotificationTarget): NotificationTarget =>
  target.kind === 'group'
    ? { kind: 'group', groupId: parseEntityId('groupId', target.groupId) }
    : { kind: 'users', userIds: parseUserIds('userIds', target.userIds) };

const request = ({ data, now }: RequestNotification, state: NotificationState): NotificationEvent[] => {
  if (state.status === 'Requested') {
    // The stream id comes from the idempotency key: the same key and body is a retry.
    if (state.requestHash === data.requestHash) return [];
    throw conflict(`idempotency key "${data.idempotencyKey ?? ''}" was already used for a different request`);
  }
  const minutes = parseDeliveryDeadlineMinutes('deliveryDeadlineMinutes', data.deliveryDeadlineMinutes);
  return [{
    type: 'NotificationRequested',
    data: {
      notificationId: data.notificationId,
      text: parseNotificationText('text', data.text),
      target: checkTarget(data.target),
      idempotencyKey: data.idempotencyKey,
      requestHash: data.requestHash,
      requestedAt: now.toISOString(),
      deadline: new Date(now.getTime() + minutes * 60_000).toISOString(),
    },
  }];
};

export const decide = (command: NotificationCommand, state: NotificationState): NotificationEvent[] => {
  switch (command.type) {
    case 'RequestNotification':
      return request(command, state);
    default: {
      const never: never = command.type;
      throw new Error(`unknown command ${String(never)}`);
    }
  }
};

export const evolve = (state: NotificationState, event: NotificationEvent): NotificationState => {
  switch (event.type) {
    case 'NotificationRequested':
      return { status: 'Requested', ...event.data };
    default: {
      const never: never = event.type;
      return never;
    }
  }
};

export const notificationDecider = { decide, evolve, initialState };
