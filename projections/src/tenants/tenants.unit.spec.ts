import { describe, expect, it } from 'vitest';
import { eventLog, ReadModelSpecification } from '../read-model.test-support';
import { tenantsReadModel } from './evolve';
import type { TenantDocument } from './document';

const spec = ReadModelSpecification.for(tenantsReadModel);

describe('tenants read model', () => {
  const setup = () => {
    // Tenant events are decided by an operator key, on the tenant's own stream.
    const log = eventLog({ tenantId: 'acme', actor: 'op1' });
    const registered = log.record({ type: 'TenantRegistered', data: { tenantId: 'acme', name: 'Acme Inc.', deliveryDeadlineMinutes: 15 } });
    const acme: TenantDocument = { id: 'acme', tenantId: 'acme', name: 'Acme Inc.', deliveryDeadlineMinutes: 15, deliveryHistoryDays: 90, registeredAt: log.atPosition(1), keys: [] };
    return { log, registered, acme };
  };

  it('registers a tenant under its own id', () => {
    const { registered, acme } = setup();
    spec.given([]).when([registered]).thenAll([acme]);
  });

  it('changes the delivery deadline', () => {
    const { log, registered, acme } = setup();
    spec
      .given([registered])
      .when([log.record({ type: 'DeliveryDeadlineChanged', data: { tenantId: 'acme', deliveryDeadlineMinutes: 30 } })])
      .then({ acme: { ...acme, deliveryDeadlineMinutes: 30 } });
  });

  it('keeps 90 days of delivery history from registration, and shows a change', () => {
    const { log, registered, acme } = setup();
    spec
      .given([registered])
      .when([log.record({ type: 'DeliveryHistoryChanged', data: { tenantId: 'acme', deliveryHistoryDays: 7 } })])
      .then({ acme: { ...acme, deliveryHistoryDays: 7 } });
  });

  it('lists issued and revoked keys, never their secret hash', () => {
    const { log, registered, acme } = setup();
    const issue = (keyId: string) =>
      log.record({ type: 'ApiKeyIssued', data: { tenantId: 'acme', keyId, name: `key ${keyId}`, scopes: ['read', 'users:write'], secretHash: 'ab'.repeat(32), issuedAt: `issued ${keyId}` } });
    const when = [issue('k1'), issue('k2'), log.record({ type: 'ApiKeyRevoked', data: { tenantId: 'acme', keyId: 'k1' } })];
    spec
      .given([registered])
      .when(when)
      .then({
        acme: {
          ...acme,
          keys: [
            { keyId: 'k1', name: 'key k1', scopes: ['read', 'users:write'], issuedAt: 'issued k1', revoked: true, revokedAt: log.atPosition(4) },
            { keyId: 'k2', name: 'key k2', scopes: ['read', 'users:write'], issuedAt: 'issued k2', revoked: false, revokedAt: null },
          ],
        },
      });
    expect(JSON.stringify([...spec.given([registered]).when(when).collection().values()])).not.toContain('abab');
  });

  it('keeps the first revocation time', () => {
    const { log, registered, acme } = setup();
    const issued = log.record({ type: 'ApiKeyIssued', data: { tenantId: 'acme', keyId: 'k1', name: 'ci', scopes: ['admin'], secretHash: 'x', issuedAt: '2026-03-01T09:02:00.000Z' } });
    const revoke = () => log.record({ type: 'ApiKeyRevoked', data: { tenantId: 'acme', keyId: 'k1' } });
    spec
      .given([registered, issued, revoke()])
      .when([revoke()])
      .then({ acme: { ...acme, keys: [{ keyId: 'k1', name: 'ci', scopes: ['admin'], issuedAt: '2026-03-01T09:02:00.000Z', revoked: true, revokedAt: log.atPosition(3) }] } });
  });

  it('ignores operator keys and events of unknown tenants', () => {
    const { log } = setup();
    spec
      .given([])
      .when([
        log.record({ type: 'OperatorKeyIssued', data: { keyId: 'op2', secretHash: 'x' } }),
        log.record({ type: 'ApiKeyRevoked', data: { tenantId: 'nope', keyId: 'k1' } }),
      ])
      .thenAll([]);
  });
});
