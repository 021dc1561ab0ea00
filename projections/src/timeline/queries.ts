import type { Cursor, Page, ReadStore } from '#platform/read-store/port';
import { erasureMarkId, TIMELINE, type TimelineEntryDocument } from './document';

/** One user's steps, oldest first. */
export const listTimeline = (
  store: ReadStore,
  tenantId: string,
  userId: string,
  options: Readonly<{ first: number; after?: Cursor | null }>,
): Promise<Page<TimelineEntryDocument>> =>
  store.find<TimelineEntryDocument>(TIMELINE, { tenantId, userId }, { limit: options.first, ...(options.after ? { after: options.after } : {}) });

/** Where a user's erasure was recorded (the only entry shredding leaves), or null. */
export const getErasureMark = (store: ReadStore, tenantId: string, userId: string): Promise<TimelineEntryDocument | null> =>
  store.get<TimelineEntryDocument>(TIMELINE, erasureMarkId(tenantId, userId));

/** A tenant's delivery entries requested before `before` (ISO time), oldest first. */
export const listDeliveriesBefore = (
  store: ReadStore,
  tenantId: string,
  before: string,
  options: Readonly<{ first: number; after?: Cursor | null }>,
): Promise<Page<TimelineEntryDocument>> =>
  store.find<TimelineEntryDocument>(TIMELINE, { tenantId, type: 'Delivery' }, {
    limit: options.first,
    sort: { field: 'at', direction: 'asc' },
    below: before,
    ...(options.after ? { after: options.after } : {}),
  });
