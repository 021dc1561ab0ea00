import type { NotificationTarget } from '#schema/events';

/**
 * What the planner puts on the bus for each partition when a notification is requested: its
 * slice, which the partition's owner plans page by page (as its queue drains, earliest deadline
 * first) and sends. The bus thus carries one small message per partition and send, however
 * large the audience.
 */
export type SliceJob = Readonly<{
  kind: 'slice';
  tenantId: string;
  notificationId: string;
  requestedPosition: number;
  requestedAt: string;
  deadline: string;
  target: NotificationTarget;
  /** Its admission said it could not finish in time: it is delivered behind every send that could. */
  bestEffort?: true;
}>;

/** Best-effort sends rank after every send that fit (a ms offset far past any deadline), among themselves by deadline. */
const BEST_EFFORT_RANK = 1e14;

/** The order in which the workers take a send's work: earliest deadline first, best effort last. */
export const rankOf = (job: Pick<SliceJob, 'deadline' | 'bestEffort'>): number => Date.parse(job.deadline) + (job.bestEffort ? BEST_EFFORT_RANK : 0);
