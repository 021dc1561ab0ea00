import type { Cursor, Page, ReadStore } from '#platform/read-store/port';
import { NOTIFICATIONS, notificationDocId, type NotificationDocument } from './document';

export const getNotification = (
  store: ReadStore,
  tenantId: string,
  notificationId: string,
): Promise<NotificationDocument | null> => store.get<NotificationDocument>(NOTIFICATIONS, notificationDocId(tenantId, notificationId));

/** A tenant's notifications, newest first. */
export const listNotifications = (
  store: ReadStore,
  tenantId: string,
  options: Readonly<{ first: number; after?: Cursor | null }>,
): Promise<Page<NotificationDocument>> =>
  store.find<NotificationDocument>(
    NOTIFICATIONS,
    { tenantId },
    { limit: options.first, sort: { field: 'requestedAt', direction: 'desc' }, ...(options.after ? { after: options.after } : {}) },
  );

/** A tenant's notifications requested before `before` (ISO time), oldest first. */
export const listNotificationsRequestedBefore = (
  store: ReadStore,
  tenantId: string,
  before: string,
  options: Readonly<{ first: number; after?: Cursor | null }>,
): Promise<Page<NotificationDocument>> =>
  store.find<NotificationDocument>(
    NOTIFICATIONS,
    { tenantId },
    { limit: options.first, sort: { field: 'requestedAt', direction: 'asc' }, below: before, ...(options.after ? { after: options.after } : {}) },
  );
