import type { Scope } from '#schema/scopes';
import { DEFAULT_HISTORY_DAYS } from '#schema/values';
import type { CollectionSpec } from '#platform/read-store/port';

/** An API key as an operator may see it; the secret's hash stays in the tenant stream. */
export type ApiKeyEntry = Readonly<{
  keyId: string;
  name: string;
  scopes: readonly Scope[];
  issuedAt: string;
  revoked: boolean;
  revokedAt: string | null;
}>;

export type TenantDocument = Readonly<{
  /** The tenant id itself: tenants are not scoped by anything. */
  id: string;
  tenantId: string;
  name: string;
  deliveryDeadlineMinutes: number;
  /** Days its per-delivery steps stay in the timeline; absent on documents written before the setting (the default). */
  deliveryHistoryDays?: number;
  registeredAt: string;
  keys: readonly ApiKeyEntry[];
}>;

export const TENANTS = 'tenants';

/** The empty index lists every tenant by id, for operators. */
export const tenantsCollection: CollectionSpec = { name: TENANTS, indexes: [[]] };

/** A tenant's delivery history, in days; documents written before the setting have the default. */
export const deliveryHistoryDaysOf = (tenant: Readonly<{ deliveryHistoryDays?: number }>): number => tenant.deliveryHistoryDays ?? DEFAULT_HISTORY_DAYS;
