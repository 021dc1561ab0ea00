import type { DeviceKind, NotificationTarget } from '#schema/events';
import type { ReadStore } from '#platform/read-store/port';
import { USERS, userDocId, type UserDocument } from '#projections/users/document';
import { listUsers } from '#projections/users/queries';
import { getGroup } from '#projections/groups/queries';
import type { Channel } from './providers/port';
import { recipientDevices } from './eligibility';

export type ChannelEstimate = Readonly<{ channel: DeviceKind; deliveries: number; capacityPerSecond: number; seconds: number }>;

export type AdmissionEstimate = Readonly<{
  recipients: number;
  deliveries: number;
  byChannel: readonly ChannelEstimate[];
  /** Fan-out plus the slowest channel at its providers' combined capacity. */
  seconds: number;
  deadlineSeconds: number;
  fitsDeadline: boolean;
}>;

const SAMPLE = 500;
/** Users the planner pages a second (measured: see docs/benchmarks.md, bench:fanout). */
const PLANNER_USERS_PER_SECOND = 50_000;

/**
 * Whether a send can finish before its deadline: the recipient count (group size or the listed
 * users), the device mix of a sample of them (eligible users only), and the configured provider
 * quotas. A send that cannot finish is still accepted; the estimate says so.
 */
export const estimateAdmission = async (
  readStore: ReadStore,
  /** Messages a second the tenant's chain for a channel can take. */
  capacity: (channel: Channel) => number,
  tenantId: string,
  target: NotificationTarget,
  deadlineMinutes: number,
  now: Date,
): Promise<AdmissionEstimate> => {
  let recipients: number;
  let sample: readonly UserDocument[];
  if (target.kind === 'group') {
    recipients = (await getGroup(readStore, tenantId, target.groupId))?.memberCount ?? 0;
    sample = (await listUsers(readStore, tenantId, { groupId: target.groupId, first: SAMPLE })).items;
  } else {
    sample = await readStore.getMany<UserDocument>(USERS, target.userIds.map((u) => userDocId(tenantId, u)));
    recipients = target.userIds.length;
  }
  const at = now.toISOString();
  const perChannel = new Map<DeviceKind, number>();
  for (const u of sample) {
    const devices = recipientDevices(u, at);
    if (devices.ok) for (const d of devices.value) perChannel.set(d.kind, (perChannel.get(d.kind) ?? 0) + 1);
  }
  const scale = sample.length === 0 ? 0 : recipients / sample.length;
  const byChannel: ChannelEstimate[] = [...perChannel].map(([channel, n]) => {
    const deliveries = Math.round(n * scale);
    const capacityPerSecond = capacity(channel);
    return { channel, deliveries, capacityPerSecond, seconds: capacityPerSecond > 0 ? deliveries / capacityPerSecond : Infinity };
  });
  const seconds = recipients / PLANNER_USERS_PER_SECOND + Math.max(0, ...byChannel.map((c) => c.seconds));
  const deadlineSeconds = deadlineMinutes * 60;
  return {
    recipients,
    deliveries: byChannel.reduce((n, c) => n + c.deliveries, 0),
    byChannel,
    seconds: Math.round(seconds * 10) / 10,
    deadlineSeconds,
    fitsDeadline: seconds <= deadlineSeconds,
  };
};
