import type { DeliveryRef } from '#schema/events';

/** What the planner puts on the bus: a batch of deliveries of one notification, one partition. */
export type DeliveryJob = Readonly<{
  tenantId: string;
  notificationId: string;
  requestedPosition: number;
  requestedAt: string;
  deadline: string;
  deliveries: readonly DeliveryRef[];
}>;
