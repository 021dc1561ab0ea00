import type { CollectionSpec } from '#platform/read-store/port';
import { declaredCollection, type AnyReadModel } from './read-model';
import { groups } from './groups/evolve';
import { integrations } from './integrations/evolve';
import { notifications } from './notifications/evolve';
import { tenants } from './tenants/evolve';
import { timeline } from './timeline/evolve';
import { users } from './users/evolve';

/**
 * Two runners, each with its own subscription: who may receive (tenants, users, groups,
 * integrations) stays at the head of the log whatever the flood of delivery events the activity
 * (notifications' progress, the timeline) is working through, so a new send waits for the former
 * only.
 */
export const audienceReadModels: readonly AnyReadModel[] = [tenants, users, groups, integrations];
export const activityReadModels: readonly AnyReadModel[] = [notifications, timeline];
export const allReadModels: readonly AnyReadModel[] = [...audienceReadModels, ...activityReadModels];

/** What a read-only process (the query role) declares before it queries: the runner's specs. */
export const allCollections: readonly CollectionSpec[] = allReadModels.map((m) => declaredCollection(m.collection));

export type { ReadModel, AnyReadModel } from './read-model';
export { checkpointName } from './read-model';
