import { shardOf } from '#schema/sharding';
import type { RecordedEvent, SealedDevice, UserEvent } from '#schema/events';
import { eventTypes, isOneOf, readModel, unreachable, type ReadModel } from '../read-model';
import { userDocId, usersCollection, type UserDocument } from './document';

export const userEvents = eventTypes<UserEvent['type']>({
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
  DeviceInvalidated: true,
});

const device = ({ deviceId, kind, address, fingerprint, invalid }: SealedDevice): SealedDevice => ({ deviceId, kind, address, ...(fingerprint ? { fingerprint } : {}), ...(invalid ? { invalid } : {}) });

export const evolve = (doc: UserDocument | null, event: RecordedEvent): UserDocument | null => {
  if (!isOneOf(userEvents, event)) return doc;
  // The stream revision makes a replayed event a no-op even without the checkpoint.
  if (doc && event.revision <= doc.revision) return doc;
  const { metadata: meta } = event;
  if (event.type === 'UserRegistered') {
    const { data } = event;
    return {
      id: userDocId(meta.tenantId, data.userId),
      tenantId: meta.tenantId,
      userId: data.userId,
      name: data.name,
      devices: data.devices.map(device),
      consent: { start: data.consent.start, end: data.consent.end },
      optIn: data.optIn,
      groupIds: [...new Set(data.groupIds)],
      registeredAt: meta.at,
      updatedAt: meta.at,
      revision: event.revision,
      shard: shardOf(data.userId),
    };
  }
  if (!doc) return null;
  const next = { ...doc, updatedAt: meta.at, revision: event.revision };
  switch (event.type) {
    case 'UserRenamed':
      return { ...next, name: event.data.name };
    case 'DeviceAdded':
    case 'DeviceChanged': {
      const changed = device(event.data.device);
      const at = doc.devices.findIndex((d) => d.deviceId === changed.deviceId);
      const devices = at < 0 ? [...doc.devices, changed] : doc.devices.map((d, i) => (i === at ? changed : d));
      return { ...next, devices };
    }
    case 'DeviceRemoved':
      return { ...next, devices: doc.devices.filter((d) => d.deviceId !== event.data.deviceId) };
    case 'DeviceInvalidated':
      return { ...next, devices: doc.devices.map((d) => (d.deviceId === event.data.deviceId ? { ...d, invalid: true } : d)) };
    case 'ConsentPeriodChanged':
      return { ...next, consent: { start: event.data.consent.start, end: event.data.consent.end } };
    case 'OptInChanged':
      return { ...next, optIn: event.data.optIn };
    case 'UserJoinedGroup':
      return doc.groupIds.includes(event.data.groupId)
        ? next
        : { ...next, groupIds: [...doc.groupIds, event.data.groupId] };
    case 'UserLeftGroup':
      return { ...next, groupIds: doc.groupIds.filter((g) => g !== event.data.groupId) };
    // The user leaves the read model as soon as the erasure is decided, before the key is gone.
    case 'ConsentExpired':
    case 'UserErasureRequested':
    case 'UserDataShredded':
      return null;
    default:
      return unreachable(event);
  }
};

export const usersReadModel: ReadModel<UserDocument> = {
  name: 'users',
  collection: usersCollection,
  handles: userEvents,
  documentIds: (event) =>
    isOneOf(userEvents, event) ? [userDocId(event.metadata.tenantId, event.data.userId)] : [],
  evolve,
};

export const users = readModel(usersReadModel);
