import type { AnyEventType, DeviceKind } from '#schema/events';
import type { CollectionSpec } from '#platform/read-store/port';
import { padPosition } from '../read-model';

/** One step of a delivery, as the timeline shows it. `reason` never carries personal data, not even sealed. */
export type DeliveryStep = Readonly<{
  /** `delivered`, `bounced`, `deferred`: the provider's receipt, after it accepted (succeeded). */
  step: 'requested' | 'dispatched' | 'attempted' | 'succeeded' | 'failed' | 'expired' | 'delivered' | 'bounced' | 'deferred';
  at: string;
  provider?: string;
  latencyMs?: number;
  outcome?: string;
  reason?: string;
  /** Attempts so far that may have reached a provider, where the attempt's record says. */
  possibleCopies?: number;
}>;

export type DeliveryStatus = 'pending' | 'dispatched' | 'succeeded' | 'failed' | 'expired';

/** A stored step's code: the step's initial, upper-case for a receipt. */
export type StepCode = 'd' | 'a' | 's' | 'f' | 'x' | 'D' | 'B' | 'R';

/**
 * A delivery step as stored: `c` the code, `t` the time in milliseconds after the entry's `at`
 * (the request), or as given when it is not an exact ISO time; `p` the provider (absent: none, 1:
 * the previous step's); `l` latencyMs, `o` outcome, `r` reason, `n` possibleCopies, each absent
 * when the step has none. An object, not a tuple: FerretDB stores no nested arrays. A delivery
 * rewrites its entry at each batch of steps, so every byte here is paid per delivery, several times.
 */
export type StoredStep = Readonly<{ c: StepCode; t: number | string; p?: string | 1; l?: number; o?: string; r?: string; n?: number }>;

/**
 * What the timeline stores. User events' entries carry their `summary`; delivery entries carry
 * their steps compactly (`s`) and no summary, no `requested` step, no `actor` or `requestId`
 * when they are the delivery recorder's (`system`, `delivery-<notification>`): the view
 * (`timelineEntry`) gives them back. Entries written before this format have `summary` and
 * `steps` and are read as they are.
 */
export type TimelineEntryDocument = Readonly<{
  id: string;
  tenantId: string;
  userId: string;
  position: number;
  /** An event type, or `Delivery`: one entry per delivery (notification, device) that collects its steps. */
  type: AnyEventType | 'Delivery';
  at: string;
  actor?: string;
  requestId?: string;
  summary?: string;
  // Delivery entries only; they double as the exact record of what was sent (see delivery/).
  notificationId?: string;
  deliveryId?: string;
  deviceId?: string;
  channel?: DeviceKind;
  status?: DeliveryStatus;
  provider?: string | null;
  possiblyDuplicate?: boolean;
  /** Copies that may have reached the device (the accepted one included), when more than one may have. */
  possibleCopies?: number;
  /** The provider's last word after accepting (older entries; now the last receipt step says it). */
  receipt?: 'delivered' | 'bounced' | 'deferred';
  s?: readonly StoredStep[];
  /** Older entries only. */
  steps?: readonly DeliveryStep[];
}>;

/** One entry as the timeline shows it: every step, the summary, who and which request. */
export type TimelineEntry = Readonly<
  Omit<TimelineEntryDocument, 's' | 'steps' | 'summary' | 'actor' | 'requestId'> & {
    actor: string;
    requestId: string;
    summary: string;
    steps?: readonly DeliveryStep[];
  }
>;

export const TIMELINE = 'timeline';

/**
 * A user's entries are listed by the ids' own order (`idPrefix`): a delivery's entry is then one
 * index fewer to write (measured: 12,000 against 18,500 writes a second, docs/benchmarks.md).
 */
export const timelineCollection: CollectionSpec = { name: TIMELINE, indexes: [['notificationId', 'status']], idPrefix: ['tenantId', 'userId'] };

/** Ids sort in log order within a user, so the default id order is chronological. */
export const timelineEntryId = (tenantId: string, userId: string, position: number): string =>
  `${tenantId}:${userId}:${padPosition(position)}`;

/** The user of an entry id made by `timelineEntryId` for this tenant. */
export const timelineUserId = (tenantId: string, id: string): string => id.slice(tenantId.length + 1, id.length - 17);

/**
 * What stays of an erased user in the timeline: the position of the shredding, so that an outcome
 * of a send requested before it (answered after it) creates no entry. Its `userId` is not the
 * user's but `~erased` for every mark (its id begins with the tenant and that, as `idPrefix`
 * requires), so no listing returns it and no purge removes it; `~` is never part of an id, so it
 * cannot collide with an entry. (Marks written before 2026-12-05 hold `~erased:<user>`: listed by
 * nobody either.)
 */
export const erasureMarkId = (tenantId: string, userId: string): string => `${tenantId}:~erased:${userId}`;
export const ERASURE_MARK_USER = '~erased';

/** A delivery's entry sorts with the request that caused it, one per device. */
export const deliveryEntryId = (tenantId: string, userId: string, requestedPosition: number, deviceId: string): string =>
  `${timelineEntryId(tenantId, userId, requestedPosition)}:${deviceId}`;
