import type { AnyEvent, ConsentPeriod, DeviceKind, EventMetadata, SealedDevice } from '#schema/events';
import type { EventStore } from '#platform/event-store/port';
import { sealed, streamOf, T0 } from './read-model.test-support';

/** mulberry32: the same seed writes the same history. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

export type SimUser = {
  tenantId: string;
  userId: string;
  name: string;
  devices: SealedDevice[];
  consent: ConsentPeriod;
  optIn: boolean;
  groupIds: string[];
  revision: number;
  registeredAt: string;
  /** Timeline entries expected for the user. */
  steps: number;
};

export type Sim = {
  tenants: Map<string, { name: string; deadline: number; keys: Map<string, boolean> }>;
  groups: Map<string, { tenantId: string; groupId: string; name: string }>;
  users: Map<string, SimUser>;
  notifications: { tenantId: string; notificationId: string; requestedAt: string }[];
  head: number;
};

/**
 * Writes a realistic history through the event store, as the deciders would (right expected
 * revisions, several events per append where one command makes several), and keeps what the
 * read models should end up showing, computed independently of them.
 */
export const writeHistory = async (
  store: EventStore,
  options: Readonly<{ seed?: number; usersPerTenant?: number; operations?: number; /** Let other work run between appends. */ paced?: boolean }> = {},
): Promise<Sim> => {
  const rnd = random(options.seed ?? 42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  const sim: Sim = { tenants: new Map(), groups: new Map(), users: new Map(), notifications: [], head: 0 };
  const revisions = new Map<string, number>();
  let clock = 0;

  const append = async (tenantId: string, events: readonly AnyEvent[]): Promise<string> => {
    const streamName = streamOf(tenantId, events[0]!);
    const revision = revisions.get(streamName) ?? -1;
    const at = new Date(T0 + ++clock * 1000).toISOString();
    const metadata: EventMetadata = { tenantId, actor: `key-${tenantId}`, requestId: `req-${clock}`, at };
    const result = await store.appendToStream(
      streamName,
      events.map((e) => ({ ...e, metadata })),
      { expectedRevision: revision < 0 ? 'no_stream' : revision },
    );
    revisions.set(streamName, result.nextExpectedRevision);
    sim.head = result.lastPosition;
    if (options.paced) await new Promise((r) => setImmediate(r));
    return at;
  };

  await store.appendToStream('operator', [
    { type: 'OperatorKeyIssued', data: { keyId: 'op1', secretHash: 'aa'.repeat(32) }, metadata: { tenantId: 'operator', actor: 'system', requestId: 'boot', at: new Date(T0).toISOString() } },
  ]);

  const tenantGroups: Record<string, string[]> = { acme: ['beta', 'gamma', 'delta'], globex: ['beta', 'vip'] };
  for (const [tenantId, groupIds] of Object.entries(tenantGroups)) {
    const name = `${tenantId} corp`;
    await append(tenantId, [{ type: 'TenantRegistered', data: { tenantId, name, deliveryDeadlineMinutes: 15 } }]);
    const keys = new Map<string, boolean>();
    for (const keyId of ['k1', 'k2']) {
      await append(tenantId, [{ type: 'ApiKeyIssued', data: { tenantId, keyId: `${tenantId}-${keyId}`, name: keyId, scopes: ['admin'], secretHash: 'bb'.repeat(32), issuedAt: new Date(T0 + clock * 1000).toISOString() } }]);
      keys.set(`${tenantId}-${keyId}`, false);
    }
    sim.tenants.set(tenantId, { name, deadline: 15, keys });
    for (const groupId of groupIds) {
      await append(tenantId, [{ type: 'GroupCreated', data: { groupId, name: `group ${groupId}` } }]);
      sim.groups.set(`${tenantId}:${groupId}`, { tenantId, groupId, name: `group ${groupId}` });
    }
  }
  await append('acme', [{ type: 'ApiKeyRevoked', data: { tenantId: 'acme', keyId: 'acme-k1' } }]);
  sim.tenants.get('acme')!.keys.set('acme-k1', true);
  await append('globex', [{ type: 'DeliveryDeadlineChanged', data: { tenantId: 'globex', deliveryDeadlineMinutes: 25 } }]);
  sim.tenants.get('globex')!.deadline = 25;
  await append('acme', [{ type: 'GroupRenamed', data: { groupId: 'gamma', name: 'Gamma people' } }]);
  sim.groups.get('acme:gamma')!.name = 'Gamma people';

  let deviceSeq = 0;
  const newDevice = (userId: string): SealedDevice => {
    const kind = pick<DeviceKind>(['ios', 'android', 'email', 'sms']);
    return { deviceId: `d${++deviceSeq}`, kind, address: sealed(`${kind}-address-of-${userId}-${deviceSeq}`) };
  };
  const consentFrom = (year: number): ConsentPeriod => ({ start: `${year}-01-01T00:00:00.000Z`, end: `${year + 1}-01-01T00:00:00.000Z` });

  for (const tenantId of sim.tenants.keys()) {
    for (let i = 1; i <= (options.usersPerTenant ?? 25); i++) {
      const userId = `u${i}`;
      const groupIds = tenantGroups[tenantId]!.filter(() => rnd() < 0.5);
      const devices = Array.from({ length: Math.floor(rnd() * 3) }, () => newDevice(userId));
      const user: SimUser = {
        tenantId, userId, name: `Person ${tenantId} ${i}`, devices, consent: consentFrom(2026), optIn: rnd() < 0.8, groupIds,
        revision: 0, registeredAt: '', steps: 1,
      };
      user.registeredAt = await append(tenantId, [
        { type: 'UserRegistered', data: { userId, name: sealed(user.name), devices, consent: user.consent, optIn: user.optIn, groupIds } },
      ]);
      sim.users.set(`${tenantId}:${userId}`, user);
    }
  }

  const users = [...sim.users.values()];
  for (let op = 0; op < (options.operations ?? 300); op++) {
    const u = pick(users);
    const { tenantId, userId } = u;
    const roll = rnd();
    if (roll < 0.08) {
      const notificationId = `n${op}`;
      const target =
        rnd() < 0.5
          ? ({ kind: 'group', groupId: pick(tenantGroups[tenantId]!) } as const)
          : ({ kind: 'users', userIds: [userId, pick(users.filter((x) => x.tenantId === tenantId)).userId, userId] } as const);
      const requestedAt = new Date(T0 + (clock + 1) * 1000).toISOString();
      await append(tenantId, [
        { type: 'NotificationRequested', data: { notificationId, text: `hello ${op}`, target, idempotencyKey: null, requestHash: 'cc', requestedAt, deadline: requestedAt } },
      ]);
      sim.notifications.push({ tenantId, notificationId, requestedAt });
      if (target.kind === 'users') for (const id of new Set(target.userIds)) sim.users.get(`${tenantId}:${id}`)!.steps += 1;
      continue;
    }
    const events: AnyEvent[] = [];
    if (roll < 0.35) {
      // UpdateUser with a new set of groups: leaves and joins in one append.
      const next = tenantGroups[tenantId]!.filter(() => rnd() < 0.5);
      for (const g of u.groupIds.filter((g) => !next.includes(g))) events.push({ type: 'UserLeftGroup', data: { userId, groupId: g } });
      for (const g of next.filter((g) => !u.groupIds.includes(g))) events.push({ type: 'UserJoinedGroup', data: { userId, groupId: g } });
      u.groupIds = [...u.groupIds.filter((g) => next.includes(g)), ...next.filter((g) => !u.groupIds.includes(g))];
    } else if (roll < 0.5) {
      const d = newDevice(userId);
      events.push({ type: 'DeviceAdded', data: { userId, device: d } });
      u.devices.push(d);
    } else if (roll < 0.62 && u.devices.length > 0) {
      const old = pick(u.devices);
      const d = { ...old, address: sealed(`changed-${old.deviceId}-${op}`) };
      events.push({ type: 'DeviceChanged', data: { userId, device: d } });
      u.devices = u.devices.map((x) => (x.deviceId === d.deviceId ? d : x));
    } else if (roll < 0.72 && u.devices.length > 0) {
      const old = pick(u.devices);
      events.push({ type: 'DeviceRemoved', data: { userId, deviceId: old.deviceId } });
      u.devices = u.devices.filter((x) => x !== old);
    } else if (roll < 0.8) {
      u.name = `${u.name}'`;
      events.push({ type: 'UserRenamed', data: { userId, name: sealed(u.name) } });
    } else if (roll < 0.9) {
      u.optIn = !u.optIn;
      events.push({ type: 'OptInChanged', data: { userId, optIn: u.optIn } });
    } else {
      u.consent = consentFrom(2026 + Math.floor(rnd() * 3));
      events.push({ type: 'ConsentPeriodChanged', data: { userId, consent: u.consent } });
    }
    if (events.length === 0) continue;
    await append(tenantId, events);
    u.revision += events.length;
    u.steps += events.length;
  }
  return sim;
};
