import type { Cursor, Page, ReadStore } from '#platform/read-store/port';
import { TENANTS, type TenantDocument } from './document';

export const getTenant = (store: ReadStore, tenantId: string): Promise<TenantDocument | null> =>
  store.get<TenantDocument>(TENANTS, tenantId);

/** Every tenant by id. */
export const listTenants = (
  store: ReadStore,
  options: Readonly<{ first: number; after?: Cursor | null }>,
): Promise<Page<TenantDocument>> =>
  store.find<TenantDocument>(TENANTS, {}, { limit: options.first, ...(options.after ? { after: options.after } : {}) });
