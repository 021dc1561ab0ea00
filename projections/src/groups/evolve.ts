import type { GroupEvent, RecordedEvent } from '#schema/events';
import { eventTypes, isOneOf, readModel, unreachable, type ReadModel } from '../read-model';
import { groupDocId, groupsCollection, type GroupDocument } from './document';

export const groupEvents = eventTypes<GroupEvent['type'] | 'UserRegistered' | 'UserJoinedGroup' | 'UserLeftGroup' | 'UserDataShredded'>({
  GroupCreated: true,
  GroupRenamed: true,
  UserRegistered: true,
  UserJoinedGroup: true,
  UserLeftGroup: true,
  UserDataShredded: true,
});

const documentIds = (event: RecordedEvent): readonly string[] => {
  if (!isOneOf(groupEvents, event)) return [];
  const tenantId = event.metadata.tenantId;
  switch (event.type) {
    case 'UserRegistered':
    case 'UserDataShredded':
      return [...new Set(event.data.groupIds)].map((g) => groupDocId(tenantId, g));
    case 'GroupCreated':
    case 'GroupRenamed':
    case 'UserJoinedGroup':
    case 'UserLeftGroup':
      return [groupDocId(tenantId, event.data.groupId)];
    default:
      return unreachable(event);
  }
};

/**
 * Counts are not idempotent on their own: exactly-once comes from the runner committing the
 * checkpoint with the change. The user decider emits a join only for a non-member and a leave
 * only for a member, so the count follows the events. A membership of a group this model never
 * saw created cannot happen (the handler checks the group exists) and is ignored.
 */
export const evolve = (doc: GroupDocument | null, event: RecordedEvent, id: string): GroupDocument | null => {
  if (!isOneOf(groupEvents, event)) return doc;
  const { metadata: meta } = event;
  switch (event.type) {
    case 'GroupCreated':
      return {
        id,
        tenantId: meta.tenantId,
        groupId: event.data.groupId,
        name: event.data.name,
        memberCount: doc?.memberCount ?? 0,
        createdAt: doc?.createdAt ?? meta.at,
        updatedAt: meta.at,
      };
    case 'GroupRenamed':
      return doc && { ...doc, name: event.data.name, updatedAt: meta.at };
    case 'UserRegistered':
    case 'UserJoinedGroup':
      return doc && { ...doc, memberCount: doc.memberCount + 1 };
    case 'UserLeftGroup':
    case 'UserDataShredded':
      return doc && { ...doc, memberCount: Math.max(0, doc.memberCount - 1) };
    default:
      return unreachable(event);
  }
};

export const groupsReadModel: ReadModel<GroupDocument> = {
  name: 'groups',
  collection: groupsCollection,
  handles: groupEvents,
  documentIds,
  evolve,
};

export const groups = readModel(groupsReadModel);
