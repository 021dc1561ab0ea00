import type { DeviceKind, NotificationTarget } from '#schema/events';
import type { ReadStore } from '#platform/read-store/port';
import { USERS, userDocId, type UserDocument } from '#projections/users/document';
import { listShardMembers, listUsers } from '#projections/users/queries';
import { NOTIFICATIONS, type NotificationDocument } from '#projections/notifications/document';
import { SHARDS } from '#schema/sharding';
import { getGroup } from '#projections/groups/queries';
import type { Channel } from './providers/port';
import { recipientDevices } from './eligibility';

export type ChannelEstimate = Readonly<{
  channel: DeviceKind;
  deliveries: number;
  capacityPerSecond: number;
  seconds: number;
  /** The tenant's own deliveries on this channel still to send in sends due before this one. */
  ahead: number;
}>;

export type AdmissionEstimate = Readonly<{
  recipients: number;
  deliveries: number;
  byChannel: readonly ChannelEstimate[];
  /** Deliveries of every tenant's sends queued or in flight and due before this one. */
  ahead: number;
  /** The slowest of: each channel's share of the tenant's integrations, and the whole cluster's rate. */
  seconds: number;
  deadlineSeconds: number;
  fitsDeadline: boolean;
}>;

/** Shards sampled, and members taken from each: a sample spread over the group by the users' hash. */
const SAMPLE_SHARDS = 8;
const PER_SHARD = 64;

type Load = Readonly<{ total: number; byChannel: Readonly<Partial<Record<DeviceKind, number>>> }>;

/** The sends accepted and not finished, by deadline (earliest first). */
export type SendsUnderWay = () => Promise<readonly NotificationDocument[]>;

/** Every send under way, read from the notifications read model. */
export const sendsUnderWay = (readStore: ReadStore): SendsUnderWay => async () => {
  const all: NotificationDocument[] = [];
  for (const status of ['REQUESTED', 'PLANNING', 'DELIVERING'] as const) {
    let after: string | undefined;
    do {
      const page = await readStore.find<NotificationDocument>(NOTIFICATIONS, { status }, { limit: 500, sort: { field: 'deadline', direction: 'asc' }, ...(after ? { after } : {}) });
      all.push(...page.items);
      after = page.next ?? undefined;
    } while (after);
  }
  return all.sort((a, b) => (a.deadline < b.deadline ? -1 : a.deadline > b.deadline ? 1 : 0));
};

/**
 * The same list, read at most once per `ttlMs` however many sends are requested meanwhile, and
 * read again behind the requests: once a list is known, a send is estimated with it at once
 * while a fresher one is read for the next sends. The API's admission otherwise read every send
 * under way for each new one (quadratic in a burst), and then made one send in each period wait
 * for the read; the read model it reads lags the log by more than this anyway. A long list is read
 * less often: never more than a tenth of the time (a thousand sends under way, each document
 * holding its reach sketch, took 30-60 ms to read on the cluster).
 */
export const cachedSendsUnderWay = (source: SendsUnderWay, ttlMs: number, now: () => number = Date.now): SendsUnderWay => {
  let known: Readonly<{ sends: readonly NotificationDocument[]; staleAt: number }> | null = null;
  let reading: Promise<readonly NotificationDocument[]> | null = null;
  const read = (): Promise<readonly NotificationDocument[]> => {
    if (!reading) {
      const started = now();
      reading = source().then(
        (sends) => {
          known = { sends, staleAt: started + Math.max(ttlMs, READ_SHARE * (now() - started)) };
          reading = null;
          return sends;
        },
        (e: unknown) => {
          // A failed read is not kept: the next call reads again.
          reading = null;
          throw e;
        },
      );
    }
    return reading;
  };
  return () => {
    if (!known) return read();
    if (now() >= known.staleAt) read().catch(() => undefined);
    return Promise.resolve(known.sends);
  };
};

/** The view is read again no sooner than this many times its last read's duration. */
const READ_SHARE = 10;

/**
 * Per key (an owner's integrations), a value read at most once per `ttlMs`: the admission's view
 * of a tenant's quotas may be as old as its view of the sends under way, and a send then reads
 * none of the owners' streams. At most `maxKeys` are kept (keys are authenticated tenants).
 */
export const cachedPerKey = <T>(source: (key: string) => Promise<T>, ttlMs: number, now: () => number = Date.now, maxKeys = 10_000): ((key: string) => Promise<T>) => {
  const entries = new Map<string, Readonly<{ at: number; value: Promise<T> }>>();
  return (key) => {
    const t = now();
    const hit = entries.get(key);
    if (hit && t - hit.at < ttlMs) return hit.value;
    if (!hit && entries.size >= maxKeys) entries.clear();
    const value = source(key);
    const entry = { at: t, value };
    entries.set(key, entry);
    // A failed read is not kept.
    value.catch(() => {
      if (entries.get(key) === entry) entries.delete(key);
    });
    return value;
  };
};

/**
 * What the sends already accepted and due before `deadline` still have to deliver: every tenant's
 * (they share the workers), and this tenant's per channel (they share its integrations). A send
 * still being planned counts what its admission estimated, or what is planned if more.
 */
const loadAhead = (sends: readonly NotificationDocument[], tenantId: string, deadline: string): { all: number; own: Load } => {
  let all = 0;
  let ownTotal = 0;
  const own: Partial<Record<DeviceKind, number>> = {};
  for (const n of sends) {
    // By deadline: only the sends due before this one count.
    if (n.deadline > deadline) break;
    const p = n.progress;
    const estimated = n.admission?.deliveries ?? 0;
    const remaining = Math.max(0, Math.max(p.total, estimated) - p.succeeded - p.failed - p.expired);
    all += remaining;
    if (n.tenantId !== tenantId) continue;
    ownTotal += remaining;
    for (const c of n.admission?.byChannel ?? []) {
      const counts = p.byChannel[c.channel];
      const done = counts ? counts.succeeded + counts.failed + counts.expired : 0;
      own[c.channel] = (own[c.channel] ?? 0) + Math.max(0, Math.max(counts?.total ?? 0, c.deliveries) - done);
    }
  }
  return { all, own: { total: ownTotal, byChannel: own } };
};

/** A sample spread over the group: a few shards at random, the first members of each. */
const sampleGroup = async (readStore: ReadStore, tenantId: string, groupId: string, random: () => number): Promise<UserDocument[]> => {
  const shards = new Set<number>();
  while (shards.size < Math.min(SAMPLE_SHARDS, SHARDS)) shards.add(Math.floor(random() * SHARDS));
  const pages = await Promise.all([...shards].map((shard) => listShardMembers(readStore, tenantId, groupId, shard, { first: PER_SHARD })));
  return pages.flatMap((p) => p.items);
};

/**
 * Whether a send can finish before its deadline: the recipient count (group size or the listed
 * users), the device mix of a sample of them (eligible users only), and the configured provider
 * quotas. A send that cannot finish is still accepted; the estimate says so.
 */
export const estimateAdmission = async (
  readStore: ReadStore,
  /** Messages a second the tenant's chain for a channel can take. */
  capacity: (channel: Channel) => number,
  /** Deliveries a second the delivery workers together sustain (their CPU, not the providers). */
  clusterRatePerSecond: number,
  tenantId: string,
  target: NotificationTarget,
  deadlineMinutes: number,
  now: Date,
  random: () => number = Math.random,
  sends: SendsUnderWay = sendsUnderWay(readStore),
): Promise<AdmissionEstimate> => {
  let recipients: number;
  let sample: readonly UserDocument[];
  if (target.kind === 'group') {
    recipients = (await getGroup(readStore, tenantId, target.groupId))?.memberCount ?? 0;
    // A small group is its own sample; a large one is sampled across shards, not its first members.
    sample = recipients <= SAMPLE_SHARDS * PER_SHARD
      ? (await listUsers(readStore, tenantId, { groupId: target.groupId, first: SAMPLE_SHARDS * PER_SHARD })).items
      : await sampleGroup(readStore, tenantId, target.groupId, random);
  } else {
    sample = await readStore.getMany<UserDocument>(USERS, target.userIds.map((u) => userDocId(tenantId, u)));
    recipients = target.userIds.length;
  }
  const at = now.toISOString();
  const perChannel = new Map<DeviceKind, number>();
  for (const u of sample) {
    const devices = recipientDevices(u, at);
    if (devices.ok) for (const d of devices.value) perChannel.set(d.kind, (perChannel.get(d.kind) ?? 0) + 1);
  }
  const scale = sample.length === 0 ? 0 : recipients / sample.length;
  const deadlineSeconds = deadlineMinutes * 60;
  const ahead = loadAhead(await sends(), tenantId, new Date(now.getTime() + deadlineSeconds * 1000).toISOString());
  const byChannel: ChannelEstimate[] = [...perChannel].map(([channel, n]) => {
    const deliveries = Math.round(n * scale);
    const capacityPerSecond = capacity(channel);
    const before = ahead.own.byChannel[channel] ?? 0;
    return { channel, deliveries, capacityPerSecond, ahead: before, seconds: capacityPerSecond > 0 ? (before + deliveries) / capacityPerSecond : Infinity };
  });
  const deliveries = byChannel.reduce((n, c) => n + c.deliveries, 0);
  const cluster = clusterRatePerSecond > 0 ? (ahead.all + deliveries) / clusterRatePerSecond : Infinity;
  const seconds = Math.max(0, cluster, ...byChannel.map((c) => c.seconds));
  return {
    recipients,
    deliveries,
    byChannel,
    ahead: ahead.all,
    seconds: Math.round(seconds * 10) / 10,
    deadlineSeconds,
    fitsDeadline: seconds <= deadlineSeconds,
  };
};
