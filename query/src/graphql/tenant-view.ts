import type * as G from '../../../schema/src/graphql/types';
import type { Scope } from '../../../schema/src/scopes';

type KeyRecord = Readonly<{ keyId: string; name: string; scopes: readonly Scope[]; issuedAt: string; revoked: boolean }>;
export type TenantRecord = Readonly<{
  tenantId: string;
  name: string;
  deliveryDeadlineMinutes: number;
  keys: Iterable<KeyRecord> | ReadonlyMap<string, Omit<KeyRecord, 'keyId'>>;
}>;

const keyList = (keys: TenantRecord['keys']): KeyRecord[] =>
  keys instanceof Map
    ? [...(keys as ReadonlyMap<string, Omit<KeyRecord, 'keyId'>>).entries()].map(([keyId, k]) => ({ keyId, ...k }))
    : [...(keys as Iterable<KeyRecord>)];

/** From the tenant aggregate (after a mutation) or the tenants read model (queries). */
export const tenantView = (t: TenantRecord | { status: string }): G.Tenant => {
  if (!('tenantId' in t)) throw new Error('tenant view of an unregistered tenant');
  return {
    tenantId: t.tenantId,
    name: t.name,
    deliveryDeadlineMinutes: t.deliveryDeadlineMinutes,
    apiKeys: keyList(t.keys).map((k) => ({
      keyId: k.keyId,
      name: k.name,
      scopes: [...k.scopes],
      issuedAt: new Date(k.issuedAt),
      revoked: k.revoked,
    })),
  };
};
