import type { ConsentPeriod, Sealed, SealedDevice } from '#schema/events';
import type { CollectionSpec } from '#platform/read-store/port';

export type UserDocument = Readonly<{
  id: string;
  tenantId: string;
  userId: string;
  name: Sealed;
  devices: readonly SealedDevice[];
  consent: ConsentPeriod;
  optIn: boolean;
  groupIds: readonly string[];
  registeredAt: string;
  updatedAt: string;
  /** Revision of the user's stream this document reflects. */
  revision: number;
  /** The user's shard (schema/src/sharding.ts): a slice of a send pages its partition's shards. */
  shard: number;
}>;

export const USERS = 'users';

export const usersCollection: CollectionSpec = {
  name: USERS,
  indexes: [['tenantId'], ['tenantId', 'groupIds'], ['tenantId', 'groupIds', 'shard']],
  arrayFields: ['groupIds'],
};

export const userDocId = (tenantId: string, userId: string): string => `${tenantId}:${userId}`;
