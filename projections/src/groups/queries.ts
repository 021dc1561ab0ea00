import type { Cursor, Page, ReadStore } from '#platform/read-store/port';
import { GROUPS, groupDocId, type GroupDocument } from './document';

export const getGroup = (store: ReadStore, tenantId: string, groupId: string): Promise<GroupDocument | null> =>
  store.get<GroupDocument>(GROUPS, groupDocId(tenantId, groupId));

/** A tenant's groups by id. */
export const listGroups = (
  store: ReadStore,
  tenantId: string,
  options: Readonly<{ first: number; after?: Cursor | null }>,
): Promise<Page<GroupDocument>> =>
  store.find<GroupDocument>(GROUPS, { tenantId }, { limit: options.first, ...(options.after ? { after: options.after } : {}) });
