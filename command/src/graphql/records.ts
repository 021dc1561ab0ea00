import type { UserRecord, NotificationRecord } from '../../../query/src/views';
import { initialProgress } from '../../../projections/src/notifications/document';
import type { UserState } from '../user/decider';
import type { NotificationState } from '../notification/decider';

const STATUS = { Requested: 'REQUESTED', Planning: 'PLANNING', Planned: 'DELIVERING', Completed: 'COMPLETED' } as const;

/** A mutation answers from the state it just decided on: the read model may not have it yet. */
export const userRecordOf = (state: UserState, revision: number): UserRecord => {
  if (state.status !== 'Registered') throw new Error('user state after a successful command must be Registered');
  return { ...state, revision };
};

export const notificationRecordOf = (state: NotificationState): NotificationRecord => {
  if (state.status === 'None') throw new Error('notification state after a successful command must exist');
  return { ...state, status: STATUS[state.status], progress: initialProgress };
};
