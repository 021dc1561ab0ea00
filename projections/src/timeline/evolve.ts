import type { DeliveryEvent, Ineligibility, RecordedEvent, SealedDevice, UserEvent } from '#schema/events';
import { eventTypes, isOneOf, readModel, unreachable, type ReadModel } from '../read-model';
import { deliveryEntryId, erasureMarkId, ERASURE_MARK_USER, timelineCollection, timelineEntryId, timelineUserId, type DeliveryStep, type TimelineEntryDocument } from './document';
import { DELIVERY_ACTOR, deliveryRequestId, encodeStep, receiptOf, storedSteps } from './view';

export const timelineEvents = eventTypes<UserEvent['type'] | 'NotificationRequested'>({
  UserRegistered: true,
  UserRenamed: true,
  DeviceAdded: true,
  DeviceChanged: true,
  DeviceRemoved: true,
  ConsentPeriodChanged: true,
  OptInChanged: true,
  UserJoinedGroup: true,
  UserLeftGroup: true,
  ConsentExpired: true,
  UserErasureRequested: true,
  UserDataShredded: true,
  DeviceInvalidated: true,
  NotificationRequested: true,
});

// DeliveryDispatched (the send intent) and DeliverySlicePlanned (the plan) are left to the log: the
// worker reads them back after a crash, and a ledger write per delivery for them would double the
// projection's work.
export const deliveryEvents = eventTypes<Exclude<DeliveryEvent['type'], 'DeliveryDispatched' | 'DeliverySlicePlanned'>>({
  DeliveryAttempted: true,
  DeliverySucceeded: true,
  DeliveryFailed: true,
  DeliveryExpired: true,
  DeliveryReceipted: true,
});
type DeliveryRecorded = Extract<RecordedEvent, { type: (typeof deliveryEvents)[number] }>;
type DeliveryEntry = DeliveryRecorded['data']['deliveries'][number];

type TimelineEvent = Extract<RecordedEvent, { type: (typeof timelineEvents)[number] }>;

const device = (d: SealedDevice): string => `${d.deviceId} (${d.kind})`;
const list = (items: readonly string[]): string => (items.length === 0 ? 'none' : items.join(', '));

/** Ids, kinds, flags and times only: names and addresses are personal even when sealed. */
export const summarize = (event: TimelineEvent): string => {
  switch (event.type) {
    case 'UserRegistered': {
      const { devices, groupIds, optIn, consent } = event.data;
      return (
        `registered, opted ${optIn ? 'in' : 'out'}, devices: ${list(devices.map(device))}, ` +
        `groups: ${list([...new Set(groupIds)])}, consent ${consent.start} – ${consent.end}`
      );
    }
    case 'UserRenamed':
      return 'name changed';
    case 'DeviceAdded':
      return `device ${device(event.data.device)} added`;
    case 'DeviceChanged':
      return `device ${device(event.data.device)} changed`;
    case 'DeviceRemoved':
      return `device ${event.data.deviceId} removed`;
    case 'ConsentPeriodChanged':
      return `consent period set to ${event.data.consent.start} – ${event.data.consent.end}`;
    case 'OptInChanged':
      return event.data.optIn ? 'opted in' : 'opted out';
    case 'UserJoinedGroup':
      return `joined group ${event.data.groupId}`;
    case 'UserLeftGroup':
      return `left group ${event.data.groupId}`;
    case 'ConsentExpired':
      return `consent period ended at ${event.data.consentEnd}`;
    case 'UserErasureRequested':
      return 'erasure requested';
    case 'UserDataShredded':
      return 'data shredded';
    case 'DeviceInvalidated':
      return `device ${event.data.deviceId} invalidated by ${event.data.provider}: ${event.data.reason}`;
    case 'NotificationRequested':
      return `notification ${event.data.notificationId} requested`;
    default:
      return unreachable(event);
  }
};

/** A group target adds no entries: a group can hold 50M users. Shredding leaves only its mark. */
const usersConcerned = (event: TimelineEvent): readonly string[] => {
  if (event.type === 'UserDataShredded') return [];
  if (event.type !== 'NotificationRequested') return [event.data.userId];
  const { target } = event.data;
  return target.kind === 'users' ? [...new Set(target.userIds)] : [];
};

type Peek = (id: string) => TimelineEntryDocument | null;

/** The user was erased after this request: an outcome of it arriving now must not bring them back. */
const erasedSince = (peek: Peek, tenantId: string, userId: string, requestedPosition: number): boolean => {
  const mark = peek(erasureMarkId(tenantId, userId));
  return mark !== null && mark.position > requestedPosition;
};

const isErasureMark = (id: string): boolean => id.includes(':~erased:');

/** Shredding purges the user's whole timeline (see purge); the mark keeps only where that happened. */
const evolveMark = (doc: TimelineEntryDocument | null, event: RecordedEvent): TimelineEntryDocument | null => {
  if (event.type !== 'UserDataShredded') return doc;
  const { tenantId, actor, requestId, at } = event.metadata;
  return {
    id: erasureMarkId(tenantId, event.data.userId),
    tenantId,
    userId: ERASURE_MARK_USER,
    position: event.position,
    type: event.type,
    at,
    actor,
    requestId,
    summary: summarize(event),
  };
};

/** Entries of user events never change once written; `id` names the user, since one request lists several. */
const evolveUserEvent = (doc: TimelineEntryDocument | null, event: TimelineEvent, id: string, peek: Peek): TimelineEntryDocument | null => {
  if (doc) return doc;
  const { tenantId, actor, requestId, at } = event.metadata;
  if (event.type === 'DeviceInvalidated' && event.data.requestedPosition !== undefined && erasedSince(peek, tenantId, event.data.userId, event.data.requestedPosition)) {
    return null;
  }
  return {
    id,
    tenantId,
    userId: timelineUserId(tenantId, id),
    position: event.position,
    type: event.type,
    at,
    actor,
    requestId,
    summary: summarize(event),
  };
};

/** Each delivery event holds a batch; index it once per event rather than search it per entry. */
const batchIndex = new WeakMap<object, Readonly<{ entries: Map<string, DeliveryEntry>; ids: readonly string[] }>>();
const indexOf = (event: DeliveryRecorded): Readonly<{ entries: Map<string, DeliveryEntry>; ids: readonly string[] }> => {
  let index = batchIndex.get(event);
  if (!index) {
    const entries = new Map<string, DeliveryEntry>();
    const marks = new Set<string>();
    const { tenantId } = event.metadata;
    const { requestedPosition } = event.data;
    for (const d of event.data.deliveries as readonly DeliveryEntry[]) {
      entries.set(deliveryEntryId(tenantId, d.userId, requestedPosition, d.deviceId), d);
      marks.add(erasureMarkId(tenantId, d.userId));
    }
    // The users' erasure marks are read with the entries: a missing entry may have been purged.
    index = { entries, ids: [...entries.keys(), ...marks] };
    batchIndex.set(event, index);
  }
  return index;
};
const entriesOf = (event: DeliveryRecorded): Map<string, DeliveryEntry> => indexOf(event).entries;

const stepOf = (event: DeliveryRecorded, d: DeliveryEntry): DeliveryStep => {
  const at = event.metadata.at;
  const e = d as DeliveryEntry & { provider?: string | null; latencyMs?: number; outcome?: string; reason?: string; possibleCopies?: number };
  switch (event.type) {
    case 'DeliveryAttempted':
      return {
        step: 'attempted',
        at,
        provider: e.provider!,
        latencyMs: e.latencyMs!,
        outcome: e.outcome!,
        ...(e.reason ? { reason: e.reason } : {}),
        ...(e.possibleCopies !== undefined ? { possibleCopies: e.possibleCopies } : {}),
      };
    case 'DeliverySucceeded':
      return { step: 'succeeded', at, provider: e.provider! };
    case 'DeliveryFailed':
      return { step: 'failed', at, ...(e.provider ? { provider: e.provider } : {}), reason: e.reason! };
    case 'DeliveryExpired':
      return { step: 'expired', at, reason: e.reason! };
    case 'DeliveryReceipted': {
      const r = d as DeliveryEntry & { status: 'delivered' | 'bounced' | 'deferred'; providerStatus: string; errorCode?: string; at: string };
      return { step: r.status, at: r.at, provider: e.provider!, outcome: r.providerStatus, ...(r.errorCode ? { reason: r.errorCode } : {}) };
    }
    default:
      return unreachable(event);
  }
};

const TERMINAL = new Set(['succeeded', 'failed', 'expired']);

/**
 * A DeliveryFailed reason saying the user was gone at send time: the code delivery/src/eligibility.ts
 * records, or the text logs written before the codes hold ('user erased', 'user erased or unknown').
 */
const ERASED: Ineligibility = 'erased';
const userGone = (reason: string | undefined): boolean => reason === ERASED || /^user erased/.test(reason ?? '');

/**
 * One entry per delivery, gathering its steps after the request (attempted..., one terminal,
 * receipts), stored compactly (see StoredStep); the view (timelineEntry) adds the request, the
 * summary and the recorder's actor. An entry of the older format is rewritten in the new one.
 */
const evolveDelivery = (doc: TimelineEntryDocument | null, event: DeliveryRecorded, id: string, peek: Peek): TimelineEntryDocument | null => {
  const d = entriesOf(event).get(id);
  if (!d) return doc;
  const { tenantId, actor, requestId } = event.metadata;
  if (!doc) {
    // An erased user gets no new entry: the delivery only failed because they were gone, or it
    // was sent just before the erasure and answered after it (its entry was purged).
    if (event.type === 'DeliveryFailed' && userGone((d as { reason?: string }).reason)) return null;
    if (erasedSince(peek, tenantId, d.userId, event.data.requestedPosition)) return null;
  }
  const { notificationId } = event.data;
  const base: TimelineEntryDocument = doc
    ? compact(doc)
    : {
        id,
        tenantId,
        userId: d.userId,
        position: event.data.requestedPosition,
        type: 'Delivery',
        at: event.data.requestedAt,
        ...(actor !== DELIVERY_ACTOR ? { actor } : {}),
        ...(requestId !== deliveryRequestId(notificationId) ? { requestId } : {}),
        notificationId,
        deliveryId: d.deliveryId,
        deviceId: d.deviceId,
        channel: d.channel,
        status: 'pending',
        s: [],
      };
  const steps = base.s ?? [];
  if (event.type === 'DeliveryReceipted') {
    // A receipt follows an acceptance; one for a delivery without an entry (erased, or expired from
    // the read model) creates none.
    if (!doc) return null;
    // Final receipts come once (one receipt stream per delivery); a deferral never overrides one.
    const receipt = receiptOf(steps);
    if (receipt === 'delivered' || receipt === 'bounced') return doc;
    return { ...base, s: [...steps, encodeStep(stepOf(event, d), base.at, steps)] };
  }
  // A terminal status is final: a late duplicate record cannot reopen it.
  if (base.status && TERMINAL.has(base.status) && event.type !== 'DeliveryAttempted') return doc;
  const step = stepOf(event, d);
  const e = d as DeliveryEntry & { provider?: string | null; possiblyDuplicate?: boolean; possibleCopies?: number };
  // An older success carries only the flag: at least two copies.
  const copies = Math.max(base.possibleCopies ?? 0, e.possibleCopies ?? (event.type === 'DeliverySucceeded' && e.possiblyDuplicate ? 2 : 0));
  return {
    ...base,
    s: [...steps, encodeStep(step, base.at, steps)],
    status: event.type === 'DeliveryAttempted' ? base.status : (step.step as 'succeeded' | 'failed' | 'expired'),
    ...(e.provider ? { provider: e.provider } : {}),
    ...(e.possiblyDuplicate || base.possiblyDuplicate || copies > 1 ? { possiblyDuplicate: true } : {}),
    ...(copies > 1 ? { possibleCopies: copies } : {}),
  };
};

/** An entry of the format before StoredStep, in it: the summary and the request step are derived now. */
const compact = (doc: TimelineEntryDocument): TimelineEntryDocument => {
  if (doc.s) return doc;
  const { steps: _steps, summary: _summary, receipt: _receipt, ...rest } = doc;
  return { ...rest, s: storedSteps(doc) };
};

export const evolve = (doc: TimelineEntryDocument | null, event: RecordedEvent, id: string, peek: Peek = () => null): TimelineEntryDocument | null => {
  if (isErasureMark(id)) return evolveMark(doc, event);
  if (isOneOf(deliveryEvents, event)) return evolveDelivery(doc, event, id, peek);
  if (isOneOf(timelineEvents, event)) return evolveUserEvent(doc, event, id, peek);
  return doc;
};

export const timelineReadModel: ReadModel<TimelineEntryDocument> = {
  name: 'timeline',
  collection: timelineCollection,
  handles: [...timelineEvents, ...deliveryEvents],
  documentIds: (event) => {
    if (isOneOf(deliveryEvents, event)) return indexOf(event).ids;
    if (!isOneOf(timelineEvents, event)) return [];
    const { tenantId } = event.metadata;
    const entries = usersConcerned(event).map((userId) => timelineEntryId(tenantId, userId, event.position));
    return event.type === 'UserDataShredded' || event.type === 'DeviceInvalidated' ? [...entries, erasureMarkId(tenantId, event.data.userId)] : entries;
  },
  evolve,
  purge: (event) =>
    event.type === 'UserDataShredded' ? { tenantId: event.metadata.tenantId, userId: event.data.userId } : null,
};

export const timeline = readModel(timelineReadModel);
