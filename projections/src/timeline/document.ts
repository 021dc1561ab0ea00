import type { AnyEventType } from '../../../schema/src/events';
import type { CollectionSpec } from '../../../platform/src/read-store/port';
import { padPosition } from '../read-model';

/** One step concerning one user. `summary` never carries personal data, not even sealed. */
export type TimelineEntryDocument = Readonly<{
  id: string;
  tenantId: string;
  userId: string;
  position: number;
  type: AnyEventType;
  at: string;
  actor: string;
  requestId: string;
  summary: string;
}>;

export const TIMELINE = 'timeline';

export const timelineCollection: CollectionSpec = { name: TIMELINE, indexes: [['tenantId', 'userId']] };

/** Ids sort in log order within a user, so the default id order is chronological. */
export const timelineEntryId = (tenantId: string, userId: string, position: number): string =>
  `${tenantId}:${userId}:${padPosition(position)}`;

/** The user of an entry id made by `timelineEntryId` for this tenant. */
export const timelineUserId = (tenantId: string, id: string): string => id.slice(tenantId.length + 1, id.length - 17);
