import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import type { ReadStore } from '#platform/read-store/port';
import { NOTIFICATIONS, notificationDocId, type NotificationDocument } from '#projections/notifications/document';
import { deliveryHistoryDaysOf } from '#projections/tenants/document';
import { listTenants } from '#projections/tenants/queries';
import { TIMELINE } from '#projections/timeline/document';
import { listDeliveriesBefore } from '#projections/timeline/queries';

export type HistorySweepDeps = Readonly<{
  readStore: ReadStore;
  clock: Clock;
  logger: Logger;
  /** Entries read and removed per commit (default 500). */
  pageSize?: number;
}>;

const DAY_MS = 86_400_000;

/**
 * Keeps each tenant's per-delivery steps for its `deliveryHistoryDays`: older delivery entries
 * leave the timeline, a page per commit, oldest first. The notifications' counts stay (another
 * read model) and so does the log; so do the users' own entries and the erasure marks (not
 * deliveries). An entry whose notification has not completed stays: the planner counts the reach
 * of a send from its entries when it completes.
 *
 * Safe beside the projection runner: deletes are by id and idempotent; an entry the runner writes
 * again afterwards (a rebuild, a late receipt) is old too, and the next sweep removes it again.
 */
export class DeliveryHistorySweeper {
  constructor(private readonly deps: HistorySweepDeps) {}

  /** One pass over every tenant; `keepGoing` is asked between pages. Resolves with the entries removed. */
  async sweep(keepGoing: () => boolean = () => true): Promise<number> {
    const now = this.deps.clock.now().getTime();
    let removed = 0;
    let after: string | null = null;
    do {
      const tenants = await listTenants(this.deps.readStore, { first: 100, after });
      for (const tenant of tenants.items) {
        if (!keepGoing()) return removed;
        const before = new Date(now - deliveryHistoryDaysOf(tenant) * DAY_MS).toISOString();
        removed += await this.sweepTenant(tenant.tenantId, before, keepGoing);
      }
      after = tenants.next;
    } while (after);
    return removed;
  }

  private async sweepTenant(tenantId: string, before: string, keepGoing: () => boolean): Promise<number> {
    const { readStore, logger } = this.deps;
    let removed = 0;
    let after: string | null = null;
    for (;;) {
      const page = await listDeliveriesBefore(readStore, tenantId, before, { first: this.deps.pageSize ?? 500, after });
      const notificationIds = [...new Set(page.items.map((e) => e.notificationId!))];
      const completed = new Set(
        (await readStore.getMany<NotificationDocument>(NOTIFICATIONS, notificationIds.map((n) => notificationDocId(tenantId, n))))
          .filter((n) => n.status === 'COMPLETED')
          .map((n) => n.notificationId),
      );
      const ids = page.items.filter((e) => completed.has(e.notificationId!)).map((e) => e.id);
      if (ids.length > 0) {
        await readStore.commit({ checkpoints: [], changes: ids.map((id) => ({ op: 'delete' as const, collection: TIMELINE, id })) });
        removed += ids.length;
      }
      if (!page.next || !keepGoing()) break;
      // Past what stays (notifications still running) rather than over it again.
      after = page.next;
      await nextTurn();
    }
    if (removed > 0) logger.info({ tenantId, removed, before }, 'delivery history: steps past the tenant history left the timeline');
    return removed;
  }
}
