import { describe, it } from 'vitest';
import type { RecordReceipt } from '#schema/commands';
import type { DeliveryReceipted, ReceiptStatus } from '#schema/events';
import { DeciderSpecification } from '../decider-spec';
import { MAX_DEFERRALS, receiptDecider } from './decider';

const now = new Date('2026-12-01T00:00:05Z');
const spec = DeciderSpecification.for(receiptDecider);
const delivery = { deliveryId: 'd1', userId: 'u1', deviceId: 'dev1', channel: 'sms' as const };
const record = (status: ReceiptStatus): RecordReceipt => ({
  type: 'RecordReceipt',
  data: { tenantId: 'acme', notificationId: 'n1', requestedPosition: 7, requestedAt: '2026-12-01T00:00:00.000Z', delivery, provider: 'twilio', status, providerStatus: status === 'bounced' ? 'undelivered' : status, errorCode: status === 'bounced' ? '30005' : null },
  now,
});
const receipted = (status: ReceiptStatus): DeliveryReceipted => ({
  type: 'DeliveryReceipted',
  data: {
    notificationId: 'n1', requestedPosition: 7, requestedAt: '2026-12-01T00:00:00.000Z',
    deliveries: [{ ...delivery, provider: 'twilio', status, providerStatus: status === 'bounced' ? 'undelivered' : status, ...(status === 'bounced' ? { errorCode: '30005' } : {}), at: now.toISOString() }],
  },
});

describe('receipt decider', () => {
  it('records the first final receipt', () => spec.given([]).when(record('delivered')).then([receipted('delivered')]));
  it('records a final receipt once: a callback sent twice, or a late contradicting one, changes nothing', () => {
    spec.given([receipted('delivered')]).when(record('delivered')).thenNothingHappens();
    spec.given([receipted('bounced')]).when(record('delivered')).thenNothingHappens();
  });
  it('records deferrals before the final receipt, up to a bound', () => {
    spec.given([receipted('deferred')]).when(record('bounced')).then([receipted('bounced')]);
    spec.given(Array.from({ length: MAX_DEFERRALS }, () => receipted('deferred'))).when(record('deferred')).thenNothingHappens();
  });
});
