import type { Cursor, Page, ReadStore } from '#platform/read-store/port';
import { erasureMarkId, TIMELINE, type DeliveryStatus, type TimelineEntry, type TimelineEntryDocument } from './document';
import { timelineEntry } from './view';

/** One user's steps, oldest first, as shown (summaries and every step of a delivery). */
export const listTimeline = async (
  store: ReadStore,
  tenantId: string,
  userId: string,
  options: Readonly<{ first: number; after?: Cursor | null }>,
): Promise<Page<TimelineEntry>> => {
  const page = await store.find<TimelineEntryDocument>(TIMELINE, { tenantId, userId }, { limit: options.first, ...(options.after ? { after: options.after } : {}) });
  return { items: page.items.map(timelineEntry), next: page.next };
};

/** Where a user's erasure was recorded (the only entry shredding leaves), or null. */
export const getErasureMark = (store: ReadStore, tenantId: string, userId: string): Promise<TimelineEntryDocument | null> =>
  store.get<TimelineEntryDocument>(TIMELINE, erasureMarkId(tenantId, userId));

/** The delivery entries of a notification id in one status, by user (any tenant's: ids are the tenants' own), as stored. */
export const listDeliveriesOf = (
  store: ReadStore,
  notificationId: string,
  status: DeliveryStatus,
  options: Readonly<{ first: number; after?: Cursor | null }>,
): Promise<Page<TimelineEntryDocument>> =>
  store.find<TimelineEntryDocument>(TIMELINE, { notificationId, status }, { limit: options.first, ...(options.after ? { after: options.after } : {}) });
