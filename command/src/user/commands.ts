import { streams, userKeyId } from '#schema/streams';
import type { DeviceKind, EventMetadata, SealedDevice } from '#schema/events';
import { badInput, conflict, notFound } from '#schema/errors';
import { normalizedAddress, parseConsentPeriod, parseDeviceAddress, parseDeviceKind, parseDevices, parseEntityId, parseGroupIds, parseUserName } from '#schema/values';
import { sealContexts } from '#schema/sealed';
import type { UserKey } from '#platform/crypto/personal-data';
import type { EventStore } from '#platform/event-store/port';
import { handleCommand, load } from '../handler';
import { metadataOf, type Actor, type CommandContext } from '../context';
import { requireGroups } from '../group/commands';
import { userDecider, type UserState } from './decider';

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

export type UserRef = Readonly<{ tenantId: string; userId: string }>;

/**
 * Destroys users' data keys and records it (the expiry role's shredder): the right to erasure
 * runs the same path as a consent expiry.
 */
export interface UserEraser {
  shred(users: readonly UserRef[], mode: 'expire' | 'erase', meta: Omit<EventMetadata, 'tenantId' | 'at'>): Promise<readonly (UserRef & Readonly<{ at: Date }>)[]>;
}

/** Every listed user must be registered; the error names the missing ones. */
export const requireUsers = async (eventStore: EventStore, tenantId: string, userIds: readonly string[]): Promise<void> => {
  const missing: string[] = [];
  for (const userId of userIds) {
    const { state } = await load(eventStore, streams.user(tenantId, userId), userDecider);
    if (state.status !== 'Registered') missing.push(userId);
  }
  if (missing.length > 0) {
    throw notFound(`user${missing.length > 1 ? 's' : ''} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` and ${missing.length - 10} more` : ''}`);
  }
};

/**
 * Users: each use case validates its whole input first (so a bad request appends nothing and
 * makes no data key), seals personal data with the user's key, then lets the decider decide.
 */
export class UserCommands {
  constructor(private readonly ctx: CommandContext & Readonly<{ eraser: UserEraser }>) {}

  private async key(tenantId: string, userId: string): Promise<UserKey> {
    const key = await this.ctx.cipher.keyFor(userKeyId(tenantId, userId), { create: true });
    if (!key) throw new Error(`no data key for user ${userId}`);
    return key;
  }

  /** A device as the log keeps it: its address sealed for this device, and its keyed fingerprint. */
  private seal(key: UserKey, device: { kind: DeviceKind; address: string }, deviceId: string): SealedDevice {
    return {
      deviceId,
      kind: device.kind,
      address: this.ctx.cipher.seal(key, device.address, sealContexts.deviceAddress({ deviceId, kind: device.kind })),
      fingerprint: this.fingerprint(key, device),
    };
  }

  private fingerprint(key: UserKey, device: { kind: DeviceKind; address: string }): string {
    return this.ctx.cipher.fingerprint(key, normalizedAddress(device.kind, device.address));
  }

  /**
   * The fingerprint of each of the user's devices: recorded ones as they are, older devices'
   * computed from their opened address (recorded before fingerprints existed).
   */
  private fingerprints(key: UserKey, devices: readonly SealedDevice[]): Map<string, SealedDevice> {
    const out = new Map<string, SealedDevice>();
    for (const d of devices) {
      let fingerprint = d.fingerprint;
      if (fingerprint === undefined) {
        try {
          fingerprint = this.fingerprint(key, { kind: d.kind, address: this.ctx.cipher.open(key, d.address, sealContexts.deviceAddress(d)) });
        } catch {
          continue;
        }
      }
      out.set(`${d.kind}:${fingerprint}`, d);
    }
    return out;
  }

  private async registered(stream: string, userId: string): Promise<Extract<UserState, { status: 'Registered' }>> {
    const { state } = await load(this.ctx.eventStore, stream, userDecider);
    if (state.status !== 'Registered') throw notFound(`user ${userId}`);
    return state;
  }

  async register(actor: Actor, tenantId: string, input: RegisterUserInput) {
    const userId = input.userId == null ? this.ctx.ids.ulid() : parseEntityId('userId', input.userId);
    const name = parseUserName('name', input.name);
    const devices = parseDevices('devices', input.devices);
    const consent = parseConsentPeriod('consent', input.consent.start, input.consent.end);
    const now = this.ctx.clock.now();
    if (new Date(consent.end) <= now) throw badInput('consent.end', `${consent.end} is not in the future; a new user needs a consent period that has not ended`);
    const groupIds = parseGroupIds('groupIds', input.groupIds ?? []);
    const stream = streams.user(tenantId, userId);
    // Read at once; the user's conflict comes before the groups' error.
    const [read, groupsFound] = await Promise.allSettled([load(this.ctx.eventStore, stream, userDecider), requireGroups(this.ctx.eventStore, tenantId, groupIds)]);
    if (read.status === 'rejected') throw read.reason;
    const existing = read.value;
    // Checked before a data key is made; an erased id may be registered again (a new key).
    if (existing.state.status === 'Registered' || existing.state.status === 'Erasing') throw conflict(`user ${userId} already exists`);
    if (groupsFound.status === 'rejected') throw groupsFound.reason;

    const key = await this.key(tenantId, userId);
    // One device per address and kind: the same phone listed twice would get every text twice.
    const seen = new Set<string>();
    const sealed: SealedDevice[] = [];
    for (const d of devices) {
      const device = this.seal(key, d, this.ctx.ids.shortId('d', 10));
      if (seen.has(`${device.kind}:${device.fingerprint}`)) continue;
      seen.add(`${device.kind}:${device.fingerprint}`);
      sealed.push(device);
    }
    return handleCommand(this.ctx.eventStore, stream, userDecider, {
      type: 'RegisterUser',
      data: { userId, name: this.ctx.cipher.seal(key, name, sealContexts.userName), devices: sealed, consent, optIn: input.optIn ?? true, groupIds },
      now,
    }, metadataOf(this.ctx, tenantId, actor), { loaded: existing });
  }

  async update(actor: Actor, tenantId: string, input: UpdateUserInput) {
    const userId = parseEntityId('userId', input.userId);
    const name = input.name == null ? undefined : parseUserName('name', input.name);
    const consent = input.consent == null ? undefined : parseConsentPeriod('consent', input.consent.start, input.consent.end);
    const groupIds = input.groupIds == null ? undefined : parseGroupIds('groupIds', input.groupIds);
    const stream = streams.user(tenantId, userId);
    await this.registered(stream, userId);
    if (groupIds) await requireGroups(this.ctx.eventStore, tenantId, groupIds);
    const key = name === undefined ? null : await this.key(tenantId, userId);
    return handleCommand(this.ctx.eventStore, stream, userDecider, {
      type: 'UpdateUser',
      data: {
        userId,
        ...(key && name !== undefined ? { name: this.ctx.cipher.seal(key, name, sealContexts.userName) } : {}),
        ...(consent ? { consent } : {}),
        ...(input.optIn == null ? {} : { optIn: input.optIn }),
        ...(groupIds ? { groupIds } : {}),
      },
      now: this.ctx.clock.now(),
    }, metadataOf(this.ctx, tenantId, actor));
  }

  /** Adding an address the user has for that kind already adds nothing: the answer names that device. */
  async addDevice(actor: Actor, tenantId: string, userIdInput: string, device: DeviceInput) {
    const userId = parseEntityId('userId', userIdInput);
    const [parsed] = parseDevices('device', [device]);
    const stream = streams.user(tenantId, userId);
    const key = await this.key(tenantId, userId);
    const state = await this.registered(stream, userId);
    const fingerprint = `${parsed!.kind}:${this.fingerprint(key, parsed!)}`;
    const existing = this.fingerprints(key, state.devices).get(fingerprint);
    if (existing) {
      const { state: current, revision } = await load(this.ctx.eventStore, stream, userDecider);
      return { appended: [], state: current, revision, position: null, deviceId: existing.deviceId };
    }
    const deviceId = this.ctx.ids.shortId('d', 10);
    const result = await handleCommand(this.ctx.eventStore, stream, userDecider,
      { type: 'AddDevice', data: { userId, device: this.seal(key, parsed!, deviceId) }, now: this.ctx.clock.now() },
      metadataOf(this.ctx, tenantId, actor));
    if (result.appended.length > 0 || result.state.status !== 'Registered') return { ...result, deviceId };
    // Added meanwhile by a concurrent request: the decider found the same fingerprint.
    const same = this.fingerprints(key, result.state.devices).get(fingerprint);
    return { ...result, deviceId: same?.deviceId ?? deviceId };
  }

  async changeDevice(actor: Actor, tenantId: string, userIdInput: string, deviceIdInput: string, device: DeviceInput) {
    const userId = parseEntityId('userId', userIdInput);
    const deviceId = parseEntityId('deviceId', deviceIdInput);
    const kind = parseDeviceKind('device.kind', device.kind);
    const address = parseDeviceAddress('device.address', kind, device.address);
    const stream = streams.user(tenantId, userId);
    const state = await this.registered(stream, userId);
    const key = await this.key(tenantId, userId);
    const other = this.fingerprints(key, state.devices.filter((d) => d.deviceId !== deviceId)).get(`${kind}:${this.fingerprint(key, { kind, address })}`);
    if (other) throw conflict(`device ${other.deviceId} already has this address`);
    return handleCommand(this.ctx.eventStore, stream, userDecider,
      { type: 'ChangeDevice', data: { userId, device: this.seal(key, { kind, address }, deviceId) }, now: this.ctx.clock.now() },
      metadataOf(this.ctx, tenantId, actor));
  }

  async removeDevice(actor: Actor, tenantId: string, userIdInput: string, deviceIdInput: string) {
    const userId = parseEntityId('userId', userIdInput);
    const deviceId = parseEntityId('deviceId', deviceIdInput);
    return handleCommand(this.ctx.eventStore, streams.user(tenantId, userId), userDecider,
      { type: 'RemoveDevice', data: { userId, deviceId }, now: this.ctx.clock.now() },
      metadataOf(this.ctx, tenantId, actor));
  }

  /**
   * The right to erasure: the same path as a consent expiry, run at once. When this returns the
   * user's data key is destroyed and every copy of their personal data is unreadable.
   */
  async forget(actor: Actor, tenantId: string, userIdInput: string) {
    const userId = parseEntityId('userId', userIdInput);
    const { state } = await load(this.ctx.eventStore, streams.user(tenantId, userId), userDecider);
    if (state.status === 'Unregistered' || state.status === 'Shredded') throw notFound(`user ${userId}`);
    const [shredded] = await this.ctx.eraser.shred([{ tenantId, userId }], 'erase', { actor: actor.keyId, requestId: actor.requestId });
    if (!shredded) throw conflict(`user ${userId} changed while being erased; try again`);
    return { userId, shreddedAt: shredded.at };
  }

  /** Joins or leaves one group for each listed user (membership lives on the user, see docs/design.md). */
  async changeGroup(actor: Actor, tenantId: string, groupId: string, userIds: readonly string[], join: boolean) {
    await requireUsers(this.ctx.eventStore, tenantId, userIds);
    let changed = 0;
    const meta = metadataOf(this.ctx, tenantId, actor);
    const now = this.ctx.clock.now();
    // Every user is checked before the first append; each append is idempotent, so a retry after a
    // crash completes the call without duplicates.
    for (const userId of userIds) {
      const result = await handleCommand(this.ctx.eventStore, streams.user(tenantId, userId), userDecider,
        join ? { type: 'JoinGroup', data: { userId, groupId }, now } : { type: 'LeaveGroup', data: { userId, groupId }, now },
        meta);
      if (result.appended.length > 0) changed++;
    }
    return { changed, unchanged: userIds.length - changed };
  }
}
