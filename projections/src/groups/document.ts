import type { CollectionSpec } from '#platform/read-store/port';

export type GroupDocument = Readonly<{
  id: string;
  tenantId: string;
  groupId: string;
  name: string;
  memberCount: number;
  createdAt: string;
  /** The group's own changes (create, rename); joins and leaves only move `memberCount`. */
  updatedAt: string;
}>;

export const GROUPS = 'groups';

export const groupsCollection: CollectionSpec = { name: GROUPS, indexes: [['tenantId']] };

export const groupDocId = (tenantId: string, groupId: string): string => `${tenantId}:${groupId}`;
