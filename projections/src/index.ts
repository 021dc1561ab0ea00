import type { AnyReadModel } from './read-model';
import { groups } from './groups/evolve';
import { notifications } from './notifications/evolve';
import { tenants } from './tenants/evolve';
import { timeline } from './timeline/evolve';
import { users } from './users/evolve';

export const allReadModels: readonly AnyReadModel[] = [tenants, users, groups, notifications, timeline];

export type { ReadModel, AnyReadModel } from './read-model';
export { checkpointName } from './read-model';
