import { createHash } from 'node:crypto';
import { streams } from '#schema/streams';
import type { Admission, NotificationTarget } from '#schema/events';
import { badInput, notFound } from '#schema/errors';
import { parseEntityId, parseIdempotencyKey, parseNotificationText, parseUserIds } from '#schema/values';
import { handleCommand } from '../handler';
import { metadataOf, type Actor, type CommandContext } from '../context';
import { requireGroups } from '../group/commands';
import { requireUsers } from '../user/commands';
import type { TenantCommands } from '../tenant/commands';
import { notificationDecider } from './decider';

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

export class NotificationCommands {
  constructor(private readonly ctx: CommandContext & Readonly<{ tenants: TenantCommands; admission?: AdmissionEstimator }>) {}

  async send(actor: Actor, tenantId: string, input: SendNotificationInput) {
    const text = parseNotificationText('text', input.text);
    const target = parseTarget(input);
    const idempotencyKey = input.idempotencyKey == null ? null : parseIdempotencyKey('idempotencyKey', input.idempotencyKey);
    const tenant = await this.ctx.tenants.state(tenantId);
    if (tenant.status !== 'Registered') throw notFound(`tenant ${tenantId}`);
    if (target.kind === 'group') await requireGroups(this.ctx.eventStore, tenantId, [target.groupId]);
    else await requireUsers(this.ctx.eventStore, tenantId, target.userIds);

    const requestHash = createHash('sha256').update(JSON.stringify({ text, target })).digest('hex');
    // A key names one request forever: the id is derived from it, so a retry lands on the same stream.
    const notificationId = idempotencyKey === null
      ? this.ctx.ids.ulid()
      : `n${createHash('sha256').update(`${tenantId}\u0000${idempotencyKey}`).digest('hex').slice(0, 25)}`;
    const now = this.ctx.clock.now();
    const admission = this.ctx.admission ? await this.ctx.admission(tenantId, target, tenant.deliveryDeadlineMinutes, now) : undefined;
    const result = await handleCommand(this.ctx.eventStore, streams.notification(tenantId, notificationId), notificationDecider, {
      type: 'RequestNotification',
      data: { notificationId, text, target, idempotencyKey, requestHash, deliveryDeadlineMinutes: tenant.deliveryDeadlineMinutes, ...(admission ? { admission } : {}) },
      now,
    }, metadataOf(this.ctx, tenantId, actor));
    return { ...result, duplicate: result.appended.length === 0 };
  }
}
