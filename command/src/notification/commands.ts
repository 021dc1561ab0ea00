import { createHash } from 'node:crypto';
import { streams } from '#schema/streams';
import type { Admission, NotificationTarget } from '#schema/events';
import { badInput, notFound } from '#schema/errors';
import { parseEntityId, parseIdempotencyKey, parseNotificationText, parseUserIds } from '#schema/values';
import { handleCommand, load, type Loaded } from '../handler';
import { metadataOf, type Actor, type CommandContext } from '../context';
import { requireGroups } from '../group/commands';
import { requireUsers } from '../user/commands';
import type { TenantCommands } from '../tenant/commands';
import { notificationDecider, type NotificationState } from './decider';

export type SendNotificationInput = Readonly<{
  text: string;
  groupId?: string | null;
  userIds?: readonly string[] | null;
  idempotencyKey?: string | null;
}>;

/** Estimates whether a send can finish before its deadline (the delivery role's quotas). */
export type AdmissionEstimator = (tenantId: string, target: NotificationTarget, deadlineMinutes: number, now: Date) => Promise<Admission>;

const parseTarget = (input: SendNotificationInput): NotificationTarget => {
  const hasGroup = input.groupId != null;
  const hasUsers = input.userIds != null;
  if (hasGroup === hasUsers) throw badInput('target', 'give exactly one of groupId or userIds');
  return hasGroup
    ? { kind: 'group', groupId: parseEntityId('groupId', input.groupId!) }
    : { kind: 'users', userIds: parseUserIds('userIds', input.userIds!) };
};

/** How recently a read must have confirmed the tenant's settings (its request's authentication did). */
const TENANT_SETTINGS_AGE_MS = 1_000;

export class NotificationCommands {
  constructor(private readonly ctx: CommandContext & Readonly<{ tenants: TenantCommands; admission?: AdmissionEstimator }>) {}

  async send(actor: Actor, tenantId: string, input: SendNotificationInput) {
    const text = parseNotificationText('text', input.text);
    const target = parseTarget(input);
    const idempotencyKey = input.idempotencyKey == null ? null : parseIdempotencyKey('idempotencyKey', input.idempotencyKey);
    const tenant = await this.ctx.tenants.state(tenantId, { maxAgeMs: TENANT_SETTINGS_AGE_MS });
    if (tenant.status !== 'Registered') throw notFound(`tenant ${tenantId}`);

    const requestHash = createHash('sha256').update(JSON.stringify({ text, target })).digest('hex');
    // A key names one request forever: the id is derived from it, so a retry lands on the same stream.
    const notificationId = idempotencyKey === null
      ? this.ctx.ids.ulid()
      : `n${createHash('sha256').update(`${tenantId}\u0000${idempotencyKey}`).digest('hex').slice(0, 25)}`;
    const stream = streams.notification(tenantId, notificationId);
    const now = this.ctx.clock.now();
    // The target's check, the estimate and (for a retry's key) the stream are read at once; the
    // target's error comes first, and nothing is appended unless all three succeed.
    const [targetFound, admission, loaded] = await Promise.allSettled([
      target.kind === 'group' ? requireGroups(this.ctx.eventStore, tenantId, [target.groupId]) : requireUsers(this.ctx.eventStore, tenantId, target.userIds),
      this.ctx.admission ? this.ctx.admission(tenantId, target, tenant.deliveryDeadlineMinutes, now) : Promise.resolve(undefined),
      // A new ULID names a stream that does not exist yet; the append's expected revision checks it.
      idempotencyKey === null ? Promise.resolve({ state: notificationDecider.initialState(), revision: -1 }) : load(this.ctx.eventStore, stream, notificationDecider),
    ]);
    for (const r of [targetFound, admission, loaded]) if (r.status === 'rejected') throw r.reason;
    const estimate = (admission as PromiseFulfilledResult<Admission | undefined>).value;
    const result = await handleCommand(this.ctx.eventStore, stream, notificationDecider, {
      type: 'RequestNotification',
      data: { notificationId, text, target, idempotencyKey, requestHash, deliveryDeadlineMinutes: tenant.deliveryDeadlineMinutes, ...(estimate ? { admission: estimate } : {}) },
      now,
    }, metadataOf(this.ctx, tenantId, actor), { loaded: (loaded as PromiseFulfilledResult<Loaded<NotificationState>>).value });
    return { ...result, duplicate: result.appended.length === 0 };
  }
}
