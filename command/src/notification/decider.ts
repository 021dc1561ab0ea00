import type { CompleteNotification, FinishPlanning, NotificationCommand, RecordPlanningProgress, RequestNotification, SliceNotification } from '#schema/commands';
import type { ChannelCounts, NotificationEvent, NotificationRequested, NotificationTarget } from '#schema/events';
import { conflict } from '#schema/errors';
import { parseDeliveryDeadlineMinutes, parseEntityId, parseNotificationText, parseUserIds } from '#schema/values';

export type Planning = Readonly<{ cursor: string | null; recipients: number; deliveries: number; byChannel: ChannelCounts; skipped: Readonly<Record<string, number>> }>;

/**
 * Requested -> Planning (sliced: each partition's owner plans its slice) -> Completed (every slice
 * planned, every delivery terminal). Logs written before slices went Planning (pages on the bus)
 * -> Planned (fan-out done) -> Completed.
 */
export type NotificationState =
  | Readonly<{ status: 'None' }>
  | (Readonly<{ status: 'Requested' | 'Planning' | 'Planned' | 'Completed'; planning: Planning; slices: number | null }> & NotificationRequested['data']);
type Known = Exclude<NotificationState, { status: 'None' }>;

const NO_PLANNING: Planning = { cursor: null, recipients: 0, deliveries: 0, byChannel: {}, skipped: {} };

const addCounts = (a: ChannelCounts, b: ChannelCounts): ChannelCounts => {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + (v ?? 0);
  return out;
};

export const initialState = (): NotificationState => ({ status: 'None' });

const checkTarget = (target: NotificationTarget): NotificationTarget =>
  target.kind === 'group'
    ? { kind: 'group', groupId: parseEntityId('groupId', target.groupId) }
    : { kind: 'users', userIds: parseUserIds('userIds', target.userIds) };

const request = ({ data, now }: RequestNotification, state: NotificationState): NotificationEvent[] => {
  if (state.status !== 'None') {
    // The stream id comes from the idempotency key: the same key and body is a retry.
    if (state.requestHash === data.requestHash) return [];
    throw conflict(`idempotency key "${data.idempotencyKey ?? ''}" was already used for a different request`);
  }
  const minutes = parseDeliveryDeadlineMinutes('deliveryDeadlineMinutes', data.deliveryDeadlineMinutes);
  return [{
    type: 'NotificationRequested',
    data: {
      notificationId: data.notificationId,
      text: parseNotificationText('text', data.text),
      target: checkTarget(data.target),
      idempotencyKey: data.idempotencyKey,
      requestHash: data.requestHash,
      requestedAt: now.toISOString(),
      deadline: new Date(now.getTime() + minutes * 60_000).toISOString(),
      ...(data.admission ? { admission: data.admission } : {}),
    },
  }];
};

const known = (state: NotificationState, id: string): Known => {
  if (state.status === 'None') throw new Error(`notification ${id} was never requested`);
  return state;
};

/** A page is recorded once: a replay of the same cursor after a crash changes nothing. */
const progress = ({ data }: RecordPlanningProgress, state: NotificationState): NotificationEvent[] => {
  const n = known(state, data.notificationId);
  if (n.status !== 'Requested' && n.status !== 'Planning') return [];
  if (data.cursor !== null && data.cursor === n.planning.cursor) return [];
  return [{ type: 'NotificationPlanningProgressed', data: { ...data } }];
};

const finish = ({ data }: FinishPlanning, state: NotificationState): NotificationEvent[] => {
  const n = known(state, data.notificationId);
  if (n.status !== 'Requested' && n.status !== 'Planning') return [];
  const { recipients, deliveries, byChannel, skipped } = n.planning;
  return [{ type: 'NotificationPlanned', data: { notificationId: data.notificationId, recipients, deliveries, byChannel, skipped } }];
};

const slice = ({ data }: SliceNotification, state: NotificationState): NotificationEvent[] => {
  const n = known(state, data.notificationId);
  if (n.status !== 'Requested') return [];
  if (!Number.isInteger(data.partitions) || data.partitions < 1) throw new Error(`a notification is cut into at least one slice, got ${data.partitions}`);
  return [{ type: 'NotificationSliced', data: { notificationId: data.notificationId, partitions: data.partitions } }];
};

/** The caller (delivery's completer) has seen every slice planned and every delivery terminal. */
const complete = ({ data }: CompleteNotification, state: NotificationState): NotificationEvent[] => {
  const n = known(state, data.notificationId);
  if (n.status !== 'Planned' && !(n.status === 'Planning' && n.slices !== null)) return [];
  return [{ type: 'NotificationCompleted', data: { ...data } }];
};

export const decide = (command: NotificationCommand, state: NotificationState): NotificationEvent[] => {
  switch (command.type) {
    case 'RequestNotification':
      return request(command, state);
    case 'RecordPlanningProgress':
      return progress(command, state);
    case 'FinishPlanning':
      return finish(command, state);
    case 'SliceNotification':
      return slice(command, state);
    case 'CompleteNotification':
      return complete(command, state);
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
};

export const evolve = (state: NotificationState, event: NotificationEvent): NotificationState => {
  if (event.type === 'NotificationRequested') return { status: 'Requested', ...event.data, planning: NO_PLANNING, slices: null };
  if (state.status === 'None') return state;
  switch (event.type) {
    case 'NotificationPlanningProgressed': {
      const p = state.planning;
      const { cursor, recipients, deliveries, byChannel, skipped } = event.data;
      return {
        ...state,
        status: 'Planning',
        planning: { cursor, recipients: p.recipients + recipients, deliveries: p.deliveries + deliveries, byChannel: addCounts(p.byChannel, byChannel), skipped: addCounts(p.skipped, skipped) as Planning['skipped'] },
      };
    }
    case 'NotificationPlanned':
      return { ...state, status: 'Planned' };
    case 'NotificationSliced':
      return { ...state, status: 'Planning', slices: event.data.partitions };
    case 'NotificationCompleted':
      return { ...state, status: 'Completed' };
    default: {
      const never: never = event;
      return never;
    }
  }
};

export const notificationDecider = { decide, evolve, initialState };
