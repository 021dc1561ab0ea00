import type { PersonalDataCipher } from '../../platform/src/crypto/personal-data';
import type { Sealed } from '../../schema/src/events';
import type { UserDocument } from '../../projections/src/users/document';
import type { NotificationDocument } from '../../projections/src/notifications/document';
import { userKeyId } from '../../schema/src/streams';
import type { Page } from '../../platform/src/read-store/port';
import type * as G from '../../schema/src/graphql/types';

export const SHREDDED = '[shredded]';

/** What both the user aggregate and the users read model know about a user. */
export type UserRecord = Pick<UserDocument, 'userId' | 'name' | 'devices' | 'consent' | 'optIn' | 'groupIds' | 'revision'>;

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

/** A notification as the read model has it, or as a mutation just decided it. */
export type NotificationRecord = Omit<NotificationDocument, 'id' | 'tenantId' | 'lastPosition' | 'status'> & Readonly<{ status: string }>;

export const notificationView = (n: NotificationRecord): G.Notification => {
  const p = n.progress;
  const done = p.succeeded + p.failed + p.expired;
  const attempts = p.attemptsByProvider ?? {};
  const counts = (key: string, c: { total: number; succeeded: number; failed: number; expired: number }, a = 0): G.DeliveryCounts => ({
    key,
    total: c.total,
    succeeded: c.succeeded,
    failed: c.failed,
    expired: c.expired,
    attempts: a,
  });
  const providers = new Set([...Object.keys(p.byProvider), ...Object.keys(attempts)]);
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
    progress: {
      recipients: p.recipients,
      total: p.total,
      // Outcomes can be projected before the planning page that counted them: never below 0.
      pending: Math.max(0, p.total - done),
      succeeded: p.succeeded,
      failed: p.failed,
      expired: p.expired,
      completion: p.total === 0 ? (n.status === 'COMPLETED' ? 1 : 0) : Math.min(1, done / p.total),
      byChannel: Object.entries(p.byChannel).map(([k, c]) => counts(k, { ...c, total: c.total })),
      byProvider: [...providers].filter((k) => k !== 'none').map((k) => counts(k, p.byProvider[k] ?? { total: 0, succeeded: 0, failed: 0, expired: 0 }, attempts[k] ?? 0)),
      reachedUsers: p.reachedUsers ?? null,
      reachedUsersExact: p.reachedUsersExact ?? false,
      possiblyDuplicated: p.possiblyDuplicated ?? 0,
    },
  };
};

export const connection = async <D, N>(page: Page<D>, map: (d: D) => N | Promise<N>) => ({
  nodes: await Promise.all(page.items.map(map)),
  pageInfo: { endCursor: page.next, hasNextPage: page.next !== null },
});
