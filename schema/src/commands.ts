import type { Admission, ChannelCounts, ConsentPeriod, DeliveryRef, NotificationTarget, ReceiptStatus, Sealed, SealedDevice } from './events';
import type { IntegrationSpec } from './integrations';
import type { Scope } from './scopes';

/**
 * Commands are plain readonly records. Every id and every sealed (encrypted) value is made by the
 * caller before `decide`, so deciders stay pure: same command + same state = same events.
 */
export type Command<Type extends string = string, Data extends object = object> = Readonly<{
  type: Type;
  data: Readonly<Data>;
  /** The decision time; deciders never read a clock. */
  now: Date;
}>;

// ---- operator ------------------------------------------------------------------------------
export type IssueOperatorKey = Command<'IssueOperatorKey', { keyId: string; secretHash: string }>;
export type RevokeOperatorKey = Command<'RevokeOperatorKey', { keyId: string }>;
export type OperatorCommand = IssueOperatorKey | RevokeOperatorKey;

// ---- tenant --------------------------------------------------------------------------------
export type RegisterTenant = Command<
  'RegisterTenant',
  {
    tenantId: string;
    name: string;
    deliveryDeadlineMinutes: number;
    /** The tenant's first key, issued in the same decision with the `admin` scope. */
    adminKey?: Readonly<{ keyId: string; secretHash: string }>;
  }
>;
export type ChangeDeliveryDeadline = Command<'ChangeDeliveryDeadline', { deliveryDeadlineMinutes: number }>;
export type ChangeDeliveryHistory = Command<'ChangeDeliveryHistory', { deliveryHistoryDays: number }>;
export type IssueApiKey = Command<
  'IssueApiKey',
  { keyId: string; name: string; scopes: readonly Scope[]; secretHash: string }
>;
export type RevokeApiKey = Command<'RevokeApiKey', { keyId: string }>;
export type TenantCommand = RegisterTenant | ChangeDeliveryDeadline | ChangeDeliveryHistory | IssueApiKey | RevokeApiKey;

// ---- user ----------------------------------------------------------------------------------
export type RegisterUser = Command<
  'RegisterUser',
  {
    userId: string;
    name: Sealed;
    devices: readonly SealedDevice[];
    consent: ConsentPeriod;
    optIn: boolean;
    /** Groups the user joins; each must exist (checked by the handler, which can read groups). */
    groupIds: readonly string[];
  }
>;
/** Changes any subset of a user's fields in one atomic step; absent fields stay as they are. */
export type UpdateUser = Command<
  'UpdateUser',
  {
    userId: string;
    name?: Sealed;
    consent?: ConsentPeriod;
    optIn?: boolean;
    /** The full new set of groups, replacing the old one. */
    groupIds?: readonly string[];
  }
>;
export type AddDevice = Command<'AddDevice', { userId: string; device: SealedDevice }>;
export type ChangeDevice = Command<'ChangeDevice', { userId: string; device: SealedDevice }>;
export type RemoveDevice = Command<'RemoveDevice', { userId: string; deviceId: string }>;
export type JoinGroup = Command<'JoinGroup', { userId: string; groupId: string }>;
export type LeaveGroup = Command<'LeaveGroup', { userId: string; groupId: string }>;
/** Appends ConsentExpired when the consent period has ended by `now`; otherwise nothing. */
export type ExpireConsent = Command<'ExpireConsent', { userId: string }>;
export type RequestErasure = Command<'RequestErasure', { userId: string }>;
/** Records that the data key is gone; only valid while an erasure is under way. */
export type RecordShredding = Command<'RecordShredding', { userId: string }>;
export type UserCommand =
  | RegisterUser
  | ExpireConsent
  | RequestErasure
  | RecordShredding
  | UpdateUser
  | AddDevice
  | ChangeDevice
  | RemoveDevice
  | JoinGroup
  | LeaveGroup;

// ---- group ---------------------------------------------------------------------------------
export type CreateGroup = Command<'CreateGroup', { groupId: string; name: string }>;
export type RenameGroup = Command<'RenameGroup', { groupId: string; name: string }>;
export type GroupCommand = CreateGroup | RenameGroup;

// ---- notification --------------------------------------------------------------------------
export type RequestNotification = Command<
  'RequestNotification',
  {
    notificationId: string;
    text: string;
    target: NotificationTarget;
    idempotencyKey: string | null;
    requestHash: string;
    /** The tenant's deadline at request time, read by the handler from the tenant stream. */
    deliveryDeadlineMinutes: number;
    admission?: Admission;
  }
>;
export type RecordPlanningProgress = Command<
  'RecordPlanningProgress',
  { notificationId: string; cursor: string | null; recipients: number; deliveries: number; byChannel: ChannelCounts; skipped: Readonly<Record<string, number>> }
>;
export type FinishPlanning = Command<'FinishPlanning', { notificationId: string }>;
export type CompleteNotification = Command<
  'CompleteNotification',
  { notificationId: string; succeeded: number; failed: number; expired: number; reachedUsers: number }
>;
export type SliceNotification = Command<'SliceNotification', { notificationId: string; partitions: number }>;
export type NotificationCommand = RequestNotification | RecordPlanningProgress | FinishPlanning | SliceNotification | CompleteNotification;

// ---- provider integrations -----------------------------------------------------------------
export type ConfigureProvider = Command<
  'ConfigureProvider',
  { owner: string; spec: IntegrationSpec; credentials: Sealed; fingerprint: string; hint: string }
>;
export type RemoveProvider = Command<'RemoveProvider', { owner: string; name: string }>;
/** A provider refused the credentials with this fingerprint; a stale report (since replaced) changes nothing. */
export type RejectProviderCredentials = Command<'RejectProviderCredentials', { owner: string; name: string; fingerprint: string; code: string }>;
export type IntegrationCommand = ConfigureProvider | RemoveProvider | RejectProviderCredentials;

// ---- receipts ------------------------------------------------------------------------------
/** What a provider said about a delivery it had accepted (a verified callback). */
export type RecordReceipt = Command<
  'RecordReceipt',
  {
    tenantId: string;
    notificationId: string;
    requestedPosition: number;
    requestedAt: string;
    delivery: DeliveryRef;
    provider: string;
    status: ReceiptStatus;
    providerStatus: string;
    errorCode: string | null;
  }
>;
