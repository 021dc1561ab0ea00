import { createHash } from 'node:crypto';
import type { EventStore } from '../../platform/src/event-store/port';
import type { PersonalDataCipher, UserKey } from '../../platform/src/crypto/personal-data';
import type { Clock } from '../../platform/src/clock';
import type { IdGenerator } from '../../platform/src/ids';
import type { Admission, DeviceKind, EventMetadata, NotificationTarget, SealedDevice } from '../../schema/src/events';
import type { Scope } from '../../schema/src/scopes';
import { streams, userKeyId } from '../../schema/src/streams';
import { badInput, conflict, notFound } from '../../schema/src/errors';
import {
  parseConsentPeriod,
  parseDeliveryDeadlineMinutes,
  parseDeviceAddress,
  parseDeviceKind,
  parseEntityId,
  parseGroupName,
  parseIdempotencyKey,
  parseNotificationText,
  parseScopes,
  parseTenantId,
  parseTenantName,
  parseUserIds,
  parseUserName,
  parseApiKeyName,
} from '../../schema/src/values';
import { handleCommand, load, StreamCache } from './handler';
import type { Shredder } from './expiry/shredder';
import { newApiKey, OPERATOR } from './auth/api-keys';
import { operatorDecider, type OperatorState } from './operator/decider';
import { tenantDecider, type TenantState } from './tenant/decider';
import { userDecider, type UserState } from './user/decider';
import { groupDecider, type GroupState } from './group/decider';
import { notificationDecider, type NotificationState } from './notification/decider';
import type { OperatorEvent, TenantEvent } from '../../schema/src/events';

/** Who is acting, and on which request; tenant ids come from here, never from the input. */
export type Actor = Readonly<{ keyId: string; requestId: string }>;

export type DeviceInput = Readonly<{ kind: string; address: string }>;
export type ConsentInput = Readonly<{ start: Date | string; end: Date | string }>;

export type RegisterUserInput = Readonly<{
  userId?: string | null;
  name: string;
  devices: readonly DeviceInput[];
  consent: ConsentInput;
  optIn?: boolean | null;
  groupIds?: readonly string[] | null;
}>;

export type UpdateUserInput = Readonly<{
  userId: string;
  name?: string | null;
  consent?: ConsentInput | null;
  optIn?: boolean | null;
  groupIds?: readonly string[] | null;
}>;

export type SendNotificationInput = Readonly<{
  text: string;
  groupId?: string | null;
  userIds?: readonly string[] | null;
  idempotencyKey?: string | null;
}>;

export type Deps = Readonly<{
  eventStore: EventStore;
  cipher: PersonalDataCipher;
  clock: Clock;
  ids: IdGenerator;
  shredder: Shredder;
  /** Estimates whether a send can finish before its deadline (the delivery role's quotas). */
  admission?: (tenantId: string, target: NotificationTarget, deadlineMinutes: number, now: Date) => Promise<Admission>;
}>;

const MAX_DEVICES = 20;
const MAX_MEMBERS_PER_CALL = 1000;

/**
 * The write side's use cases. Each validates its whole input first (so a bad request appends
 * nothing), loads what it must check, then lets one aggregate's decider decide.
 */
export class CommandService {
  readonly tenants: StreamCache<TenantEvent, TenantState>;
  readonly operator: StreamCache<OperatorEvent, OperatorState>;

  constructor(private readonly deps: Deps) {
    this.tenants = new StreamCache(deps.eventStore, tenantDecider);
    this.operator = new StreamCache(deps.eventStore, operatorDecider, 1);
  }

  private meta(tenantId: string, actor: Actor): EventMetadata {
    return { tenantId, actor: actor.keyId, requestId: actor.requestId, at: this.deps.clock.now().toISOString() };
  }

  // ---- operator ----------------------------------------------------------------------------

  /** Issues an operator key when none is active; returns its token, or null when one exists. */
  async bootstrapOperatorKey(): Promise<string | null> {
    const { state } = await this.operator.load(streams.operator());
    if ([...state.keys.values()].some((k) => !k.revoked)) return null;
    return this.rotateOperatorKey({ keyId: 'system', requestId: 'bootstrap' });
  }

  /** Issues a new operator key and revokes every other one. */
  async rotateOperatorKey(actor: Actor): Promise<string> {
    const key = newApiKey(OPERATOR);
    const stream = streams.operator();
    const now = this.deps.clock.now();
    await handleCommand(this.deps.eventStore, stream, operatorDecider,
      { type: 'IssueOperatorKey', data: { keyId: key.keyId, secretHash: key.secretHash }, now },
      this.meta(OPERATOR, actor), { cache: this.operator });
    const { state } = await this.operator.load(stream);
    for (const [keyId, k] of state.keys) {
      if (keyId !== key.keyId && !k.revoked) {
        await handleCommand(this.deps.eventStore, stream, operatorDecider,
          { type: 'RevokeOperatorKey', data: { keyId }, now }, this.meta(OPERATOR, actor), { cache: this.operator });
      }
    }
    return key.token;
  }

  // ---- tenants and keys --------------------------------------------------------------------

  async registerTenant(
    actor: Actor,
    input: Readonly<{ tenantId?: string | null; name: string; deliveryDeadlineMinutes: number }>,
  ) {
    const tenantId = input.tenantId == null ? `t-${this.deps.ids.shortId('', 10)}` : parseTenantId('tenantId', input.tenantId);
    const name = parseTenantName('name', input.name);
    const minutes = parseDeliveryDeadlineMinutes('deliveryDeadlineMinutes', input.deliveryDeadlineMinutes);
    const key = newApiKey(tenantId);
    const now = this.deps.clock.now();
    const stream = streams.tenant(tenantId);
    const meta = this.meta(tenantId, actor);
    // One append: the tenant never exists without its first admin key.
    const registered = tenantDecider.decide({ type: 'RegisterTenant', data: { tenantId, name, deliveryDeadlineMinutes: minutes }, now }, tenantDecider.initialState());
    const afterRegister = registered.reduce(tenantDecider.evolve, tenantDecider.initialState());
    const issued = tenantDecider.decide(
      { type: 'IssueApiKey', data: { keyId: key.keyId, name: 'admin', scopes: ['admin'], secretHash: key.secretHash }, now },
      afterRegister,
    );
    const existing = await this.tenants.load(stream);
    if (existing.revision >= 0) throw conflict(`tenant ${tenantId} is already registered`);
    const events = [...registered, ...issued];
    try {
      const result = await this.deps.eventStore.appendToStream(stream, events.map((e) => ({ ...e, metadata: meta })), { expectedRevision: 'no_stream' });
      const state = events.reduce(tenantDecider.evolve, tenantDecider.initialState());
      this.tenants.remember(stream, { state, revision: result.nextExpectedRevision });
      return { state, adminKey: { keyId: key.keyId, token: key.token, scopes: ['admin'] as Scope[] }, position: result.lastPosition };
    } catch (e) {
      if ((e as Error).name === 'ConcurrencyError') throw conflict(`tenant ${tenantId} is already registered`);
      throw e;
    }
  }

  async tenantState(tenantId: string): Promise<TenantState> {
    return (await this.tenants.load(streams.tenant(tenantId))).state;
  }

  async changeDeliveryDeadline(actor: Actor, tenantId: string, minutes: number) {
    const parsed = parseDeliveryDeadlineMinutes('deliveryDeadlineMinutes', minutes);
    return handleCommand(this.deps.eventStore, streams.tenant(tenantId), tenantDecider,
      { type: 'ChangeDeliveryDeadline', data: { deliveryDeadlineMinutes: parsed }, now: this.deps.clock.now() },
      this.meta(tenantId, actor), { cache: this.tenants });
  }

  async issueApiKey(actor: Actor, tenantId: string, input: Readonly<{ name: string; scopes: readonly string[] }>) {
    const name = parseApiKeyName('name', input.name);
    const scopes = parseScopes('scopes', input.scopes);
    const key = newApiKey(tenantId);
    await handleCommand(this.deps.eventStore, streams.tenant(tenantId), tenantDecider,
      { type: 'IssueApiKey', data: { keyId: key.keyId, name, scopes, secretHash: key.secretHash }, now: this.deps.clock.now() },
      this.meta(tenantId, actor), { cache: this.tenants });
    return { keyId: key.keyId, token: key.token, name, scopes };
  }

  async revokeApiKey(actor: Actor, tenantId: string, keyId: string) {
    return handleCommand(this.deps.eventStore, streams.tenant(tenantId), tenantDecider,
      { type: 'RevokeApiKey', data: { keyId }, now: this.deps.clock.now() },
      this.meta(tenantId, actor), { cache: this.tenants });
  }

  // ---- users -------------------------------------------------------------------------------

  private parseDevices(field: string, devices: readonly DeviceInput[]): { kind: DeviceKind; address: string }[] {
    if (!Array.isArray(devices) || devices.length === 0) throw badInput(field, 'a user needs at least one device');
    if (devices.length > MAX_DEVICES) throw badInput(field, `${devices.length} devices, the limit is ${MAX_DEVICES}`);
    return devices.map((d, i) => {
      const kind = parseDeviceKind(`${field}[${i}].kind`, d.kind);
      return { kind, address: parseDeviceAddress(`${field}[${i}].address`, kind, d.address) };
    });
  }

  private parseGroupIds(field: string, groupIds: readonly string[]): string[] {
    if (groupIds.length > 100) throw badInput(field, `${groupIds.length} groups, the limit is 100`);
    return [...new Set(groupIds.map((g, i) => parseEntityId(`${field}[${i}]`, g)))];
  }

  private async requireGroups(tenantId: string, groupIds: readonly string[]): Promise<void> {
    for (const groupId of groupIds) {
      const { state } = await load(this.deps.eventStore, streams.group(tenantId, groupId), groupDecider);
      if (state.status !== 'Created') throw notFound(`group ${groupId}`);
    }
  }

  private async userKey(tenantId: string, userId: string): Promise<UserKey> {
    const key = await this.deps.cipher.keyFor(userKeyId(tenantId, userId), { create: true });
    if (!key) throw new Error(`no data key for user ${userId}`);
    return key;
  }

  private sealDevice(key: UserKey, device: { kind: DeviceKind; address: string }, deviceId: string): SealedDevice {
    return { deviceId, kind: device.kind, address: this.deps.cipher.seal(key, device.address) };
  }

  async registerUser(actor: Actor, tenantId: string, input: RegisterUserInput) {
    const userId = input.userId == null ? this.deps.ids.ulid() : parseEntityId('userId', input.userId);
    const name = parseUserName('name', input.name);
    const devices = this.parseDevices('devices', input.devices);
    const consent = parseConsentPeriod('consent', input.consent.start, input.consent.end);
    const now = this.deps.clock.now();
    if (new Date(consent.end) <= now) throw badInput('consent.end', `${consent.end} is not in the future; a new user needs a consent period that has not ended`);
    const groupIds = this.parseGroupIds('groupIds', input.groupIds ?? []);
    const stream = streams.user(tenantId, userId);
    const existing = await load(this.deps.eventStore, stream, userDecider);
    // Checked before a data key is made; an erased id may be registered again (a new key).
    if (existing.state.status === 'Registered' || existing.state.status === 'Erasing') throw conflict(`user ${userId} already exists`);
    await this.requireGroups(tenantId, groupIds);

    const key = await this.userKey(tenantId, userId);
    const sealedDevices = devices.map((d) => this.sealDevice(key, d, this.deps.ids.shortId('d', 10)));
    return handleCommand(this.deps.eventStore, stream, userDecider, {
      type: 'RegisterUser',
      data: { userId, name: this.deps.cipher.seal(key, name), devices: sealedDevices, consent, optIn: input.optIn ?? true, groupIds },
      now,
    }, this.meta(tenantId, actor));
  }

  async updateUser(actor: Actor, tenantId: string, input: UpdateUserInput) {
    const userId = parseEntityId('userId', input.userId);
    const name = input.name == null ? undefined : parseUserName('name', input.name);
    const consent = input.consent == null ? undefined : parseConsentPeriod('consent', input.consent.start, input.consent.end);
    const groupIds = input.groupIds == null ? undefined : this.parseGroupIds('groupIds', input.groupIds);
    const stream = streams.user(tenantId, userId);
    await this.requireUser(stream, userId);
    if (groupIds) await this.requireGroups(tenantId, groupIds);
    const key = name === undefined ? null : await this.userKey(tenantId, userId);
    return handleCommand(this.deps.eventStore, stream, userDecider, {
      type: 'UpdateUser',
      data: {
        userId,
        ...(key && name !== undefined ? { name: this.deps.cipher.seal(key, name) } : {}),
        ...(consent ? { consent } : {}),
        ...(input.optIn == null ? {} : { optIn: input.optIn }),
        ...(groupIds ? { groupIds } : {}),
      },
      now: this.deps.clock.now(),
    }, this.meta(tenantId, actor));
  }

  private async requireUsers(tenantId: string, userIds: readonly string[]): Promise<void> {
    const missing: string[] = [];
    for (const userId of userIds) {
      const { state } = await load(this.deps.eventStore, streams.user(tenantId, userId), userDecider);
      if (state.status !== 'Registered') missing.push(userId);
    }
    if (missing.length > 0) {
      throw notFound(`user${missing.length > 1 ? 's' : ''} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` and ${missing.length - 10} more` : ''}`);
    }
  }

  private async requireUser(stream: string, userId: string): Promise<UserState> {
    const { state } = await load(this.deps.eventStore, stream, userDecider);
    if (state.status !== 'Registered') throw notFound(`user ${userId}`);
    return state;
  }

  async addDevice(actor: Actor, tenantId: string, userIdInput: string, device: DeviceInput) {
    const userId = parseEntityId('userId', userIdInput);
    const [parsed] = this.parseDevices('device', [device]).map((d) => d);
    const stream = streams.user(tenantId, userId);
    await this.requireUser(stream, userId);
    const key = await this.userKey(tenantId, userId);
    const deviceId = this.deps.ids.shortId('d', 10);
    const result = await handleCommand(this.deps.eventStore, stream, userDecider,
      { type: 'AddDevice', data: { userId, device: this.sealDevice(key, parsed!, deviceId) }, now: this.deps.clock.now() },
      this.meta(tenantId, actor));
    return { ...result, deviceId };
  }

  async changeDevice(actor: Actor, tenantId: string, userIdInput: string, deviceIdInput: string, device: DeviceInput) {
    const userId = parseEntityId('userId', userIdInput);
    const deviceId = parseEntityId('deviceId', deviceIdInput);
    const kind = parseDeviceKind('device.kind', device.kind);
    const address = parseDeviceAddress('device.address', kind, device.address);
    const stream = streams.user(tenantId, userId);
    await this.requireUser(stream, userId);
    const key = await this.userKey(tenantId, userId);
    return handleCommand(this.deps.eventStore, stream, userDecider,
      { type: 'ChangeDevice', data: { userId, device: this.sealDevice(key, { kind, address }, deviceId) }, now: this.deps.clock.now() },
      this.meta(tenantId, actor));
  }

  async removeDevice(actor: Actor, tenantId: string, userIdInput: string, deviceIdInput: string) {
    const userId = parseEntityId('userId', userIdInput);
    const deviceId = parseEntityId('deviceId', deviceIdInput);
    return handleCommand(this.deps.eventStore, streams.user(tenantId, userId), userDecider,
      { type: 'RemoveDevice', data: { userId, deviceId }, now: this.deps.clock.now() },
      this.meta(tenantId, actor));
  }

  /**
   * The right to erasure: the same path as a consent expiry, run at once. When this returns the
   * user's data key is destroyed and every copy of their personal data is unreadable.
   */
  async forgetUser(actor: Actor, tenantId: string, userIdInput: string) {
    const userId = parseEntityId('userId', userIdInput);
    const { state } = await load(this.deps.eventStore, streams.user(tenantId, userId), userDecider);
    if (state.status === 'Unregistered' || state.status === 'Shredded') throw notFound(`user ${userId}`);
    const [shredded] = await this.deps.shredder.shred([{ tenantId, userId }], 'erase', { actor: actor.keyId, requestId: actor.requestId });
    if (!shredded) throw conflict(`user ${userId} changed while being erased; try again`);
    return { userId, shreddedAt: shredded.at };
  }

  // ---- groups ------------------------------------------------------------------------------

  async createGroup(actor: Actor, tenantId: string, input: Readonly<{ groupId?: string | null; name: string }>) {
    const groupId = input.groupId == null ? this.deps.ids.ulid() : parseEntityId('groupId', input.groupId);
    const name = parseGroupName('name', input.name);
    return handleCommand(this.deps.eventStore, streams.group(tenantId, groupId), groupDecider,
      { type: 'CreateGroup', data: { groupId, name }, now: this.deps.clock.now() }, this.meta(tenantId, actor));
  }

  async renameGroup(actor: Actor, tenantId: string, groupIdInput: string, nameInput: string) {
    const groupId = parseEntityId('groupId', groupIdInput);
    const name = parseGroupName('name', nameInput);
    return handleCommand(this.deps.eventStore, streams.group(tenantId, groupId), groupDecider,
      { type: 'RenameGroup', data: { groupId, name }, now: this.deps.clock.now() }, this.meta(tenantId, actor));
  }

  async loadGroup(tenantId: string, groupId: string): Promise<GroupState> {
    return (await load(this.deps.eventStore, streams.group(tenantId, groupId), groupDecider)).state;
  }

  /**
   * Membership is an attribute of the user (see docs/design.md), so this touches one user stream
   * per member. Every user is checked before the first append; each append is idempotent, so a
   * retry after a crash completes the call without duplicates.
   */
  async changeGroupMembers(actor: Actor, tenantId: string, groupIdInput: string, userIdsInput: readonly string[], join: boolean) {
    const groupId = parseEntityId('groupId', groupIdInput);
    const userIds = parseUserIds('userIds', userIdsInput);
    if (userIds.length > MAX_MEMBERS_PER_CALL) throw badInput('userIds', `${userIds.length} users, the limit is ${MAX_MEMBERS_PER_CALL} per call`);
    await this.requireGroups(tenantId, [groupId]);
    await this.requireUsers(tenantId, userIds);
    let changed = 0;
    const meta = this.meta(tenantId, actor);
    const now = this.deps.clock.now();
    for (const userId of userIds) {
      const result = await handleCommand(this.deps.eventStore, streams.user(tenantId, userId), userDecider,
        join ? { type: 'JoinGroup', data: { userId, groupId }, now } : { type: 'LeaveGroup', data: { userId, groupId }, now },
        meta);
      if (result.appended.length > 0) changed++;
    }
    return { groupId, changed, unchanged: userIds.length - changed };
  }

  // ---- notifications -----------------------------------------------------------------------

  async sendNotification(actor: Actor, tenantId: string, input: SendNotificationInput) {
    const text = parseNotificationText('text', input.text);
    const target = this.parseTarget(input);
    const idempotencyKey = input.idempotencyKey == null ? null : parseIdempotencyKey('idempotencyKey', input.idempotencyKey);
    const tenant = await this.tenantState(tenantId);
    if (tenant.status !== 'Registered') throw notFound(`tenant ${tenantId}`);
    if (target.kind === 'group') await this.requireGroups(tenantId, [target.groupId]);
    else await this.requireUsers(tenantId, target.userIds);

    const requestHash = createHash('sha256').update(JSON.stringify({ text, target })).digest('hex');
    // A key names one request forever: the id is derived from it, so a retry lands on the same stream.
    const notificationId = idempotencyKey === null
      ? this.deps.ids.ulid()
      : `n${createHash('sha256').update(`${tenantId}\u0000${idempotencyKey}`).digest('hex').slice(0, 25)}`;
    const now = this.deps.clock.now();
    const admission = this.deps.admission ? await this.deps.admission(tenantId, target, tenant.deliveryDeadlineMinutes, now) : undefined;
    const result = await handleCommand(this.deps.eventStore, streams.notification(tenantId, notificationId), notificationDecider, {
      type: 'RequestNotification',
      data: { notificationId, text, target, idempotencyKey, requestHash, deliveryDeadlineMinutes: tenant.deliveryDeadlineMinutes, ...(admission ? { admission } : {}) },
      now,
    }, this.meta(tenantId, actor));
    return { ...result, duplicate: result.appended.length === 0 };
  }

  private parseTarget(input: SendNotificationInput): NotificationTarget {
    const hasGroup = input.groupId != null;
    const hasUsers = input.userIds != null;
    if (hasGroup === hasUsers) throw badInput('target', 'give exactly one of groupId or userIds');
    return hasGroup
      ? { kind: 'group', groupId: parseEntityId('groupId', input.groupId!) }
      : { kind: 'users', userIds: parseUserIds('userIds', input.userIds!) };
  }
}

export type { NotificationState, TenantState, UserState, GroupState };
