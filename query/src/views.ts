import type { PersonalDataCipher } from '../../platform/src/crypto/personal-data';
import type { ConsentPeriod, NotificationTarget, Sealed, SealedDevice } from '../../schema/src/events';
import { userKeyId } from '../../schema/src/streams';
import type { Page } from '../../platform/src/read-store/port';
import type * as G from '../../schema/src/graphql/types';

export const SHREDDED = '[shredded]';

/** What both the user aggregate and the users read model know about a user. */
export type UserRecord = Readonly<{
  userId: string;
  name: Sealed;
  devices: readonly SealedDevice[];
  consent: ConsentPeriod;
  optIn: boolean;
  groupIds: readonly string[];
  revision: number;
}>;

/** Decrypts on the way out; a destroyed key reads as "[shredded]", never as an error. */
export const userView = async (cipher: PersonalDataCipher, tenantId: string, user: UserRecord): Promise<G.User> => {
  const key = await cipher.keyFor(userKeyId(tenantId, user.userId), { create: false });
  const open = (s: Sealed): string => {
    if (!key) return SHREDDED;
    try {
      return cipher.open(key, s);
    } catch {
      return SHREDDED;
    }
  };
  return {
    userId: user.userId,
    name: open(user.name),
    devices: user.devices.map((d) => ({ deviceId: d.deviceId, kind: d.kind, address: open(d.address) })),
    consent: { start: new Date(user.consent.start), end: new Date(user.consent.end) },
    optIn: user.optIn,
    groupIds: [...user.groupIds],
    revision: user.revision,
  };
};

export type ProgressRecord = Readonly<{
  recipients: number | null;
  total: number;
  pending: number;
  succeeded: number;
  failed: number;
  expired: number;
}>;

export const EMPTY_PROGRESS: ProgressRecord = { recipients: null, total: 0, pending: 0, succeeded: 0, failed: 0, expired: 0 };

export type NotificationRecord = Readonly<{
  notificationId: string;
  text: string;
  target: NotificationTarget;
  idempotencyKey: string | null;
  status: string;
  requestedAt: string;
  deadline: string;
  progress: ProgressRecord;
}>;

export const notificationView = (n: NotificationRecord): G.Notification => {
  const p = n.progress;
  const done = p.succeeded + p.failed + p.expired;
  return {
    notificationId: n.notificationId,
    text: n.text,
    target: n.target.kind === 'group'
      ? { groupId: n.target.groupId, userIds: null }
      : { groupId: null, userIds: [...n.target.userIds] },
    idempotencyKey: n.idempotencyKey,
    status: n.status as G.Notification['status'],
    requestedAt: new Date(n.requestedAt),
    deadline: new Date(n.deadline),
    progress: { ...p, completion: p.total === 0 ? 0 : done / p.total },
  };
};

export const connection = async <D, N>(page: Page<D>, map: (d: D) => N | Promise<N>) => ({
  nodes: await Promise.all(page.items.map(map)),
  pageInfo: { endCursor: page.next, hasNextPage: page.next !== null },
});
