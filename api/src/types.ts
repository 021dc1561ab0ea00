import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import type { ClassType } from 'type-graphql';
import { DeviceKindEnum, NotificationStatusEnum, ScopeEnum } from './enums';
import type { DeviceKind } from '#schema/events';
import type { Scope } from '#schema/scopes';

// ---- paging --------------------------------------------------------------------------------
@ObjectType()
export class PageInfo {
  @Field(() => String, { nullable: true, description: 'Pass as `after` to get the next page.' })
  endCursor!: string | null;

  @Field()
  hasNextPage!: boolean;
}

export const Connection = <T extends object>(node: ClassType<T>, name: string) => {
  @ObjectType(`${name}Connection`)
  class ConnectionClass {
    @Field(() => [node])
    nodes!: T[];

    @Field(() => PageInfo)
    pageInfo!: PageInfo;
  }
  return ConnectionClass;
};

// ---- principal, tenants, keys --------------------------------------------------------------
@ObjectType({ description: 'The caller, as identified by its API key.' })
export class Principal {
  @Field({ description: '"operator" or "tenant".' })
  kind!: string;

  @Field(() => ID, { nullable: true })
  tenantId!: string | null;

  @Field(() => ID)
  keyId!: string;

  @Field(() => [ScopeEnum])
  scopes!: Scope[];
}

@ObjectType()
export class ApiKey {
  @Field(() => ID)
  keyId!: string;

  @Field()
  name!: string;

  @Field(() => [ScopeEnum])
  scopes!: Scope[];

  @Field()
  issuedAt!: Date;

  @Field()
  revoked!: boolean;
}

@ObjectType({ description: 'A new API key. The token is shown once and stored only as a hash.' })
export class IssuedApiKey {
  @Field(() => ID)
  keyId!: string;

  @Field()
  name!: string;

  @Field(() => [ScopeEnum])
  scopes!: Scope[];

  @Field({ description: 'Send as "Authorization: Bearer <token>". Not retrievable later.' })
  token!: string;
}

@ObjectType()
export class Tenant {
  @Field(() => ID)
  tenantId!: string;

  @Field()
  name!: string;

  @Field(() => Int, { description: 'Every notification must be delivered within this many minutes (10-30).' })
  deliveryDeadlineMinutes!: number;

  @Field(() => Int, { description: 'Days each delivery keeps its steps in the timeline (1-3650, default 90); notification counts and the audit log stay.' })
  deliveryHistoryDays!: number;

  @Field(() => [ApiKey])
  apiKeys!: ApiKey[];
}

@ObjectType()
export class TenantConnection extends Connection(Tenant, 'Tenant') {}

@ObjectType()
export class RegisterTenantPayload {
  @Field(() => Tenant)
  tenant!: Tenant;

  @Field(() => IssuedApiKey, { description: 'An ADMIN key for the new tenant.' })
  adminKey!: IssuedApiKey;
}

// ---- users ---------------------------------------------------------------------------------
@ObjectType()
export class Device {
  @Field(() => ID)
  deviceId!: string;

  @Field(() => DeviceKindEnum)
  kind!: DeviceKind;

  @Field(() => String, {
    nullable: true,
    description: 'Push token, email address or phone number; "[shredded]" once the data key is destroyed. Null in mutation results for a key without the READ scope.',
  })
  address!: string | null;
}

@ObjectType()
export class ConsentPeriod {
  @Field()
  start!: Date;

  @Field()
  end!: Date;
}

@ObjectType()
export class User {
  @Field(() => ID)
  userId!: string;

  @Field(() => String, { nullable: true, description: 'Null in mutation results for a key without the READ scope (personal data is shown only to keys that may read it).' })
  name!: string | null;

  @Field(() => [Device])
  devices!: Device[];

  @Field(() => ConsentPeriod, { description: 'The window in which the user may receive notifications.' })
  consent!: ConsentPeriod;

  @Field({ description: 'Whether the user allows notifications at all.' })
  optIn!: boolean;

  @Field(() => [ID])
  groupIds!: string[];

  @Field(() => Int, { description: "The user stream's revision this view reflects." })
  revision!: number;
}

@ObjectType({ description: 'The user is erased: the data key is destroyed, every copy of the personal data unreadable.' })
export class ForgottenUser {
  @Field(() => ID)
  userId!: string;

  @Field()
  shreddedAt!: Date;
}

@ObjectType()
export class UserConnection extends Connection(User, 'User') {}

@ObjectType()
export class Group {
  @Field(() => ID)
  groupId!: string;

  @Field()
  name!: string;

  @Field(() => Int, { nullable: true, description: 'Null until the read model has seen the group.' })
  memberCount!: number | null;
}

@ObjectType()
export class GroupConnection extends Connection(Group, 'Group') {}

@ObjectType()
export class MembershipChange {
  @Field(() => ID)
  groupId!: string;

  @Field(() => Int, { description: 'Users whose membership changed.' })
  changed!: number;

  @Field(() => Int, { description: 'Users already in the requested state.' })
  unchanged!: number;
}

// ---- notifications -------------------------------------------------------------------------
@ObjectType({ description: 'Deliveries of one channel or one provider.' })
export class DeliveryCounts {
  @Field({ description: 'The channel (ios, android, email, sms) or the provider name.' })
  key!: string;

  @Field(() => Int)
  total!: number;

  @Field(() => Int)
  succeeded!: number;

  @Field(() => Int)
  failed!: number;

  @Field(() => Int)
  expired!: number;

  @Field(() => Int, { description: 'Attempts made (providers only).' })
  attempts!: number;
}

@ObjectType({ description: 'Delivery counts; a delivery is one notification to one device.' })
export class Progress {
  @Field(() => Int, { nullable: true, description: 'Users targeted, once planning has counted them.' })
  recipients!: number | null;

  @Field(() => Int)
  total!: number;

  @Field(() => Int)
  pending!: number;

  @Field(() => Int)
  succeeded!: number;

  @Field(() => Int)
  failed!: number;

  @Field(() => Int)
  expired!: number;

  @Field({ description: 'Share of deliveries in a terminal state, 0 to 1 (0 while none are planned).' })
  completion!: number;

  @Field(() => [DeliveryCounts])
  byChannel!: DeliveryCounts[];

  @Field(() => [DeliveryCounts])
  byProvider!: DeliveryCounts[];

  @Field(() => Int, { nullable: true, description: 'Users with a successful delivery: a HyperLogLog estimate while running, exact once completed.' })
  reachedUsers!: number | null;

  @Field({ description: 'Whether reachedUsers is exact (the notification completed).' })
  reachedUsersExact!: boolean;

  @Field(() => Int, { description: 'Deliveries sent again after a crash; their first send may have arrived as well.' })
  possiblyDuplicated!: number;

  @Field(() => Int, { description: "Accepted deliveries the provider then reported delivered to the device or mailbox (SMS and email receipts). Accepted is `succeeded`." })
  delivered!: number;

  @Field(() => Int, { description: 'Accepted deliveries the provider then reported undeliverable (bounced, dropped, undelivered).' })
  bounced!: number;
}

@ObjectType()
export class ChannelEstimate {
  @Field(() => DeviceKindEnum)
  channel!: DeviceKind;

  @Field(() => Int)
  deliveries!: number;

  @Field({ description: "The channel's providers' combined messages per second." })
  capacityPerSecond!: number;

  @Field({ description: "Seconds this channel needs: the tenant's deliveries ahead on it plus these, at its capacity." })
  seconds!: number;

  @Field(() => Int, { description: "The tenant's own deliveries on this channel in sends due before this one." })
  ahead!: number;
}

@ObjectType({ description: 'Whether the send can finish before its deadline, estimated when it was accepted.' })
export class AdmissionEstimate {
  @Field(() => Int)
  recipients!: number;

  @Field(() => Int)
  deliveries!: number;

  @Field(() => [ChannelEstimate])
  byChannel!: ChannelEstimate[];

  @Field(() => Int, { description: "Deliveries of every tenant's sends queued or in flight that are due before this one." })
  ahead!: number;

  @Field(() => Int, { description: 'Sends accepted before that fit their deadlines and would not have, had this one gone ahead of them. Any such send makes this one not fit.' })
  delays!: number;

  @Field({ description: 'Estimated seconds to deliver everything.' })
  seconds!: number;

  @Field(() => Int)
  deadlineSeconds!: number;

  @Field({ description: 'False: the send is accepted and delivered best effort, behind every send that fit their deadlines, so it delays none of them; what is not delivered by its deadline expires.' })
  fitsDeadline!: boolean;
}

@ObjectType()
export class NotificationTarget {
  @Field(() => ID, { nullable: true })
  groupId!: string | null;

  @Field(() => [ID], { nullable: true })
  userIds!: string[] | null;
}

@ObjectType()
export class Notification {
  @Field(() => ID)
  notificationId!: string;

  @Field()
  text!: string;

  @Field(() => NotificationTarget)
  target!: NotificationTarget;

  @Field(() => String, { nullable: true })
  idempotencyKey!: string | null;

  @Field(() => NotificationStatusEnum)
  status!: keyof typeof NotificationStatusEnum;

  @Field()
  requestedAt!: Date;

  @Field({ description: 'requestedAt + the tenant delivery deadline; nothing is sent after it.' })
  deadline!: Date;

  @Field(() => Progress)
  progress!: Progress;

  @Field(() => AdmissionEstimate, { nullable: true, description: 'What admission estimated when the send was accepted; null where no delivery role estimated it.' })
  estimate!: AdmissionEstimate | null;

  @Field(() => Date, { nullable: true, description: 'When its last delivery ended; null until COMPLETED.' })
  completedAt!: Date | null;
}

@ObjectType()
export class NotificationConnection extends Connection(Notification, 'Notification') {}

@ObjectType()
export class SendNotificationPayload {
  @Field(() => Notification)
  notification!: Notification;

  @Field({ description: 'True when this idempotency key was seen before with the same request: nothing new was sent.' })
  duplicate!: boolean;

  @Field(() => AdmissionEstimate, { nullable: true, description: 'Null where no delivery role is configured to estimate.' })
  estimate!: AdmissionEstimate | null;
}

// ---- timeline and live events --------------------------------------------------------------
@ObjectType()
export class DeliveryStep {
  @Field({ description: 'requested, dispatched, attempted, succeeded, failed or expired.' })
  step!: string;

  @Field()
  at!: Date;

  @Field(() => String, { nullable: true })
  provider!: string | null;

  @Field(() => Int, { nullable: true })
  latencyMs!: number | null;

  @Field(() => String, { nullable: true, description: 'accepted, permanent or transient (attempts).' })
  outcome!: string | null;

  @Field(() => String, { nullable: true })
  reason!: string | null;
}

@ObjectType({ description: 'One step in the history of a user; never carries personal data.' })
export class TimelineEntry {
  @Field(() => Int)
  position!: number;

  @Field()
  type!: string;

  @Field()
  at!: Date;

  @Field()
  actor!: string;

  @Field()
  requestId!: string;

  @Field()
  summary!: string;

  @Field(() => ID, { nullable: true, description: 'Delivery entries (type Delivery) only, like the fields below.' })
  notificationId!: string | null;

  @Field(() => ID, { nullable: true })
  deliveryId!: string | null;

  @Field(() => ID, { nullable: true })
  deviceId!: string | null;

  @Field(() => DeviceKindEnum, { nullable: true })
  channel!: DeviceKind | null;

  @Field(() => String, { nullable: true, description: 'pending, dispatched, succeeded, failed or expired.' })
  status!: string | null;

  @Field(() => String, { nullable: true })
  provider!: string | null;

  @Field({ description: 'Sent again after a crash: the first send may have arrived too.' })
  possiblyDuplicate!: boolean;

  @Field(() => [DeliveryStep], { nullable: true })
  steps!: DeliveryStep[] | null;
}

@ObjectType()
export class TimelineConnection extends Connection(TimelineEntry, 'Timeline') {}

@ObjectType({ description: 'One event of the log as recorded, for compliance audits.' })
export class AuditEntry {
  @Field(() => Int)
  position!: number;

  @Field()
  at!: Date;

  @Field()
  streamName!: string;

  @Field(() => Int)
  revision!: number;

  @Field()
  type!: string;

  @Field({ description: 'The API key id that caused the event, or "system".' })
  actor!: string;

  @Field()
  requestId!: string;

  @Field(() => String, { nullable: true, description: "Hash of the tenant's previous event: the chain that makes edits detectable." })
  prevHash!: string | null;

  @Field({ description: 'The event data as JSON, personal data opened; "[shredded]" where the key is destroyed.' })
  data!: string;
}

@ObjectType()
export class AuditConnection extends Connection(AuditEntry, 'Audit') {}

@ObjectType({ description: 'Where the hash chain first breaks: an event changed, removed or inserted.' })
export class ChainBreakView {
  @Field(() => Int)
  position!: number;

  @Field()
  streamName!: string;

  @Field()
  type!: string;

  @Field()
  reason!: string;
}

@ObjectType({ description: "The tenant's audit chain, checked from its first event." })
export class AuditVerification {
  @Field({ description: 'Every event hashes to the next and the head matches the log.' })
  ok!: boolean;

  @Field(() => Int, { description: 'Events checked.' })
  checked!: number;

  @Field(() => Int, { description: 'Position of the last event checked (0: none).' })
  lastPosition!: number;

  @Field(() => Date, { nullable: true })
  lastAt!: Date | null;

  @Field(() => ChainBreakView, { nullable: true })
  firstBreak!: ChainBreakView | null;
}

@ObjectType({ description: "A tenant's event as it happens, without its data." })
export class DeliveryEvent {
  @Field(() => Int)
  position!: number;

  @Field()
  type!: string;

  @Field()
  at!: Date;

  @Field(() => ID, { nullable: true })
  notificationId!: string | null;

  @Field(() => ID, { nullable: true })
  userId!: string | null;

  @Field(() => Int, { nullable: true, description: 'Set on EventsDropped: events skipped because the client fell behind.' })
  dropped!: number | null;
}

// ---- inputs --------------------------------------------------------------------------------
@InputType()
export class RegisterTenantInput {
  @Field(() => ID, { nullable: true, description: 'Lower case letters, digits and dashes, 3-40; generated when absent.' })
  tenantId?: string | null;

  @Field()
  name!: string;

  @Field(() => Int, { description: '10 to 30.' })
  deliveryDeadlineMinutes!: number;
}

@InputType()
export class IssueApiKeyInput {
  @Field(() => ID, { nullable: true, description: 'Operator keys only: the tenant to issue for.' })
  tenantId?: string | null;

  @Field()
  name!: string;

  @Field(() => [ScopeEnum])
  scopes!: Scope[];
}

@InputType()
export class DeviceInput {
  @Field(() => DeviceKindEnum)
  kind!: DeviceKind;

  @Field({ description: 'Push token (IOS, ANDROID), email address (EMAIL) or E.164 number (SMS).' })
  address!: string;
}

@InputType()
export class ConsentPeriodInput {
  @Field()
  start!: Date;

  @Field()
  end!: Date;
}

@InputType()
export class RegisterUserInput {
  @Field(() => ID, { nullable: true, description: 'Your id for the user (no personal data); generated when absent.' })
  userId?: string | null;

  @Field()
  name!: string;

  @Field(() => [DeviceInput])
  devices!: DeviceInput[];

  @Field(() => ConsentPeriodInput)
  consent!: ConsentPeriodInput;

  @Field(() => Boolean, { nullable: true, defaultValue: true })
  optIn?: boolean | null;

  @Field(() => [ID], { nullable: true })
  groupIds?: string[] | null;
}

@InputType({ description: 'Absent fields stay as they are.' })
export class UpdateUserInput {
  @Field(() => ID)
  userId!: string;

  @Field(() => String, { nullable: true })
  name?: string | null;

  @Field(() => ConsentPeriodInput, { nullable: true })
  consent?: ConsentPeriodInput | null;

  @Field(() => Boolean, { nullable: true })
  optIn?: boolean | null;

  @Field(() => [ID], { nullable: true, description: 'The complete new set of groups.' })
  groupIds?: string[] | null;
}

@InputType()
export class CreateGroupInput {
  @Field(() => ID, { nullable: true })
  groupId?: string | null;

  @Field()
  name!: string;
}

@InputType({ description: 'Give exactly one of groupId or userIds.' })
export class SendNotificationInput {
  @Field({ description: 'At most 1500 bytes of UTF-8.' })
  text!: string;

  @Field(() => ID, { nullable: true })
  groupId?: string | null;

  @Field(() => [ID], { nullable: true, description: 'Up to 1000 users.' })
  userIds?: string[] | null;

  @Field(() => String, { nullable: true, description: 'Retrying with the same key and body returns the first result.' })
  idempotencyKey?: string | null;
}
