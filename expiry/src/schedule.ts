import type { RecordedEvent, UserEvent } from '#schema/events';
import type { CollectionSpec } from '#platform/read-store/port';
import { eventTypes, isOneOf, readModel, type ReadModel } from '#projections/read-model';

/**
 * The durable index of when each user's data is due for destruction: the consent end, or now
 * once an erasure is decided. Kept by the expiry role itself, so expiry never waits on the
 * query side's projections. A B-tree on `dueAt` is the priority queue.
 */
export type ScheduleDocument = Readonly<{ id: string; tenantId: string; userId: string; dueAt: string }>;

export const SCHEDULE = 'consentSchedule';
export const scheduleCollection: CollectionSpec = { name: SCHEDULE, indexes: [[]], sortFields: ['dueAt'] };

const scheduleEvents = eventTypes<Extract<UserEvent['type'], 'UserRegistered' | 'ConsentPeriodChanged' | 'ConsentExpired' | 'UserErasureRequested' | 'UserDataShredded'>>({
  UserRegistered: true,
  ConsentPeriodChanged: true,
  ConsentExpired: true,
  UserErasureRequested: true,
  UserDataShredded: true,
});

export const scheduleDocId = (tenantId: string, userId: string): string => `${tenantId}:${userId}`;

const evolve = (doc: ScheduleDocument | null, event: RecordedEvent, id: string): ScheduleDocument | null => {
  if (!isOneOf(scheduleEvents, event)) return doc;
  const { tenantId, at } = event.metadata;
  switch (event.type) {
    case 'UserRegistered':
      return { id, tenantId, userId: event.data.userId, dueAt: event.data.consent.end };
    case 'ConsentPeriodChanged':
      return doc && { ...doc, dueAt: event.data.consent.end };
    case 'ConsentExpired':
    case 'UserErasureRequested':
      // Decided but maybe not finished (a crash): due at once, so the next run completes it.
      return { id, tenantId, userId: event.data.userId, dueAt: doc && doc.dueAt < at ? doc.dueAt : at };
    case 'UserDataShredded':
      return null;
  }
};

export const scheduleReadModel = readModel<ScheduleDocument>({
  name: 'consent-schedule',
  collection: scheduleCollection,
  handles: scheduleEvents,
  documentIds: (event) => (isOneOf(scheduleEvents, event) ? [scheduleDocId(event.metadata.tenantId, event.data.userId)] : []),
  evolve,
} satisfies ReadModel<ScheduleDocument>);
