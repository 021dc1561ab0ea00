import type { EventStore } from '#platform/event-store/port';
import { isSealed, SHREDDED, type PersonalDataCipher } from '#platform/crypto/personal-data';
import { hasPersonalData, mapSealedFields } from '#schema/sealed';
import { ChainVerifier, type AnchoredHead, type ChainHead, type ChainKeys, type ChainReport } from '#platform/event-store/chain';
import type { AnyEvent, RecordedEvent } from '#schema/events';
import { userKeyId } from '#schema/streams';

export type AuditFilter = Readonly<{
  tenantId: string;
  userId?: string | null;
  notificationId?: string | null;
  /** ISO times, inclusive start, exclusive end, on the event's time. */
  from?: string | null;
  to?: string | null;
  /** Continue after this log position. */
  after?: number;
}>;

export type AuditRecord = Readonly<{
  position: number;
  at: string;
  streamName: string;
  revision: number;
  type: string;
  actor: string;
  requestId: string;
  prevHash: string | null;
  /** The event's data with sealed values opened, or "[shredded]" where the key is destroyed. */
  data: unknown;
}>;

const PAGE = 1000;

const concerns = (e: RecordedEvent<AnyEvent>, f: AuditFilter): boolean => {
  const data = e.data as Record<string, unknown>;
  if (f.userId != null) {
    const listed = e.type === 'NotificationRequested' && e.data.target.kind === 'users' && e.data.target.userIds.includes(f.userId);
    if (data['userId'] !== f.userId && !listed) return false;
  }
  if (f.notificationId != null && data['notificationId'] !== f.notificationId) return false;
  if (f.from != null && e.metadata.at < f.from) return false;
  if (f.to != null && e.metadata.at >= f.to) return false;
  return true;
};

/** How a replay shows a credential or a signing secret: never opened, not even for an auditor. */
export const SECRET = '[secret]';

/**
 * The event's data with its sealed fields opened (by event type: `SEALED_FIELDS`), secrets shown
 * as [secret], and every other value as it is: an id that happens to begin with `pd1.` is an id.
 */
export const toAuditRecord = async (e: RecordedEvent<AnyEvent>, cipher: PersonalDataCipher): Promise<AuditRecord> => {
  const userId = (e.data as { userId?: unknown }).userId;
  const key = hasPersonalData(e.type) && typeof userId === 'string'
    ? await cipher.keyFor(userKeyId(e.metadata.tenantId, userId), { create: false })
    : null;
  const data = mapSealedFields(e.type, e.data, (value, context, kind) => {
    if (kind === 'secret') return SECRET;
    if (!key || !isSealed(value)) return SHREDDED;
    try {
      return cipher.open(key, value, context);
    } catch {
      return SHREDDED;
    }
  });
  return {
    position: e.position,
    at: e.metadata.at,
    streamName: e.streamName,
    revision: e.revision,
    type: e.type,
    actor: e.metadata.actor,
    requestId: e.metadata.requestId,
    prevHash: e.metadata.prevHash ?? null,
    data,
  };
};

/**
 * A tenant's log, oldest first, read page by page: memory stays flat whatever the log's size.
 * Replaying after a user is shredded works: their values read "[shredded]", nothing throws.
 */
export async function* replayAudit(eventStore: EventStore, cipher: PersonalDataCipher, filter: AuditFilter): AsyncGenerator<AuditRecord> {
  let after = filter.after ?? 0;
  for (;;) {
    const page = await eventStore.readAll({ after, maxCount: PAGE, tenantId: filter.tenantId });
    for (const e of page) if (concerns(e, filter)) yield await toAuditRecord(e, cipher);
    if (page.length < PAGE) return;
    after = page[page.length - 1]!.position;
  }
}

export type VerifyOptions = Readonly<{
  onProgress?: (checked: number) => void;
  /** Chain keys: a head must carry a valid MAC (written by someone holding the master key). */
  keys?: ChainKeys | null;
  /** A checkpointed head the chain must still pass through (`audit verify --against`). */
  anchor?: AnchoredHead | null;
  /** How long a head without a MAC is read again, waiting for its writer's (default 2 s). */
  macWaitMs?: number;
}>;

export type TenantChainReport = ChainReport & Readonly<{
  /** The store's head, as compared with the log (null: none). */
  head: ChainHead | null;
  /** The time of the tenant's last event checked. */
  lastAt: string | null;
}>;

const MAC_WAIT_MS = 2_000;

/**
 * The tenant's head; with keys, one that carries a MAC if one comes within `macWaitMs`. On
 * PostgreSQL an append commits its head first and its writer authenticates it right after, so a
 * head read in between has none yet; one that stays without is reported as unauthenticated.
 */
const authenticatedHead = async (eventStore: EventStore, tenantId: string, o: VerifyOptions): Promise<ChainHead | null> => {
  let head = await eventStore.chainHead(tenantId);
  const until = Date.now() + (o.macWaitMs ?? MAC_WAIT_MS);
  while (o.keys && head && head.mac === null && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    head = await eventStore.chainHead(tenantId);
  }
  return head;
};

/**
 * Checks one tenant's hash chain from the start and reports the first break. On a live log the
 * head can move while the events are read: the events appended since are read too, up to the
 * head and not past it, so a head ahead of what was read is not taken for a break.
 */
export const verifyTenantChain = async (eventStore: EventStore, tenantId: string, options: VerifyOptions | ((checked: number) => void) = {}): Promise<TenantChainReport> => {
  const o: VerifyOptions = typeof options === 'function' ? { onProgress: options } : options;
  const verifier = new ChainVerifier(tenantId, o.anchor ?? null);
  let after = 0;
  let checked = 0;
  let lastAt: string | null = null;
  /** Reads on to the end of the log, or to `limit` events. */
  const read = async (limit: number): Promise<void> => {
    for (;;) {
      const maxCount = Math.min(PAGE, limit - checked);
      if (maxCount <= 0) return;
      const page = await eventStore.readAll({ after, maxCount, tenantId });
      for (const e of page) verifier.add(e);
      checked += page.length;
      if (page.length > 0) {
        after = page[page.length - 1]!.position;
        lastAt = page[page.length - 1]!.metadata.at;
      }
      o.onProgress?.(checked);
      if (page.length < maxCount) return;
    }
  };
  await read(Number.MAX_SAFE_INTEGER);
  const head = await authenticatedHead(eventStore, tenantId, o);
  if (head !== null && head.events !== null && head.events > checked) await read(head.events);
  return { ...verifier.report(head, o.keys ?? null), head, lastAt };
};
