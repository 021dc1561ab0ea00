import type { Scope } from './scopes';

/**
 * Events are readonly `{ type, data }` records named in the past tense. Deciders return them;
 * the event store adds metadata (tenant, actor, request id, time) and the stream position.
 *
 * Personal data (names, device addresses) only ever appears as `Sealed`: AES-256-GCM ciphertext
 * under the user's own data key, so destroying that key shreds every copy at once.
 */
export type Event<Type extends string = string, Data extends object = object> = Readonly<{
  type: Type;
  data: Readonly<Data>;
}>;

/** `pd1.<base64url(iv | tag | ciphertext)>`, see platform/src/crypto. */
export type Sealed = string & { readonly __sealed: unique symbol };

export type EventMetadata = Readonly<{
  tenantId: string;
  /** Id of the API key that caused the event, or `system` for the service itself. */
  actor: string;
  requestId: string;
  /** ISO-8601 time the event was decided. */
  at: string;
  /**
   * Set by the event store: the hash of this tenant's previous event (64 zeros for the first),
   * chaining each tenant's history so an edit or a deletion is detectable (see chain.ts).
   */
  prevHash?: string;
}>;

export type RecordedEvent<E extends Event = AnyEvent> = E &
  Readonly<{
    streamName: string;
    /** 0-based revision within the stream. */
    revision: number;
    /** 1-based position in the global log; strictly increasing in commit order. */
    position: number;
    metadata: EventMetadata;
  }>;

export const DEVICE_KINDS = ['ios', 'android', 'email', 'sms'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

export type SealedDevice = Readonly<{ deviceId: string; kind: DeviceKind; address: Sealed }>;
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
export type ApiKeyIssued = Event<
  'ApiKeyIssued',
  { tenantId: string; keyId: string; name: string; scopes: readonly Scope[]; secretHash: string; issuedAt: string }
>;
export type ApiKeyRevoked = Event<'ApiKeyRevoked', { tenantId: string; keyId: string }>;
export type TenantEvent = TenantRegistered | DeliveryDeadlineChanged | ApiKeyIssued | ApiKeyRevoked;

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
export type UserEvent =
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
  }
>;
export type NotificationEvent = NotificationRequested;

export type AnyEvent = OperatorEvent | TenantEvent | UserEvent | GroupEvent | NotificationEvent;
export type AnyEventType = AnyEvent['type'];
