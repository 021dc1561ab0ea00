import type { DeliveryEvent, DeviceKind, NotificationEvent, NotificationTarget, RecordedEvent } from '#schema/events';
import { HyperLogLog } from '#platform/sketches/hyperloglog';
import { eventTypes, isOneOf, readModel, unreachable, type ReadModel } from '../read-model';
import { initialProgress, noDeliveries, notificationDocId, notificationsCollection, type DeliveryCounts, type NotificationDocument, type NotificationProgress } from './document';

export const notificationEvents = eventTypes<NotificationEvent['type'] | DeliveryEvent['type']>({
  NotificationRequested: true,
  NotificationPlanningProgressed: true,
  NotificationPlanned: true,
  NotificationCompleted: true,
  NotificationSliced: true,
  DeliverySlicePlanned: true,
  DeliveryDispatched: true,
  DeliveryAttempted: true,
  DeliverySucceeded: true,
  DeliveryFailed: true,
  DeliveryExpired: true,
  DeliveryReceipted: true,
});

type Terminal = 'succeeded' | 'failed' | 'expired';

const bump = (c: DeliveryCounts | undefined, status: Terminal, n: number): DeliveryCounts => {
  const base = c ?? noDeliveries;
  return { ...base, [status]: base[status] + n, pending: base.pending - n };
};

/** Moves `entries` from pending to a terminal status, in the totals and per channel and provider. */
const settle = (p: NotificationProgress, status: Terminal, entries: readonly { channel: DeviceKind; provider?: string | null }[]): NotificationProgress => {
  const byChannel: Record<string, DeliveryCounts> = { ...p.byChannel };
  const byProvider: Record<string, DeliveryCounts> = { ...p.byProvider };
  for (const e of entries) {
    byChannel[e.channel] = bump(byChannel[e.channel], status, 1);
    const provider = e.provider ?? 'none';
    byProvider[provider] = bump(byProvider[provider], status, 1);
  }
  return { ...p, ...bump(p, status, entries.length), byChannel, byProvider };
};

const plannedCounts = (byChannel: Readonly<Partial<Record<DeviceKind, number>>>, prior: NotificationProgress['byChannel']) => {
  const out: Record<string, DeliveryCounts> = { ...prior };
  for (const [channel, n] of Object.entries(byChannel)) {
    const c = out[channel] ?? noDeliveries;
    out[channel] = { ...c, total: c.total + (n ?? 0), pending: c.pending + (n ?? 0) };
  }
  return out;
};

const copyTarget = (t: NotificationTarget): NotificationTarget =>
  t.kind === 'group' ? { kind: 'group', groupId: t.groupId } : { kind: 'users', userIds: [...t.userIds] };

export const evolve = (doc: NotificationDocument | null, event: RecordedEvent): NotificationDocument | null => {
  if (!isOneOf(notificationEvents, event)) return doc;
  if (doc && event.position <= doc.lastPosition) return doc;
  if (event.type === 'NotificationRequested') {
    const { data, metadata } = event;
    return {
      id: notificationDocId(metadata.tenantId, data.notificationId),
      tenantId: metadata.tenantId,
      notificationId: data.notificationId,
      text: data.text,
      target: copyTarget(data.target),
      idempotencyKey: data.idempotencyKey,
      status: 'REQUESTED',
      requestedAt: data.requestedAt,
      deadline: data.deadline,
      progress: initialProgress,
      ...(data.admission ? { admission: data.admission } : {}),
      lastPosition: event.position,
    };
  }
  if (!doc) return null;
  const at = { ...doc, lastPosition: event.position };
  const p = doc.progress;
  switch (event.type) {
    case 'NotificationPlanningProgressed': {
      const { recipients, deliveries, byChannel } = event.data;
      return {
        ...at,
        status: doc.status === 'REQUESTED' ? 'PLANNING' : doc.status,
        progress: { ...p, recipients: (p.recipients ?? 0) + recipients, total: p.total + deliveries, pending: p.pending + deliveries, byChannel: plannedCounts(byChannel, p.byChannel) },
      };
    }
    case 'NotificationPlanned':
      return { ...at, status: doc.status === 'COMPLETED' ? 'COMPLETED' : 'DELIVERING', progress: { ...p, recipients: event.data.recipients } };
    case 'NotificationSliced': {
      const slicesPlanned = p.slicesPlanned ?? 0;
      const status = doc.status === 'COMPLETED' ? 'COMPLETED' : slicesPlanned >= event.data.partitions ? 'DELIVERING' : 'PLANNING';
      return { ...at, status, progress: { ...p, slices: event.data.partitions, slicesPlanned } };
    }
    case 'DeliverySlicePlanned': {
      const { recipients, deliveries, byChannel, done } = event.data;
      const slicesPlanned = (p.slicesPlanned ?? 0) + (done ? 1 : 0);
      // Pages of a slice can be projected before the notification's own NotificationSliced event.
      const planned = p.slices !== undefined && slicesPlanned >= p.slices;
      return {
        ...at,
        status: doc.status === 'COMPLETED' ? 'COMPLETED' : planned ? 'DELIVERING' : 'PLANNING',
        progress: {
          ...p,
          recipients: (p.recipients ?? 0) + recipients,
          total: p.total + deliveries.length,
          pending: p.pending + deliveries.length,
          byChannel: plannedCounts(byChannel, p.byChannel),
          slicesPlanned,
        },
      };
    }
    case 'NotificationCompleted': {
      const { reachedSketch: _dropped, ...rest } = p;
      return { ...at, status: 'COMPLETED', completedAt: event.metadata.at, progress: { ...rest, reachedUsers: event.data.reachedUsers, reachedUsersExact: true } };
    }
    case 'DeliveryDispatched':
      return at;
    case 'DeliveryAttempted': {
      const attempts: Record<string, number> = { ...(p.attemptsByProvider ?? {}) };
      for (const a of event.data.deliveries) attempts[a.provider] = (attempts[a.provider] ?? 0) + 1;
      return { ...at, progress: { ...p, attemptsByProvider: attempts } };
    }
    case 'DeliverySucceeded': {
      const hll = p.reachedSketch ? HyperLogLog.fromBase64(p.reachedSketch) : new HyperLogLog();
      for (const d of event.data.deliveries) hll.add(d.userId);
      let duplicated = 0;
      let extra = 0;
      for (const d of event.data.deliveries) {
        const copies = d.possibleCopies ?? (d.possiblyDuplicate ? 2 : 1);
        if (copies > 1 || d.possiblyDuplicate) duplicated++;
        extra += Math.max(0, copies - 1);
      }
      const settled = settle(p, 'succeeded', event.data.deliveries);
      return {
        ...at,
        progress: {
          ...settled,
          reachedSketch: hll.toBase64(),
          reachedUsers: hll.count(),
          reachedUsersExact: false,
          possiblyDuplicated: (p.possiblyDuplicated ?? 0) + duplicated,
          ...(extra > 0 || p.possibleExtraCopies !== undefined ? { possibleExtraCopies: (p.possibleExtraCopies ?? 0) + extra } : {}),
        },
      };
    }
    case 'DeliveryFailed':
      return { ...at, progress: settle(p, 'failed', event.data.deliveries) };
    case 'DeliveryExpired':
      return { ...at, progress: settle(p, 'expired', event.data.deliveries.map((d) => ({ ...d, provider: null }))) };
    case 'DeliveryReceipted': {
      // Each delivery's final receipt is appended once (its own receipt stream decides it).
      const delivered = event.data.deliveries.filter((d) => d.status === 'delivered').length;
      const bounced = event.data.deliveries.filter((d) => d.status === 'bounced').length;
      if (delivered + bounced === 0) return at;
      return { ...at, progress: { ...p, delivered: (p.delivered ?? 0) + delivered, bounced: (p.bounced ?? 0) + bounced } };
    }
    default:
      return unreachable(event);
  }
};

export const notificationsReadModel: ReadModel<NotificationDocument> = {
  name: 'notifications',
  collection: notificationsCollection,
  handles: notificationEvents,
  documentIds: (event) =>
    isOneOf(notificationEvents, event) ? [notificationDocId(event.metadata.tenantId, event.data.notificationId)] : [],
  evolve,
};

export const notifications = readModel(notificationsReadModel);
