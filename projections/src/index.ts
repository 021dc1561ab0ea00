import type { CollectionSpec } from '#platform/read-store/port';
import { declaredCollection, type AnyReadModel } from './read-model';
import { groups } from './groups/evolve';
import { integrations } from './integrations/evolve';
import { notifications } from './notifications/evolve';
import { tenants } from './tenants/evolve';
import { timeline } from './timeline/evolve';
import { users } from './users/evolve';

/**
 * Runners, each with its own subscription filtered by its models' types: who may receive
 * (tenants, users, groups, integrations) stays at the head of the log whatever the flood of
 * delivery events; so does each send's progress (a document a send, updated once an event), while
 * the timeline (a document a delivery, the heavy one) works through the flood on its own.
 */
export const audienceReadModels: readonly AnyReadModel[] = [tenants, users, groups, integrations];
export const progressReadModels: readonly AnyReadModel[] = [notifications];
export const timelineReadModels: readonly AnyReadModel[] = [timeline];
export const activityReadModels: readonly AnyReadModel[] = [...progressReadModels, ...timelineReadModels];
export const runnerGroups: Readonly<Record<string, readonly AnyReadModel[]>> = { audience: audienceReadModels, progress: progressReadModels, timeline: timelineReadModels };
export const allReadModels: readonly AnyReadModel[] = [...audienceReadModels, ...activityReadModels];

/** What a read-only process (the query role) declares before it queries: the runner's specs. */
export const allCollections: readonly CollectionSpec[] = allReadModels.map((m) => declaredCollection(m.collection));

export type { ReadModel, AnyReadModel } from './read-model';
export { checkpointName } from './read-model';
