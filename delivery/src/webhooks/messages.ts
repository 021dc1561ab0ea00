import type { AnyEvent, Ineligibility, RecordedEvent } from '#schema/events';
import type { WebhookMessage } from '#projections/webhooks/document';

/** The log's event types that become webhook messages. */
export const SOURCE_EVENT_TYPES = ['NotificationCompleted', 'DeliveryFailed', 'DeliveryReceipted', 'DeviceInvalidated', 'UserDataShredded'] as const;

const INELIGIBILITY: Readonly<Record<Ineligibility, true>> = {
  'unknown-user': true,
  erased: true,
  'opted-out': true,
  'outside-consent': true,
  'no-valid-device': true,
  'device-removed': true,
  'device-invalid': true,
};

/**
 * Our code for a failed delivery. A provider's reason is its own text (which may even quote the
 * address it refused), so it never leaves: the receiver learns that the provider refused.
 */
export const failureCode = (provider: string | null, reason: string): string =>
  provider === null && Object.hasOwn(INELIGIBILITY, reason) ? reason : provider === null ? 'not-sent' : 'provider-rejected';

export const messageId = (position: number, n: number): string => `msg_${position}_${n}`;

/**
 * The webhook messages of one event of the log, in order: ids, counts and codes only, never
 * personal data (names, addresses, numbers: only ever sealed in the log anyway) nor a provider's
 * error text. `n` numbers the event's messages, so `msg_<position>_<n>` is the same id on every
 * replay and for every endpoint.
 */
export const messagesOf = (event: RecordedEvent<AnyEvent>): WebhookMessage[] => {
  const tenantId = event.metadata.tenantId;
  const at = event.metadata.at;
  const out: WebhookMessage[] = [];
  const push = (type: WebhookMessage['type'], timestamp: string, data: WebhookMessage['data']) =>
    out.push({ id: messageId(event.position, out.length), type, timestamp, data: { tenantId, ...data } });
  switch (event.type) {
    case 'NotificationCompleted': {
      const { notificationId, succeeded, failed, expired, reachedUsers } = event.data;
      push('notification.completed', at, { notificationId, succeeded, failed, expired, reachedUsers });
      break;
    }
    case 'DeliveryFailed':
      for (const d of event.data.deliveries) {
        push('delivery.failed', at, {
          notificationId: event.data.notificationId,
          deliveryId: d.deliveryId,
          userId: d.userId,
          deviceId: d.deviceId,
          channel: d.channel,
          provider: d.provider,
          reason: failureCode(d.provider, d.reason),
        });
      }
      break;
    case 'DeliveryReceipted':
      for (const d of event.data.deliveries) {
        if (d.status !== 'delivered') continue;
        push('delivery.confirmed', d.at, {
          notificationId: event.data.notificationId,
          deliveryId: d.deliveryId,
          userId: d.userId,
          deviceId: d.deviceId,
          channel: d.channel,
          provider: d.provider,
        });
      }
      break;
    case 'DeviceInvalidated':
      push('device.invalidated', at, { userId: event.data.userId, deviceId: event.data.deviceId, provider: event.data.provider });
      break;
    case 'UserDataShredded':
      push('user.shredded', at, { userId: event.data.userId, reason: event.data.reason });
      break;
    default:
      break;
  }
  return out;
};
