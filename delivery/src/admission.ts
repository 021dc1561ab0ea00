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
  /** Sends accepted before that fit their deadlines and would not if this one went ahead of them. */
  delays: number;
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
 * holding its reach sketch, took 30-60 ms to read on the cluster). A list older than two periods
 * is not answered with: after a quiet while, the next send waits for a fresh one.
 */
export const cachedSendsUnderWay = (source: SendsUnderWay, ttlMs: number, now: () => number = Date.now): SendsUnderWay => {
  let known: Readonly<{ sends: readonly NotificationDocument[]; staleAt: number; expiresAt: number }> | null = null;
  let reading: Promise<readonly NotificationDocument[]> | null = null;
  const read = (): Promise<readonly NotificationDocument[]> => {
    if (!reading) {
      const started = now();
      reading = source().then(
        (sends) => {
          const period = Math.max(ttlMs, READ_SHARE * (now() - started));
          known = { sends, staleAt: started + period, expiresAt: started + 2 * period };
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
    const t = now();
    // Too old to answer with (no send came for a while): the sends accepted since must count.
    if (!known || t >= known.expiresAt) return read();
    if (t >= known.staleAt) read().catch(() => undefined);
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
 * A send whose admission said it could not finish in time is delivered best effort: behind every
 * send that fit (the workers rank it so), so it delays none of them, and counts ahead of none.
 */
export const isBestEffort = (n: Pick<NotificationDocument, 'admission'>): boolean => n.admission?.fitsDeadline === false;

/** What a send still has to deliver: what its admission estimated while it is being planned, or what is planned if more. */
const remainingOf = (n: NotificationDocument): number => {
  const p = n.progress;
  return Math.max(0, Math.max(p.total, n.admission?.deliveries ?? 0) - p.succeeded - p.failed - p.expired);
};
const remainingOnChannel = (n: NotificationDocument): Partial<Record<DeviceKind, number>> => {
  const out: Partial<Record<DeviceKind, number>> = {};
  for (const c of n.admission?.byChannel ?? []) {
    const counts = n.progress.byChannel[c.channel];
    const done = counts ? counts.succeeded + counts.failed + counts.expired : 0;
    out[c.channel] = Math.max(0, Math.max(counts?.total ?? 0, c.deliveries) - done);
  }
  return out;
};

/**
 * What the sends already accepted and due before `deadline` still have to deliver: every tenant's
 * (they share the workers), and this tenant's per channel (they share its integrations).
 */
const loadAhead = (sends: readonly NotificationDocument[], tenantId: string, deadline: string): { all: number; own: Load } => {
  let all = 0;
  let ownTotal = 0;
  const own: Partial<Record<DeviceKind, number>> = {};
  for (const n of sends) {
    // By deadline: only the sends due before this one count.
    if (n.deadline > deadline) break;
    if (isBestEffort(n)) continue;
    const remaining = remainingOf(n);
    all += remaining;
    if (n.tenantId !== tenantId) continue;
    ownTotal += remaining;
    for (const [channel, left] of Object.entries(remainingOnChannel(n)) as [DeviceKind, number][]) own[channel] = (own[channel] ?? 0) + left;
  }
  return { all, own: { total: ownTotal, byChannel: own } };
};

/**
 * How many sends that fit, due after `deadline`, this one's deliveries would push past their own
 * deadlines: earliest deadline first puts it ahead of them, and an admission is a promise kept
 * to those admitted before. A send that would miss anyway (the service fell behind its estimate)
 * is not counted against the newcomer. Cluster-wide at the workers' rate, and on this tenant's
 * own channels at their integrations' capacity.
 */
const delayed = (
  sends: readonly NotificationDocument[],
  tenantId: string,
  deadline: string,
  now: Date,
  ahead: { all: number; own: Load },
  added: { all: number; byChannel: ReadonlyMap<DeviceKind, number> },
  clusterRatePerSecond: number,
  capacity: (channel: Channel) => number,
): number => {
  let all = ahead.all;
  const own = new Map(Object.entries(ahead.own.byChannel) as [DeviceKind, number][]);
  let count = 0;
  for (const n of sends) {
    if (n.deadline <= deadline || isBestEffort(n)) continue;
    const slack = (Date.parse(n.deadline) - now.getTime()) / 1000;
    all += remainingOf(n);
    let pushed = clusterRatePerSecond > 0 && all / clusterRatePerSecond <= slack && (all + added.all) / clusterRatePerSecond > slack;
    if (n.tenantId === tenantId) {
      for (const [channel, left] of Object.entries(remainingOnChannel(n)) as [DeviceKind, number][]) {
        const before = (own.get(channel) ?? 0) + left;
        own.set(channel, before);
        const cap = capacity(channel);
        const extra = added.byChannel.get(channel) ?? 0;
        if (cap > 0 && extra > 0 && before / cap <= slack && (before + extra) / cap > slack) pushed = true;
      }
    }
    if (pushed) count++;
  }
  return count;
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
  const deadline = new Date(now.getTime() + deadlineSeconds * 1000).toISOString();
  const underWay = await sends();
  const ahead = loadAhead(underWay, tenantId, deadline);
  const byChannel: ChannelEstimate[] = [...perChannel].map(([channel, n]) => {
    const deliveries = Math.round(n * scale);
    const capacityPerSecond = capacity(channel);
    const before = ahead.own.byChannel[channel] ?? 0;
    return { channel, deliveries, capacityPerSecond, ahead: before, seconds: capacityPerSecond > 0 ? (before + deliveries) / capacityPerSecond : Infinity };
  });
  const deliveries = byChannel.reduce((n, c) => n + c.deliveries, 0);
  const cluster = clusterRatePerSecond > 0 ? (ahead.all + deliveries) / clusterRatePerSecond : Infinity;
  const seconds = Math.max(0, cluster, ...byChannel.map((c) => c.seconds));
  const delays = delayed(underWay, tenantId, deadline, now, ahead, { all: deliveries, byChannel: new Map(byChannel.map((c) => [c.channel, c.deliveries])) }, clusterRatePerSecond, capacity);
  return {
    recipients,
    deliveries,
    byChannel,
    ahead: ahead.all,
    delays,
    seconds: Math.round(seconds * 10) / 10,
    deadlineSeconds,
    fitsDeadline: seconds <= deadlineSeconds && delays === 0,
  };
};
