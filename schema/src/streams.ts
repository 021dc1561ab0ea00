/**
 * Stream names. Tenant ids never contain '.', so `<kind>-<tenantId>.<id>` is unambiguous, and the
 * kind prefix lets a reader filter the global log by aggregate without parsing data.
 */
export const streams = {
  operator: () => 'operator',
  tenant: (tenantId: string) => `tenant-${tenantId}`,
  user: (tenantId: string, userId: string) => `user-${tenantId}.${userId}`,
  group: (tenantId: string, groupId: string) => `group-${tenantId}.${groupId}`,
  notification: (tenantId: string, notificationId: string) => `notification-${tenantId}.${notificationId}`,
  /** One per notification and bus partition: a single worker writes each. */
  deliveries: (tenantId: string, notificationId: string, partition: number) => `deliveries-${tenantId}.${notificationId}.${partition}`,
  provider: (name: string) => `provider-${name}`,
} as const;

/** The id under which a user's data key is kept in the key vault. */
export const userKeyId = (tenantId: string, userId: string): string => `${tenantId}:${userId}`;
