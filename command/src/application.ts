import type { CommandContext } from './context';
import { OperatorCommands } from './operator/commands';
import { TenantCommands } from './tenant/commands';
import { UserCommands, type UserEraser } from './user/commands';
import { GroupCommands } from './group/commands';
import { NotificationCommands, type AdmissionEstimator } from './notification/commands';
import { WebhookCommands } from './webhook/commands';
import type { WebhookUrlPolicy } from '#schema/webhooks';
import { IntegrationCommands } from './integration/commands';
import { ReceiptCommands } from './receipt/commands';

export type CommandDeps = CommandContext & Readonly<{
  /** Destroys users' data (the expiry role's shredder), for the right to erasure. */
  eraser: UserEraser;
  admission?: AdmissionEstimator;
  /** Which webhook URLs are accepted (default: https only). */
  webhookUrls?: WebhookUrlPolicy;
}>;

/** The write side: one set of use cases per aggregate. */
export type Commands = Readonly<{
  operator: OperatorCommands;
  tenants: TenantCommands;
  users: UserCommands;
  groups: GroupCommands;
  notifications: NotificationCommands;
  webhooks: WebhookCommands;
  integrations: IntegrationCommands;
  receipts: ReceiptCommands;
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
    webhooks: new WebhookCommands(deps),
    integrations: new IntegrationCommands(deps),
    receipts: new ReceiptCommands(deps),
  };
};

export type { Actor, CommandContext } from './context';
export type { RegisterUserInput, UpdateUserInput, DeviceInput, ConsentInput, UserEraser, UserRef } from './user/commands';
export type { SendNotificationInput, AdmissionEstimator } from './notification/commands';
export type { RegisterTenantInput } from './tenant/commands';
