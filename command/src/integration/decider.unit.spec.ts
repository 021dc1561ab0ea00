import { describe, it } from 'vitest';
import type { IntegrationEvent, ProviderConfigured, Sealed } from '#schema/events';
import type { IntegrationCommand } from '#schema/commands';
import type { IntegrationSpec } from '#schema/integrations';
import { DeciderSpecification } from '../decider-spec';
import { MAX_INTEGRATIONS } from '#schema/integrations';
import { integrationDecider } from './decider';

const now = new Date('2026-12-01T00:00:00Z');
const spec = DeciderSpecification.for(integrationDecider);
const cmd = (c: Omit<IntegrationCommand, 'now'>): IntegrationCommand => ({ ...c, now }) as IntegrationCommand;
const apns = (name: string, overrides: Partial<IntegrationSpec> = {}): IntegrationSpec => ({
  name,
  channel: 'ios',
  priority: 0,
  settings: { vendor: 'apns', keyId: 'ABCDE12345', teamId: 'TEAM123456', topic: 'com.acme.app', environment: 'production' },
  quotaPerSecond: null,
  endpoint: null,
  ca: null,
  ...overrides,
});
const configure = (s: IntegrationSpec, fingerprint = 'f1', sealed = 'pd1.a') =>
  cmd({ type: 'ConfigureProvider', data: { owner: 'acme', spec: s, credentials: sealed as Sealed, fingerprint, hint: '…abcd' } });
const configured = (s: IntegrationSpec, fingerprint = 'f1', sealed = 'pd1.a'): ProviderConfigured => ({
  type: 'ProviderConfigured',
  data: { owner: 'acme', name: s.name, vendor: s.settings.vendor, channel: s.channel, priority: s.priority, settings: s.settings, quotaPerSecond: s.quotaPerSecond, endpoint: s.endpoint, ca: s.ca, credentials: sealed as Sealed, fingerprint, hint: '…abcd' },
});
const rejected: IntegrationEvent = { type: 'ProviderCredentialsRejected', data: { owner: 'acme', name: 'main', fingerprint: 'f1', code: 'InvalidProviderToken' } };

describe('integration decider', () => {
  it('configures an integration', () => spec.given([]).when(configure(apns('main'))).then([configured(apns('main'))]));
  it('records nothing when the same configuration is given again, though sealed afresh', () =>
    spec.given([configured(apns('main'))]).when(configure(apns('main'), 'f1', 'pd1.b')).thenNothingHappens());
  it('replaces an integration whose credentials or settings changed', () => {
    spec.given([configured(apns('main'))]).when(configure(apns('main'), 'f2', 'pd1.b')).then([configured(apns('main'), 'f2', 'pd1.b')]);
    spec.given([configured(apns('main'))]).when(configure(apns('main', { priority: 3 }))).then([configured(apns('main', { priority: 3 }))]);
  });
  it('records the same credentials again once they were rejected (the admin says they work now)', () =>
    spec.given([configured(apns('main')), rejected]).when(configure(apns('main'))).then([configured(apns('main'))]));
  it(`refuses a ${MAX_INTEGRATIONS + 1}th integration`, () =>
    spec.given(Array.from({ length: MAX_INTEGRATIONS }, (_, i) => configured(apns(`p${i}`)))).when(configure(apns('one-more'))).thenThrows('BAD_USER_INPUT', /limit is 50/));
  it('removes an integration, and says when there is none', () => {
    spec.given([configured(apns('main'))]).when(cmd({ type: 'RemoveProvider', data: { owner: 'acme', name: 'main' } })).then([{ type: 'ProviderRemoved', data: { owner: 'acme', name: 'main' } }]);
    spec.given([]).when(cmd({ type: 'RemoveProvider', data: { owner: 'acme', name: 'main' } })).thenThrows('NOT_FOUND');
  });
  it('records a credential rejection once, and none for credentials since replaced', () => {
    const reject = (fingerprint: string) => cmd({ type: 'RejectProviderCredentials', data: { owner: 'acme', name: 'main', fingerprint, code: 'InvalidProviderToken' } });
    spec.given([configured(apns('main'))]).when(reject('f1')).then([rejected]);
    spec.given([configured(apns('main')), rejected]).when(reject('f1')).thenNothingHappens();
    spec.given([configured(apns('main')), configured(apns('main'), 'f2')]).when(reject('f1')).thenNothingHappens();
    spec.given([]).when(reject('f1')).thenNothingHappens();
  });
});
