import type {
  AddDevice,
  ExpireConsent,
  RecordShredding,
  RequestErasure,
  ChangeDevice,
  JoinGroup,
  LeaveGroup,
  RegisterUser,
  RemoveDevice,
  UpdateUser,
  UserCommand,
} from '#schema/commands';
import type { ConsentPeriod, ErasureReason, Sealed, SealedDevice, UserEvent } from '#schema/events';
import { badInput, conflict, notFound } from '#schema/errors';
import { MAX_DEVICES, MAX_GROUPS, parseConsentPeriod } from '#schema/values';

export type UserState =
  | Readonly<{ status: 'Unregistered' }>
  | Readonly<{
      status: 'Registered';
      userId: string;
      name: Sealed;
      /** In the order they were added. */
      devices: readonly SealedDevice[];
      consent: ConsentPeriod;
      optIn: boolean;
      groupIds: readonly string[];
      registeredAt: string;
      updatedAt: string;
    }>
  /** Erasure decided, data key not yet confirmed destroyed: nothing but finishing it is allowed. */
  | Readonly<{ status: 'Erasing'; userId: string; reason: ErasureReason; groupIds: readonly string[] }>
  /** The data key is destroyed. The id may be registered again, as a new person. */
  | Readonly<{ status: 'Shredded'; userId: string }>;
type Registered = Extract<UserState, { status: 'Registered' }>;

export const initialState = (): UserState => ({ status: 'Unregistered' });

const registered = (state: UserState, userId: string): Registered => {
  if (state.status !== 'Registered') throw notFound(`user ${userId}`);
  return state;
};

const checkConsent = (consent: ConsentPeriod, now: Date): ConsentPeriod => {
  const parsed = parseConsentPeriod('consent', consent.start, consent.end);
  if (new Date(parsed.end) <= now) throw badInput('consent.end', `${parsed.end} has already passed; the consent period must end in the future`);
  return parsed;
};

const register = ({ data, now }: RegisterUser, state: UserState): UserEvent[] => {
  if (state.status === 'Registered') throw conflict(`user ${data.userId} already exists`);
  if (state.status === 'Erasing') throw conflict(`user ${data.userId} is being erased; try again in a moment`);
  if (data.devices.length === 0) throw badInput('devices', 'a user needs at least one device');
  if (data.devices.length > MAX_DEVICES) throw badInput('devices', `${data.devices.length} devices, the limit is ${MAX_DEVICES}`);
  if (new Set(data.devices.map((d) => d.deviceId)).size !== data.devices.length) throw badInput('devices', 'device ids must be unique');
  const duplicate = data.devices.find((d, i) => data.devices.slice(0, i).some((o) => sameAddress(o, d)));
  if (duplicate) throw badInput('devices', `device ${duplicate.deviceId} repeats the address of another device of the same kind`);
  const groupIds = [...new Set(data.groupIds)];
  if (groupIds.length > MAX_GROUPS) throw badInput('groupIds', `${groupIds.length} groups, the limit is ${MAX_GROUPS}`);
  return [{
    type: 'UserRegistered',
    data: { userId: data.userId, name: data.name, devices: data.devices, consent: checkConsent(data.consent, now), optIn: data.optIn, groupIds },
  }];
};

const update = ({ data, now }: UpdateUser, state: UserState): UserEvent[] => {
  const user = registered(state, data.userId);
  const { userId } = data;
  const events: UserEvent[] = [];
  // Sealed values cannot be compared (fresh IV each time), so a given name is always recorded.
  if (data.name !== undefined) events.push({ type: 'UserRenamed', data: { userId, name: data.name } });
  if (data.consent !== undefined) {
    // An end in the past is allowed here: the user's data is then destroyed right away.
    const consent = parseConsentPeriod('consent', data.consent.start, data.consent.end);
    if (consent.start !== user.consent.start || consent.end !== user.consent.end) {
      events.push({ type: 'ConsentPeriodChanged', data: { userId, consent } });
    }
  }
  if (data.optIn !== undefined && data.optIn !== user.optIn) events.push({ type: 'OptInChanged', data: { userId, optIn: data.optIn } });
  if (data.groupIds !== undefined) {
    const wanted = [...new Set(data.groupIds)];
    if (wanted.length > MAX_GROUPS) throw badInput('groupIds', `${wanted.length} groups, the limit is ${MAX_GROUPS}`);
    for (const groupId of wanted) if (!user.groupIds.includes(groupId)) events.push({ type: 'UserJoinedGroup', data: { userId, groupId } });
    for (const groupId of user.groupIds) if (!wanted.includes(groupId)) events.push({ type: 'UserLeftGroup', data: { userId, groupId } });
  }
  return events;
};

/** Two devices of one user that reach the same recipient (same kind, same address fingerprint). */
export const sameAddress = (a: SealedDevice, b: SealedDevice): boolean =>
  a.kind === b.kind && a.fingerprint !== undefined && a.fingerprint === b.fingerprint;

const addDevice = ({ data }: AddDevice, state: UserState): UserEvent[] => {
  const user = registered(state, data.userId);
  if (user.devices.some((d) => d.deviceId === data.device.deviceId)) throw conflict(`device ${data.device.deviceId} already exists`);
  // The same address again adds nothing (the use case answers with the device that has it).
  if (user.devices.some((d) => sameAddress(d, data.device))) return [];
  if (user.devices.length >= MAX_DEVICES) throw badInput('device', `user ${data.userId} already has ${user.devices.length} devices, the limit is ${MAX_DEVICES}`);
  return [{ type: 'DeviceAdded', data: { userId: data.userId, device: data.device } }];
};

const changeDevice = ({ data }: ChangeDevice, state: UserState): UserEvent[] => {
  const user = registered(state, data.userId);
  if (!user.devices.some((d) => d.deviceId === data.device.deviceId)) throw notFound(`device ${data.device.deviceId}`);
  const other = user.devices.find((d) => d.deviceId !== data.device.deviceId && sameAddress(d, data.device));
  if (other) throw conflict(`device ${other.deviceId} already has this address`);
  return [{ type: 'DeviceChanged', data: { userId: data.userId, device: data.device } }];
};

const removeDevice = ({ data }: RemoveDevice, state: UserState): UserEvent[] => {
  const user = registered(state, data.userId);
  if (!user.devices.some((d) => d.deviceId === data.deviceId)) throw notFound(`device ${data.deviceId}`);
  if (user.devices.length === 1) throw badInput('deviceId', `${data.deviceId} is the user's only device; a user needs at least one device, so add another first`);
  return [{ type: 'DeviceRemoved', data: { userId: data.userId, deviceId: data.deviceId } }];
};

const join = ({ data }: JoinGroup, state: UserState): UserEvent[] => {
  const user = registered(state, data.userId);
  if (user.groupIds.includes(data.groupId)) return [];
  if (user.groupIds.length >= MAX_GROUPS) throw badInput('groupId', `user ${data.userId} is in ${user.groupIds.length} groups, the limit is ${MAX_GROUPS}`);
  return [{ type: 'UserJoinedGroup', data: { userId: data.userId, groupId: data.groupId } }];
};

const expire = ({ data, now }: ExpireConsent, state: UserState): UserEvent[] =>
  state.status === 'Registered' && new Date(state.consent.end) <= now
    ? [{ type: 'ConsentExpired', data: { userId: data.userId, consentEnd: state.consent.end } }]
    : [];

const requestErasure = ({ data }: RequestErasure, state: UserState): UserEvent[] => {
  if (state.status === 'Unregistered') throw notFound(`user ${data.userId}`);
  return state.status === 'Registered' ? [{ type: 'UserErasureRequested', data: { userId: data.userId } }] : [];
};

const recordShredding = ({ data }: RecordShredding, state: UserState): UserEvent[] =>
  state.status === 'Erasing'
    ? [{ type: 'UserDataShredded', data: { userId: data.userId, reason: state.reason, groupIds: state.groupIds } }]
    : [];

const leave = ({ data }: LeaveGroup, state: UserState): UserEvent[] =>
  registered(state, data.userId).groupIds.includes(data.groupId)
    ? [{ type: 'UserLeftGroup', data: { userId: data.userId, groupId: data.groupId } }]
    : [];

export const decide = (command: UserCommand, state: UserState): UserEvent[] => {
  switch (command.type) {
    case 'RegisterUser':
      return register(command, state);
    case 'UpdateUser':
      return update(command, state);
    case 'AddDevice':
      return addDevice(command, state);
    case 'ChangeDevice':
      return changeDevice(command, state);
    case 'RemoveDevice':
      return removeDevice(command, state);
    case 'JoinGroup':
      return join(command, state);
    case 'LeaveGroup':
      return leave(command, state);
    case 'ExpireConsent':
      return expire(command, state);
    case 'RequestErasure':
      return requestErasure(command, state);
    case 'RecordShredding':
      return recordShredding(command, state);
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
};

/** Recorded events carry their time in metadata; plain events (in tests) leave the times as they were. */
const timeOf = (event: UserEvent): string | undefined => (event as { metadata?: { at?: string } }).metadata?.at;

export const evolve = (state: UserState, event: UserEvent): UserState => {
  const at = timeOf(event);
  if (event.type === 'UserRegistered') {
    const { userId, name, devices, consent, optIn, groupIds } = event.data;
    return { status: 'Registered', userId, name, devices, consent, optIn, groupIds, registeredAt: at ?? '', updatedAt: at ?? '' };
  }
  if (event.type === 'UserDataShredded') return { status: 'Shredded', userId: event.data.userId };
  if (state.status !== 'Registered') return state;
  const user: Registered = { ...state, updatedAt: at ?? state.updatedAt };
  switch (event.type) {
    case 'ConsentExpired':
      return { status: 'Erasing', userId: user.userId, reason: 'consent-expired', groupIds: user.groupIds };
    case 'UserErasureRequested':
      return { status: 'Erasing', userId: user.userId, reason: 'erasure-requested', groupIds: user.groupIds };
    case 'UserRenamed':
      return { ...user, name: event.data.name };
    case 'DeviceInvalidated':
      return { ...user, devices: user.devices.map((d) => (d.deviceId === event.data.deviceId ? { ...d, invalid: true } : d)) };
    case 'DeviceAdded':
      return { ...user, devices: [...user.devices, event.data.device] };
    case 'DeviceChanged':
      return { ...user, devices: user.devices.map((d) => (d.deviceId === event.data.device.deviceId ? event.data.device : d)) };
    case 'DeviceRemoved':
      return { ...user, devices: user.devices.filter((d) => d.deviceId !== event.data.deviceId) };
    case 'ConsentPeriodChanged':
      return { ...user, consent: event.data.consent };
    case 'OptInChanged':
      return { ...user, optIn: event.data.optIn };
    case 'UserJoinedGroup':
      return user.groupIds.includes(event.data.groupId) ? user : { ...user, groupIds: [...user.groupIds, event.data.groupId] };
    case 'UserLeftGroup':
      return { ...user, groupIds: user.groupIds.filter((g) => g !== event.data.groupId) };
    default: {
      const never: never = event;
      return never;
    }
  }
};

export const userDecider = { decide, evolve, initialState };
