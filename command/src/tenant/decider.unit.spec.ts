import { describe, it } from 'vitest';
import type { TenantEvent } from '#schema/events';
import type { TenantCommand } from '#schema/commands';
import { DeciderSpecification } from '../decider-spec';
import { MAX_ACTIVE_KEYS, tenantDecider } from './decider';

const now = new Date('2026-06-01T00:00:00Z');
const spec = DeciderSpecification.for(tenantDecider);
const cmd = (c: Omit<TenantCommand, 'now'>): TenantCommand => ({ ...c, now }) as TenantCommand;
const registered: TenantEvent = { type: 'TenantRegistered', data: { tenantId: 'acme', name: 'Acme', deliveryDeadlineMinutes: 15 } };
const issued = (keyId: string): TenantEvent => ({
  type: 'ApiKeyIssued',
  data: { tenantId: 'acme', keyId, name: 'k', scopes: ['read'], secretHash: 'h', issuedAt: now.toISOString() },
});

describe('tenant decider', () => {
  it('registers a tenant', () =>
    spec.given([]).when(cmd({ type: 'RegisterTenant', data: { tenantId: 'acme', name: ' Acme ', deliveryDeadlineMinutes: 15 } })).then([registered]));
  it('registers once', () =>
    spec.given([registered]).when(cmd({ type: 'RegisterTenant', data: { tenantId: 'acme', name: 'Acme', deliveryDeadlineMinutes: 15 } })).thenThrows('CONFLICT', /tenant acme is already registered/));
  it.each([9, 31])('rejects a %i-minute deadline', (m) =>
    spec.given([]).when(cmd({ type: 'RegisterTenant', data: { tenantId: 'acme', name: 'Acme', deliveryDeadlineMinutes: m } })).thenThrows('BAD_USER_INPUT', /between 10 and 30 minutes/));
  it('changes the deadline', () =>
    spec.given([registered]).when(cmd({ type: 'ChangeDeliveryDeadline', data: { deliveryDeadlineMinutes: 30 } })).then([{ type: 'DeliveryDeadlineChanged', data: { tenantId: 'acme', deliveryDeadlineMinutes: 30 } }]));
  it('records no change of deadline to the same value', () =>
    spec.given([registered]).when(cmd({ type: 'ChangeDeliveryDeadline', data: { deliveryDeadlineMinutes: 15 } })).thenNothingHappens());
  it('changes no deadline of an unknown tenant', () =>
    spec.given([]).when(cmd({ type: 'ChangeDeliveryDeadline', data: { deliveryDeadlineMinutes: 20 } })).thenThrows('NOT_FOUND'));
  it('keeps 90 days of delivery history until told otherwise, then records the change once', () => {
    spec.given([registered]).when(cmd({ type: 'ChangeDeliveryHistory', data: { deliveryHistoryDays: 90 } })).thenNothingHappens();
    const changed: TenantEvent = { type: 'DeliveryHistoryChanged', data: { tenantId: 'acme', deliveryHistoryDays: 7 } };
    spec.given([registered]).when(cmd({ type: 'ChangeDeliveryHistory', data: { deliveryHistoryDays: 7 } })).then([changed]);
    spec.given([registered, changed]).when(cmd({ type: 'ChangeDeliveryHistory', data: { deliveryHistoryDays: 7 } })).thenNothingHappens();
  });
  it.each([0, 3651, 2.5, Number.NaN])('rejects a delivery history of %s days', (days) =>
    spec.given([registered]).when(cmd({ type: 'ChangeDeliveryHistory', data: { deliveryHistoryDays: days } })).thenThrows('BAD_USER_INPUT', /deliveryHistoryDays: .*(between 1 and 3650 days|whole number of days)/));
  it('changes no delivery history of an unknown tenant', () =>
    spec.given([]).when(cmd({ type: 'ChangeDeliveryHistory', data: { deliveryHistoryDays: 30 } })).thenThrows('NOT_FOUND'));
  it('issues a key with de-duplicated scopes and the issue time', () =>
    spec.given([registered]).when(cmd({ type: 'IssueApiKey', data: { keyId: 'k1', name: 'k', scopes: ['read', 'read'], secretHash: 'h' } })).then([issued('k1')]));
  it('rejects a key id in use', () =>
    spec.given([registered, issued('k1')]).when(cmd({ type: 'IssueApiKey', data: { keyId: 'k1', name: 'k', scopes: ['read'], secretHash: 'h' } })).thenThrows('CONFLICT'));
  it('rejects unknown scopes', () =>
    spec.given([registered]).when(cmd({ type: 'IssueApiKey', data: { keyId: 'k1', name: 'k', scopes: ['root' as never], secretHash: 'h' } })).thenThrows('BAD_USER_INPUT', /unknown scope "root"/));
  it(`allows at most ${MAX_ACTIVE_KEYS} active keys, counting only unrevoked ones`, () => {
    const many = Array.from({ length: MAX_ACTIVE_KEYS }, (_, i) => issued(`k${i}`));
    spec.given([registered, ...many]).when(cmd({ type: 'IssueApiKey', data: { keyId: 'x', name: 'k', scopes: ['read'], secretHash: 'h' } })).thenThrows('CONFLICT', /100 active API keys, the limit is 100/);
    spec
      .given([registered, ...many, { type: 'ApiKeyRevoked', data: { tenantId: 'acme', keyId: 'k0' } }])
      .when(cmd({ type: 'IssueApiKey', data: { keyId: 'k1', name: 'k', scopes: ['read'], secretHash: 'h' } }))
      .thenThrows('CONFLICT', /already exists/);
  });
  it('revokes a key once', () => {
    spec.given([registered, issued('k1')]).when(cmd({ type: 'RevokeApiKey', data: { keyId: 'k1' } })).then([{ type: 'ApiKeyRevoked', data: { tenantId: 'acme', keyId: 'k1' } }]);
    spec.given([registered, issued('k1'), { type: 'ApiKeyRevoked', data: { tenantId: 'acme', keyId: 'k1' } }]).when(cmd({ type: 'RevokeApiKey', data: { keyId: 'k1' } })).thenNothingHappens();
  });
  it('revokes no unknown key', () => spec.given([registered]).when(cmd({ type: 'RevokeApiKey', data: { keyId: 'nope' } })).thenThrows('NOT_FOUND', /API key nope/));
});
