import type { RecordedEvent, SealedDevice, UserEvent } from '../../../schema/src/events';
import { eventTypes, isOneOf, readModel, unreachable, type ReadModel } from '../read-model';
import { timelineCollection, timelineEntryId, timelineUserId, type TimelineEntryDocument } from './document';

export const timelineEvents = eventTypes<UserEvent['type'] | 'NotificationRequested'>({
  UserRegistered: true,
  UserRenamed: true,
  DeviceAdded: true,
  DeviceChanged: true,
  DeviceRemoved: true,
  ConsentPeriodChanged: true,
  OptInChanged: true,
  UserJoinedGroup: true,
  UserLeftGroup: true,
  ConsentExpired: true,
  UserErasureRequested: true,
  UserDataShredded: true,
  NotificationRequested: true,
});

type TimelineEvent = Extract<RecordedEvent, { type: (typeof timelineEvents)[number] }>;

const device = (d: SealedDevice): string => `${d.deviceId} (${d.kind})`;
const list = (items: readonly string[]): string => (items.length === 0 ? 'none' : items.join(', '));

/** Ids, kinds, flags and times only: names and addresses are personal even when sealed. */
export const summarize = (event: TimelineEvent): string => {
  switch (event.type) {
    case 'UserRegistered': {
      const { devices, groupIds, optIn, consent } = event.data;
      return (
        `registered, opted ${optIn ? 'in' : 'out'}, devices: ${list(devices.map(device))}, ` +
        `groups: ${list([...new Set(groupIds)])}, consent ${consent.start} – ${consent.end}`
      );
    }
    case 'UserRenamed':
      return 'name changed';
    case 'DeviceAdded':
      return `device ${device(event.data.device)} added`;
    case 'DeviceChanged':
      return `device ${device(event.data.device)} changed`;
    case 'DeviceRemoved':
      return `device ${event.data.deviceId} removed`;
    case 'ConsentPeriodChanged':
      return `consent period set to ${event.data.consent.start} – ${event.data.consent.end}`;
    case 'OptInChanged':
      return event.data.optIn ? 'opted in' : 'opted out';
    case 'UserJoinedGroup':
      return `joined group ${event.data.groupId}`;
    case 'UserLeftGroup':
      return `left group ${event.data.groupId}`;
    case 'ConsentExpired':
      return `consent period ended at ${event.data.consentEnd}`;
    case 'UserErasureRequested':
      return 'erasure requested';
    case 'UserDataShredded':
      return 'data shredded';
    case 'NotificationRequested':
      return `notification ${event.data.notificationId} requested`;
    default:
      return unreachable(event);
  }
};

/** A group target adds no entries: a group can hold 50M users. */
const usersConcerned = (event: TimelineEvent): readonly string[] => {
  if (event.type !== 'NotificationRequested') return [event.data.userId];
  const { target } = event.data;
  return target.kind === 'users' ? [...new Set(target.userIds)] : [];
};

/** Entries never change once written; `id` names the user, since one request lists several. */
export const evolve = (doc: TimelineEntryDocument | null, event: RecordedEvent, id: string): TimelineEntryDocument | null => {
  // Shredding purges the user's whole timeline (see purge) and leaves nothing behind.
  if (doc || !isOneOf(timelineEvents, event) || event.type === 'UserDataShredded') return doc;
  const { tenantId, actor, requestId, at } = event.metadata;
  return {
    id,
    tenantId,
    userId: timelineUserId(tenantId, id),
    position: event.position,
    type: event.type,
    at,
    actor,
    requestId,
    summary: summarize(event),
  };
};

export const timelineReadModel: ReadModel<TimelineEntryDocument> = {
  name: 'timeline',
  collection: timelineCollection,
  handles: timelineEvents,
  documentIds: (event) =>
    isOneOf(timelineEvents, event)
      ? usersConcerned(event).map((userId) => timelineEntryId(event.metadata.tenantId, userId, event.position))
      : [],
  evolve,
  purge: (event) =>
    event.type === 'UserDataShredded' ? { tenantId: event.metadata.tenantId, userId: event.data.userId } : null,
};

export const timeline = readModel(timelineReadModel);
