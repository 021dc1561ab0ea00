import type { NotificationTarget } from '#schema/events';

/**
 * What the planner puts on the bus for each partition when a notification is requested: its
 * slice, which the partition's owner plans page by page (as its queue drains, earliest deadline
 * first) and sends. The bus thus carries one small message per partition and send, however
 * large the audience.
 */
export type SliceJob = Readonly<{
  kind: 'slice';
  tenantId: string;
  notificationId: string;
  requestedPosition: number;
  requestedAt: string;
  deadline: string;
  target: NotificationTarget;
}>;
