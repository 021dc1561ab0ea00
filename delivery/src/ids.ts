import { createHash } from 'node:crypto';

/**
 * Deterministic: the same (notification, user, device) is always the same delivery, so a replayed
 * job is recognised. Short enough for an APNs collapse id (64 bytes) and an FCM collapse key.
 */
export const deliveryIdOf = (tenantId: string, notificationId: string, userId: string, deviceId: string): string =>
  `d${createHash('sha256').update(`${tenantId}\u0000${notificationId}\u0000${userId}\u0000${deviceId}`).digest('base64url').slice(0, 24)}`;

export { partitionOf } from '#schema/sharding';

export const DELIVERY_TOPIC = 'deliveries';
export const DELIVERY_GROUP = 'delivery-workers';
