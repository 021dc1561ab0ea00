import { createHash } from 'node:crypto';
import { fnv1a } from '#platform/sketches/hash';

/**
 * Deterministic: the same (notification, user, device) is always the same delivery, so a replayed
 * job is recognised. Short enough for an APNs collapse id (64 bytes) and an FCM collapse key.
 */
export const deliveryIdOf = (tenantId: string, notificationId: string, userId: string, deviceId: string): string =>
  `d${createHash('sha256').update(`${tenantId}\u0000${notificationId}\u0000${userId}\u0000${deviceId}`).digest('base64url').slice(0, 24)}`;

/** The bus partition of a user: all of a user's deliveries go to one worker, in order. */
export const partitionOf = (userId: string, partitions: number): number => fnv1a(userId) % partitions;

export const DELIVERY_TOPIC = 'deliveries';
export const DELIVERY_GROUP = 'delivery-workers';
