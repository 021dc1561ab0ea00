import type { CollectionSpec } from '#platform/read-store/port';
import { declaredCollection, type AnyReadModel } from './read-model';
import { groups } from './groups/evolve';
import { integrations } from './integrations/evolve';
import { notifications } from './notifications/evolve';
import { tenants } from './tenants/evolve';
import { timeline } from './timeline/evolve';
import { users } from './users/evolve';

export const allReadModels: readonly AnyReadModel[] = [tenants, users, groups, notifications, timeline, integrations];

/** What a read-only process (the query role) declares before it queries: the runner's specs. */
export const allCollections: readonly CollectionSpec[] = allReadModels.map((m) => declaredCollection(m.collection));

export type { ReadModel, AnyReadModel } from './read-model';
export { checkpointName } from './read-model';
