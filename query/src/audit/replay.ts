import type { EventStore } from '#platform/event-store/port';
import { SHREDDED, type PersonalDataCipher, type UserKey } from '#platform/crypto/personal-data';
import { ChainVerifier, type ChainReport } from '#platform/event-store/chain';
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

/** Opens every sealed string in `value` with the user's key; a destroyed key reads as "[shredded]". */
const openAll = (value: unknown, cipher: PersonalDataCipher, key: UserKey | null): unknown => {
  if (typeof value === 'string') {
    if (!value.startsWith('pd1.')) return value;
    if (!key) return SHREDDED;
    try {
      return cipher.open(key, value as never);
    } catch {
      return SHREDDED;
    }
  }
  if (Array.isArray(value)) return value.map((v) => openAll(v, cipher, key));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, openAll(v, cipher, key)]));
  return value;
};

/** How a replay shows a credential or a signing secret: never opened, not even for an auditor. */
export const SECRET = '[secret]';

/** Fields that hold a secret sealed with a tenant's own key, by event type. */
const SECRET_FIELDS: Readonly<Partial<Record<AnyEvent['type'], string>>> = {
  ProviderConfigured: 'credentials',
  WebhookEndpointRegistered: 'secret',
};

export const toAuditRecord = async (e: RecordedEvent<AnyEvent>, cipher: PersonalDataCipher): Promise<AuditRecord> => {
  const secretField = SECRET_FIELDS[e.type];
  const data: unknown = secretField ? { ...(e.data as object), [secretField]: SECRET } : e.data;
  const userId = (e.data as { userId?: unknown }).userId;
  const sealed = typeof userId === 'string' && JSON.stringify(data).includes('"pd1.');
  const key = sealed ? await cipher.keyFor(userKeyId(e.metadata.tenantId, userId as string), { create: false }) : null;
  return {
    position: e.position,
    at: e.metadata.at,
    streamName: e.streamName,
    revision: e.revision,
    type: e.type,
    actor: e.metadata.actor,
    requestId: e.metadata.requestId,
    prevHash: e.metadata.prevHash ?? null,
    data: sealed ? openAll(data, cipher, key) : data,
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

/** Checks one tenant's hash chain from the start and reports the first break. */
export const verifyTenantChain = async (eventStore: EventStore, tenantId: string, onProgress?: (checked: number) => void): Promise<ChainReport> => {
  const verifier = new ChainVerifier(tenantId);
  let after = 0;
  let checked = 0;
  for (;;) {
    const page = await eventStore.readAll({ after, maxCount: PAGE, tenantId });
    for (const e of page) verifier.add(e);
    checked += page.length;
    onProgress?.(checked);
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.position;
  }
  return verifier.report(await eventStore.chainHead(tenantId));
};
