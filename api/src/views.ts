import { SHREDDED, type PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Page } from '#platform/read-store/port';
import type { Admission, Sealed } from '#schema/events';
import type { Scope } from '#schema/scopes';
import { userKeyId } from '#schema/streams';
import type { UserDocument } from '#projections/users/document';
import { deliveryHistoryDaysOf } from '#projections/tenants/document';
import { initialProgress, type NotificationDocument } from '#projections/notifications/document';
import type { UserState } from '#command/user/decider';
import type { NotificationState } from '#command/notification/decider';
import type { GroupState } from '#command/group/decider';
import type * as G from './types';
import { issueCursor, type ListName } from './cursors';
import type * as P from './provider-types';
import type { IntegrationDocument } from '#projections/integrations/document';
import type { Integration } from '#command/integration/decider';

/** Read models and freshly decided aggregate states, as the GraphQL types show them. */
/** What both the user aggregate and the users read model know about a user. */
export type UserRecord = Pick<UserDocument, 'userId' | 'name' | 'devices' | 'consent' | 'optIn' | 'groupIds' | 'revision'>;

/**
 * Decrypts on the way out; a destroyed key reads as "[shredded]", never as an error. Without
 * `personal` (a key that may not read, answered by a mutation) the name and addresses are null
 * and nothing is decrypted.
 */
export const userView = async (cipher: PersonalDataCipher, tenantId: string, user: UserRecord, options: Readonly<{ personal: boolean }> = { personal: true }): Promise<G.User> => {
  if (!options.personal) {
    return {
      userId: user.userId,
      name: null,
      devices: user.devices.map((d) => ({ deviceId: d.deviceId, kind: d.kind, address: null })),
      consent: { start: new Date(user.consent.start), end: new Date(user.consent.end) },
      optIn: user.optIn,
      groupIds: [...user.groupIds],
      revision: user.revision,
    };
  }
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

export const estimateView = (a: Admission): G.AdmissionEstimate => ({
  ...a,
  ahead: a.ahead ?? 0,
  delays: a.delays ?? 0,
  byChannel: a.byChannel.map((c) => ({ ...c, ahead: c.ahead ?? 0 })),
});

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
      delivered: p.delivered ?? 0,
      bounced: p.bounced ?? 0,
    },
    estimate: n.admission ? estimateView(n.admission) : null,
    completedAt: n.completedAt ? new Date(n.completedAt) : null,
  };
};

/** A page as a connection; its cursor names the list and the scope (tenant) it was issued for. */
export const connection = async <D, N>(list: ListName, scope: string, page: Page<D>, map: (d: D) => N | Promise<N>) => ({
  nodes: await Promise.all(page.items.map(map)),
  pageInfo: { endCursor: issueCursor(list, scope, page.next), hasNextPage: page.next !== null },
});

type KeyRecord = Readonly<{ keyId: string; name: string; scopes: readonly Scope[]; issuedAt: string; revoked: boolean }>;
export type TenantRecord = Readonly<{
  tenantId: string;
  name: string;
  deliveryDeadlineMinutes: number;
  /** Absent on tenants documents written before the setting existed. */
  deliveryHistoryDays?: number;
  keys: Iterable<KeyRecord> | ReadonlyMap<string, Omit<KeyRecord, 'keyId'>>;
}>;

const keyList = (keys: TenantRecord['keys']): KeyRecord[] =>
  keys instanceof Map
    ? [...(keys as ReadonlyMap<string, Omit<KeyRecord, 'keyId'>>).entries()].map(([keyId, k]) => ({ keyId, ...k }))
    : [...(keys as Iterable<KeyRecord>)];

/** From the tenant aggregate (after a mutation) or the tenants read model (queries). */
export const tenantView = (t: TenantRecord | { status: string }): G.Tenant => {
  if (!('tenantId' in t)) throw new Error('tenant view of an unregistered tenant');
  return {
    tenantId: t.tenantId,
    name: t.name,
    deliveryDeadlineMinutes: t.deliveryDeadlineMinutes,
    deliveryHistoryDays: deliveryHistoryDaysOf(t),
    apiKeys: keyList(t.keys).map((k) => ({
      keyId: k.keyId,
      name: k.name,
      scopes: [...k.scopes],
      issuedAt: new Date(k.issuedAt),
      revoked: k.revoked,
    })),
  };
};

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

export const groupView = (state: GroupState): G.Group => {
  if (state.status !== 'Created') throw new Error('group state after a successful command must be Created');
  return { groupId: state.groupId, name: state.name, memberCount: null };
};

type IntegrationRecord = Pick<IntegrationDocument, 'owner' | 'name' | 'vendor' | 'channel' | 'priority' | 'quotaPerSecond' | 'settings' | 'fingerprint' | 'hint'> &
  Partial<Pick<IntegrationDocument, 'breaker' | 'lastError' | 'credentialsRejected' | 'configuredAt'>> &
  Readonly<{ endpoint: string | null }>;

/** An integration without its secret: settings in clear, the credentials as a fingerprint and a hint. */
export const integrationView = (i: IntegrationRecord): P.ProviderIntegration => ({
  owner: i.owner,
  name: i.name,
  vendor: i.vendor,
  channel: i.channel,
  priority: i.priority,
  quotaPerSecond: i.quotaPerSecond,
  endpoint: i.endpoint,
  settings: Object.entries(i.settings)
    .filter(([k, v]) => k !== 'vendor' && v !== null && v !== undefined)
    .map(([key, value]) => ({ key, value: String(value) })),
  credentials: { fingerprint: i.fingerprint, hint: i.hint },
  breaker: i.breaker ? { state: i.breaker.state, reason: i.breaker.reason, at: new Date(i.breaker.at) } : null,
  lastError: i.lastError ? { code: i.lastError.code, at: new Date(i.lastError.at) } : null,
  credentialsRejected: i.credentialsRejected ?? null,
  configuredAt: i.configuredAt ? new Date(i.configuredAt) : null,
});

/** From the decided state, after a mutation (the read model may not have it yet). */
export const integrationViewOf = (i: Integration): P.ProviderIntegration =>
  integrationView({ ...i, endpoint: i.endpoint?.url ?? null, credentialsRejected: i.credentialsRejected });
