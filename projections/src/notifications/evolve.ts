import type { NotificationEvent, NotificationTarget, RecordedEvent } from '../../../schema/src/events';
import { eventTypes, isOneOf, readModel, unreachable, type ReadModel } from '../read-model';
import { initialProgress, notificationDocId, notificationsCollection, type NotificationDocument } from './document';

export const notificationEvents = eventTypes<NotificationEvent['type']>({ NotificationRequested: true });

const copyTarget = (t: NotificationTarget): NotificationTarget =>
  t.kind === 'group' ? { kind: 'group', groupId: t.groupId } : { kind: 'users', userIds: [...t.userIds] };

export const evolve = (doc: NotificationDocument | null, event: RecordedEvent): NotificationDocument | null => {
  if (!isOneOf(notificationEvents, event)) return doc;
  if (doc && event.position <= doc.lastPosition) return doc;
  switch (event.type) {
    case 'NotificationRequested': {
      const { data, metadata } = event;
      return {
        id: notificationDocId(metadata.tenantId, data.notificationId),
        tenantId: metadata.tenantId,
        notificationId: data.notificationId,
        text: data.text,
        target: copyTarget(data.target),
        idempotencyKey: data.idempotencyKey,
        status: 'REQUESTED',
        requestedAt: data.requestedAt,
        deadline: data.deadline,
        progress: initialProgress,
        lastPosition: event.position,
      };
    }
    default:
      return unreachable(event);
  }
};

export const notificationsReadModel: ReadModel<NotificationDocument> = {
  name: 'notifications',
  collection: notificationsCollection,
  handles: notificationEvents,
  documentIds: (event) =>
    isOneOf(notificationEvents, event) ? [notificationDocId(event.metadata.tenantId, event.data.notificationId)] : [],
  evolve,
};

export const notifications = readModel(notificationsReadModel);
