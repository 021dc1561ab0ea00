import type { CommandContext } from './context';
import { OperatorCommands } from './operator/commands';
import { TenantCommands } from './tenant/commands';
import { UserCommands, type UserEraser } from './user/commands';
import { GroupCommands } from './group/commands';
import { NotificationCommands, type AdmissionEstimator } from './notification/commands';

export type CommandDeps = CommandContext & Readonly<{
  /** Destroys users' data (the expiry role's shredder), for the right to erasure. */
  eraser: UserEraser;
  admission?: AdmissionEstimator;
}>;

/** The write side: one set of use cases per aggregate. */
export type Commands = Readonly<{
  operator: OperatorCommands;
  tenants: TenantCommands;
  users: UserCommands;
  groups: GroupCommands;
  notifications: NotificationCommands;
}>;

export const createCommands = (deps: CommandDeps): Commands => {
  const tenants = new TenantCommands(deps);
  const users = new UserCommands(deps);
  return {
    operator: new OperatorCommands(deps),
    tenants,
    users,
    groups: new GroupCommands({ ...deps, users }),
    notifications: new NotificationCommands({ ...deps, tenants }),
  };
};

export type { Actor, CommandContext } from './context';
export type { RegisterUserInput, UpdateUserInput, DeviceInput, ConsentInput, UserEraser, UserRef } from './user/commands';
export type { SendNotificationInput, AdmissionEstimator } from './notification/commands';
export type { RegisterTenantInput } from './tenant/commands';
