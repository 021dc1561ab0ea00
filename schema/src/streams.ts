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
  /** A delivery's receipts from its provider: the first final one (delivered, bounced) is decided once. */
  receipt: (tenantId: string, deliveryId: string) => `receipt-${tenantId}.${deliveryId}`,
  /** A tenant's provider integrations, or the platform defaults' (owner `platform`). */
  integrations: (owner: string) => `integrations-${owner}`,
  /** A tenant's webhook endpoints. */
  webhooks: (tenantId: string) => `webhooks-${tenantId}`,
} as const;

/** The id under which a user's data key is kept in the key vault. */
export const userKeyId = (tenantId: string, userId: string): string => `${tenantId}:${userId}`;

/**
 * The id of a tenant's own data key (its provider credentials and webhook secrets; `platform` for
 * the platform defaults'). '~' begins no tenant id, so it never collides with a user's key id.
 */
export const tenantKeyId = (owner: string): string => `~${owner}`;
