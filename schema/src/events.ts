import type { Scope } from './scopes';

import type { Event, EventMetadata, RecordedEvent } from '#platform/event-store/event';
import type { Sealed } from '#platform/crypto/personal-data';
import type { IntegrationEndpoint, IntegrationSettings, Vendor } from './integrations';
import type { WebhookEvent } from './webhooks';

/**
 * The domain's events. Personal data (names, device addresses) only ever appears as `Sealed`:
 * AES-256-GCM ciphertext under the user's own data key, so destroying that key shreds every copy
 * at once.
 */
export type { Event, EventMetadata, RecordedEvent, Sealed };

export const DEVICE_KINDS = ['ios', 'android', 'email', 'sms'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

export type SealedDevice = Readonly<{
  deviceId: string;
  kind: DeviceKind;
  address: Sealed;
  /**
   * A keyed fingerprint of the normalized address (an HMAC under a key derived from the user's
   * data key): equal addresses of one user and kind have equal fingerprints, so registration and
   * the fan-out keep one device per address; it means nothing once the key is destroyed. Absent
   * on devices recorded before fingerprints.
   */
  fingerprint?: string;
  /** Set once a provider rejects the device for good; the fan-out skips it. A change clears it. */
  invalid?: boolean;
}>;
/**
 * Why someone may not receive (delivery/src/eligibility.ts decides it): the keys of a plan's
 * skipped counts and the reason of a DeliveryFailed entry the service refused to send.
 */
export type Ineligibility =
  /** Fan-out: a listed user id has no document. */
  | 'unknown-user'
  /** Send time: the document is gone since fan-out, or the data key is destroyed. */
  | 'erased'
  | 'opted-out'
  | 'outside-consent'
  /** Fan-out: none of the user's devices may be sent to. */
  | 'no-valid-device'
  /** Send time: the planned device is no longer the user's. */
  | 'device-removed'
  /** Send time: a provider rejected the planned device for good since fan-out. */
  | 'device-invalid';

export type ConsentPeriod = Readonly<{ start: string; end: string }>;

// ---- operator ------------------------------------------------------------------------------
export type OperatorKeyIssued = Event<'OperatorKeyIssued', { keyId: string; secretHash: string }>;
export type OperatorKeyRevoked = Event<'OperatorKeyRevoked', { keyId: string }>;
export type OperatorEvent = OperatorKeyIssued | OperatorKeyRevoked;

// ---- tenant --------------------------------------------------------------------------------
export type TenantRegistered = Event<
  'TenantRegistered',
  { tenantId: string; name: string; deliveryDeadlineMinutes: number }
>;
export type DeliveryDeadlineChanged = Event<
  'DeliveryDeadlineChanged',
  { tenantId: string; deliveryDeadlineMinutes: number }
>;
/** How long a tenant's per-delivery steps stay in the read models; counts and the log stay. */
export type DeliveryHistoryChanged = Event<
  'DeliveryHistoryChanged',
  { tenantId: string; deliveryHistoryDays: number }
>;
export type ApiKeyIssued = Event<
  'ApiKeyIssued',
  { tenantId: string; keyId: string; name: string; scopes: readonly Scope[]; secretHash: string; issuedAt: string }
>;
export type ApiKeyRevoked = Event<'ApiKeyRevoked', { tenantId: string; keyId: string }>;
export type TenantEvent = TenantRegistered | DeliveryDeadlineChanged | DeliveryHistoryChanged | ApiKeyIssued | ApiKeyRevoked;

// ---- user ----------------------------------------------------------------------------------
export type UserRegistered = Event<
  'UserRegistered',
  {
    userId: string;
    name: Sealed;
    devices: readonly SealedDevice[];
    consent: ConsentPeriod;
    optIn: boolean;
    groupIds: readonly string[];
  }
>;
export type UserRenamed = Event<'UserRenamed', { userId: string; name: Sealed }>;
export type DeviceAdded = Event<'DeviceAdded', { userId: string; device: SealedDevice }>;
export type DeviceChanged = Event<'DeviceChanged', { userId: string; device: SealedDevice }>;
export type DeviceRemoved = Event<'DeviceRemoved', { userId: string; deviceId: string }>;
export type ConsentPeriodChanged = Event<'ConsentPeriodChanged', { userId: string; consent: ConsentPeriod }>;
export type OptInChanged = Event<'OptInChanged', { userId: string; optIn: boolean }>;
export type UserJoinedGroup = Event<'UserJoinedGroup', { userId: string; groupId: string }>;
export type UserLeftGroup = Event<'UserLeftGroup', { userId: string; groupId: string }>;
/** The consent period ended: the user's data is destroyed next. No personal data. */
export type ConsentExpired = Event<'ConsentExpired', { userId: string; consentEnd: string }>;
/** The tenant asked to forget the user (right to erasure): same path as an expiry. */
export type UserErasureRequested = Event<'UserErasureRequested', { userId: string }>;
export type ErasureReason = 'consent-expired' | 'erasure-requested';
/** The user's data key is destroyed: every sealed value of the user is unreadable for good. */
export type UserDataShredded = Event<
  'UserDataShredded',
  { userId: string; reason: ErasureReason; groupIds: readonly string[] }
>;
/** A provider rejected the device for good (bad or unregistered token, invalid number). */
export type DeviceInvalidated = Event<
  'DeviceInvalidated',
  // requestedPosition: the request whose send found the device invalid (absent in older events).
  { userId: string; deviceId: string; provider: string; reason: string; requestedPosition?: number }
>;
export type UserEvent =
  | DeviceInvalidated
  | UserRegistered
  | UserRenamed
  | DeviceAdded
  | DeviceChanged
  | DeviceRemoved
  | ConsentPeriodChanged
  | OptInChanged
  | UserJoinedGroup
  | UserLeftGroup
  | ConsentExpired
  | UserErasureRequested
  | UserDataShredded;

// ---- group ---------------------------------------------------------------------------------
export type GroupCreated = Event<'GroupCreated', { groupId: string; name: string }>;
export type GroupRenamed = Event<'GroupRenamed', { groupId: string; name: string }>;
export type GroupEvent = GroupCreated | GroupRenamed;

// ---- notification --------------------------------------------------------------------------
export type NotificationTarget =
  | Readonly<{ kind: 'group'; groupId: string }>
  | Readonly<{ kind: 'users'; userIds: readonly string[] }>;

export type NotificationRequested = Event<
  'NotificationRequested',
  {
    notificationId: string;
    text: string;
    target: NotificationTarget;
    idempotencyKey: string | null;
    /** sha256 of the canonical request body: a retry with the same key must carry the same hash. */
    requestHash: string;
    requestedAt: string;
    deadline: string;
    /** What admission estimated when the send was accepted (absent: no estimate was made). */
    admission?: Admission;
  }
>;

export type Admission = Readonly<{
  recipients: number;
  deliveries: number;
  byChannel: readonly Readonly<{ channel: DeviceKind; deliveries: number; capacityPerSecond: number; seconds: number; ahead?: number }>[];
  /** Deliveries of sends already queued or in flight whose deadline comes first (every tenant's). */
  ahead?: number;
  /** Sends accepted before that fit and would not have, had this one gone ahead of them (absent before it was counted). */
  delays?: number;
  seconds: number;
  deadlineSeconds: number;
  /** False: the send is delivered best effort, behind every send that fit. */
  fitsDeadline: boolean;
}>;
export type ChannelCounts = Readonly<Partial<Record<DeviceKind, number>>>;

/** One page of the fan-out is on the job bus; `cursor` resumes planning after a crash. */
export type NotificationPlanningProgressed = Event<
  'NotificationPlanningProgressed',
  {
    notificationId: string;
    cursor: string | null;
    recipients: number;
    deliveries: number;
    byChannel: ChannelCounts;
    /** Users left out in this page, by Ineligibility reason. */
    skipped: Readonly<Record<string, number>>;
  }
>;
/** The fan-out is complete: the totals every delivery count is measured against. */
export type NotificationPlanned = Event<
  'NotificationPlanned',
  {
    notificationId: string;
    recipients: number;
    deliveries: number;
    byChannel: ChannelCounts;
    /** Users left out at fan-out, by Ineligibility reason. */
    skipped: Readonly<Record<string, number>>;
  }
>;
/** Every delivery reached a terminal state. `reachedUsers` is exact (users with one success or more). */
export type NotificationCompleted = Event<
  'NotificationCompleted',
  { notificationId: string; succeeded: number; failed: number; expired: number; reachedUsers: number }
>;
/**
 * The send is cut into one slice per bus partition, each planned by the worker that owns the
 * partition (DeliverySlicePlanned in its deliveries stream): every notification's planning
 * starts at once, in parallel, and no worker plans ahead of a tighter deadline.
 */
export type NotificationSliced = Event<'NotificationSliced', { notificationId: string; partitions: number }>;
export type NotificationEvent = NotificationRequested | NotificationPlanningProgressed | NotificationPlanned | NotificationSliced | NotificationCompleted;

// ---- deliveries ----------------------------------------------------------------------------
// Delivery events are batched: one event holds many deliveries of one notification, so the log
// takes ~1 append per few hundred deliveries (see docs/design.md, capacity plan). Each delivery
// appears in exactly one terminal entry (succeeded, failed or expired).

export type DeliveryRef = Readonly<{ deliveryId: string; userId: string; deviceId: string; channel: DeviceKind }>;

type DeliveryBatch<Entry> = Readonly<{
  notificationId: string;
  /** Position of the NotificationRequested event: orders the entries in each user's timeline. */
  requestedPosition: number;
  requestedAt: string;
  deliveries: readonly Entry[];
}>;

/**
 * One page of a slice planned by the partition's owner: the deliveries it will send (the plan a
 * successor resumes from after a crash), the page's counts, and where the next page starts.
 */
export type DeliverySlicePlanned = Event<
  'DeliverySlicePlanned',
  DeliveryBatch<DeliveryRef> &
    Readonly<{
      partition: number;
      /** Where the next page starts; null with `done`. */
      cursor: string | null;
      /** The slice is fully planned. */
      done: boolean;
      recipients: number;
      byChannel: ChannelCounts;
      skipped: Readonly<Record<string, number>>;
    }>
>;
/** About to be handed to providers: a crash before their outcome marks them possibly duplicated. */
export type DeliveryDispatched = Event<'DeliveryDispatched', DeliveryBatch<DeliveryRef>>;
/**
 * `possibleCopies`: how many attempts of the delivery so far may have reached a provider (this one
 * included): accepted ones, ones whose answer was lost (a call given up after its request was
 * written, a connection reset) and one lost in a crash; absent when that is 0, or 1 on a plain
 * first acceptance. `possiblyDuplicate`: an earlier attempt may have reached a provider (kept for
 * readers of older events, which have no count).
 */
export type DeliveryAttempted = Event<
  'DeliveryAttempted',
  DeliveryBatch<
    DeliveryRef &
      Readonly<{ provider: string; latencyMs: number; outcome: 'accepted' | 'permanent' | 'transient'; reason?: string; possiblyDuplicate?: boolean; possibleCopies?: number }>
  >
>;
/**
 * `possibleCopies`: copies that may have reached the device, the accepted one included (present
 * when above 1, with `possiblyDuplicate: true`); older events carry only `possiblyDuplicate`, which
 * reads as 2.
 */
export type DeliverySucceeded = Event<'DeliverySucceeded', DeliveryBatch<DeliveryRef & Readonly<{ provider: string; possiblyDuplicate?: boolean; possibleCopies?: number }>>>;
export type DeliveryFailed = Event<'DeliveryFailed', DeliveryBatch<DeliveryRef & Readonly<{ provider: string | null; reason: string }>>>;
export type DeliveryExpired = Event<'DeliveryExpired', DeliveryBatch<DeliveryRef & Readonly<{ reason: string }>>>;
/**
 * What a provider reported after accepting (Twilio status callbacks, SendGrid's event webhook):
 * `delivered` reached the device or mailbox, `bounced` will not (undelivered, failed, bounce,
 * dropped), `deferred` is still being tried by the provider. Codes only, never provider text.
 */
export type ReceiptStatus = 'delivered' | 'bounced' | 'deferred';
export type DeliveryReceipted = Event<
  'DeliveryReceipted',
  DeliveryBatch<DeliveryRef & Readonly<{ provider: string; status: ReceiptStatus; providerStatus: string; errorCode?: string; at: string }>>
>;
export type DeliveryEvent = DeliverySlicePlanned | DeliveryDispatched | DeliveryAttempted | DeliverySucceeded | DeliveryFailed | DeliveryExpired | DeliveryReceipted;

// ---- providers -----------------------------------------------------------------------------
/** A breaker of one integration changed (`owner`: its tenant or `platform`; absent in events before integrations). */
export type ProviderCircuitChanged = Event<
  'ProviderCircuitChanged',
  { provider: string; channel: DeviceKind; state: 'open' | 'half-open' | 'closed'; reason: string; owner?: string; lastFailure?: string }
>;
export type ProviderEvent = ProviderCircuitChanged;

// ---- provider integrations ----------------------------------------------------------------
// One stream per owner (a tenant, or the platform's defaults). The secret travels only sealed
// with the owner's data key; `fingerprint` (SHA-256 prefix) and `hint` (last characters) let an
// admin tell which credential is in use.

export type ProviderConfigured = Event<
  'ProviderConfigured',
  {
    owner: string;
    name: string;
    vendor: Vendor;
    channel: DeviceKind;
    priority: number;
    settings: IntegrationSettings;
    quotaPerSecond: number | null;
    endpoint: IntegrationEndpoint | null;
    ca: string | null;
    credentials: Sealed;
    fingerprint: string;
    hint: string;
  }
>;
export type ProviderRemoved = Event<'ProviderRemoved', { owner: string; name: string }>;
/** The provider refused the integration's credentials: it is skipped until configured again. */
export type ProviderCredentialsRejected = Event<'ProviderCredentialsRejected', { owner: string; name: string; fingerprint: string; code: string }>;
export type IntegrationEvent = ProviderConfigured | ProviderRemoved | ProviderCredentialsRejected;

export type AnyEvent = OperatorEvent | TenantEvent | UserEvent | GroupEvent | NotificationEvent | DeliveryEvent | ProviderEvent | IntegrationEvent | WebhookEvent;
export type AnyEventType = AnyEvent['type'];

/** Registers the domain's events with the event store's ports (a distinct name: the module has its own AnyEvent). */
type DomainEvent = AnyEvent;
declare module '#platform/event-store/event' {
  interface EventRegistry {
    events: DomainEvent;
  }
}
