import type { Cursor, Page, ReadStore } from '#platform/read-store/port';
import { USERS, userDocId, type UserDocument } from './document';

export const getUser = (store: ReadStore, tenantId: string, userId: string): Promise<UserDocument | null> =>
  store.get<UserDocument>(USERS, userDocId(tenantId, userId));

/** A tenant's users by id, or only the members of one group. */
export const listUsers = (
  store: ReadStore,
  tenantId: string,
  options: Readonly<{ groupId?: string; first: number; after?: Cursor | null }>,
): Promise<Page<UserDocument>> =>
  store.find<UserDocument>(
    USERS,
    options.groupId === undefined ? { tenantId } : { tenantId, groupIds: options.groupId },
    { limit: options.first, ...(options.after ? { after: options.after } : {}) },
  );

/** One shard of a group's members by id (schema/src/sharding.ts): what a slice of a send pages. */
export const listShardMembers = (
  store: ReadStore,
  tenantId: string,
  groupId: string,
  shard: number,
  options: Readonly<{ first: number; after?: Cursor | null }>,
): Promise<Page<UserDocument>> =>
  store.find<UserDocument>(USERS, { tenantId, groupIds: groupId, shard }, { limit: options.first, ...(options.after ? { after: options.after } : {}) });
