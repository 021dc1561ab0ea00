import type { Admission, DeviceKind, NotificationTarget } from '#schema/events';
import type { CollectionSpec } from '#platform/read-store/port';

/** Deliveries (one per recipient device) by state; every counter sits in one of these. */
export type DeliveryCounts = Readonly<{
  total: number;
  pending: number;
  succeeded: number;
  failed: number;
  expired: number;
}>;

export type NotificationProgress = DeliveryCounts &
  Readonly<{
    /** Users the fan-out reached; null until the planner has counted them. */
    recipients: number | null;
    /** A sliced send: its slices (one per bus partition) and how many are fully planned. */
    slices?: number;
    slicesPlanned?: number;
    /** The same counters split by channel and by provider, filled once deliveries are recorded. */
    byChannel: Readonly<Partial<Record<DeviceKind, DeliveryCounts>>>;
    byProvider: Readonly<Record<string, DeliveryCounts>>;
    /** Attempts per provider, successful or not: where the traffic went. */
    attemptsByProvider?: Readonly<Record<string, number>>;
    /** Receipts: accepted deliveries the provider then delivered, or that bounced (SMS, email). */
    delivered?: number;
    bounced?: number;
    /** Succeeded deliveries that may have reached their device more than once (a copy lost in a crash, a call given up). */
    possiblyDuplicated?: number;
    /**
     * Copies beyond the first that may have reached devices: the sum over succeeded deliveries of
     * their possibleCopies - 1 (an older event's possiblyDuplicate counts one). Extra copies at the
     * providers never exceed it.
     */
    possibleExtraCopies?: number;
    /**
     * Users with at least one successful delivery: a HyperLogLog estimate while the notification
     * runs, exact once it completes (`reachedUsersExact`).
     */
    reachedUsers?: number;
    reachedUsersExact?: boolean;
    /** The HyperLogLog registers behind the estimate (base64), dropped on completion. */
    reachedSketch?: string;
  }>;

export type NotificationStatus = 'REQUESTED' | 'PLANNING' | 'DELIVERING' | 'COMPLETED';

export type NotificationDocument = Readonly<{
  id: string;
  tenantId: string;
  notificationId: string;
  text: string;
  target: NotificationTarget;
  idempotencyKey: string | null;
  status: NotificationStatus;
  requestedAt: string;
  deadline: string;
  progress: NotificationProgress;
  /** What admission estimated when the send was accepted. */
  admission?: Admission;
  /** When its last delivery ended (absent on documents older than this field). */
  completedAt?: string;
  /** Position of the last event applied: live snapshots wait until the model has reached it. */
  lastPosition: number;
}>;

export const NOTIFICATIONS = 'notifications';

export const notificationsCollection: CollectionSpec = {
  name: NOTIFICATIONS,
  indexes: [['tenantId'], ['status']],
  sortFields: ['requestedAt', 'deadline'],
};

export const notificationDocId = (tenantId: string, notificationId: string): string => `${tenantId}:${notificationId}`;

export const noDeliveries: DeliveryCounts = { total: 0, pending: 0, succeeded: 0, failed: 0, expired: 0 };

export const initialProgress: NotificationProgress = { ...noDeliveries, recipients: null, byChannel: {}, byProvider: {} };
