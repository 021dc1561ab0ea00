import type { Cursor, Page, ReadStore } from '#platform/read-store/port';
import { TIMELINE, type TimelineEntryDocument } from './document';

/** One user's steps, oldest first. */
export const listTimeline = (
  store: ReadStore,
  tenantId: string,
  userId: string,
  options: Readonly<{ first: number; after?: Cursor | null }>,
): Promise<Page<TimelineEntryDocument>> =>
  store.find<TimelineEntryDocument>(TIMELINE, { tenantId, userId }, { limit: options.first, ...(options.after ? { after: options.after } : {}) });
