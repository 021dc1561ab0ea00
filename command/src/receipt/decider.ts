import type { RecordReceipt } from '#schema/commands';
import type { DeliveryReceipted, ReceiptStatus } from '#schema/events';

/** One delivery's receipts: the first final one (delivered or bounced) is the only one counted. */
export type ReceiptState = Readonly<{ final: ReceiptStatus | null; deferred: number }>;

/** Deferrals recorded per delivery at most: a provider retrying for days would otherwise grow it without bound. */
export const MAX_DEFERRALS = 10;

export const initialState = (): ReceiptState => ({ final: null, deferred: 0 });

export const decide = ({ data, now }: RecordReceipt, state: ReceiptState): DeliveryReceipted[] => {
  if (state.final !== null) return [];
  if (data.status === 'deferred' && state.deferred >= MAX_DEFERRALS) return [];
  return [{
    type: 'DeliveryReceipted',
    data: {
      notificationId: data.notificationId,
      requestedPosition: data.requestedPosition,
      requestedAt: data.requestedAt,
      deliveries: [{ ...data.delivery, provider: data.provider, status: data.status, providerStatus: data.providerStatus, ...(data.errorCode ? { errorCode: data.errorCode } : {}), at: now.toISOString() }],
    },
  }];
};

export const evolve = (state: ReceiptState, event: DeliveryReceipted): ReceiptState => {
  const status = event.data.deliveries[0]?.status;
  if (status === 'deferred') return { ...state, deferred: state.deferred + 1 };
  return status ? { ...state, final: status } : state;
};

export const receiptDecider = { decide, evolve, initialState };
