import { streams } from '#schema/streams';
import type { DeliveryRef, ReceiptStatus } from '#schema/events';
import { handleCommand } from '../handler';
import { metadataOf, type CommandContext } from '../context';
import { receiptDecider } from './decider';

export type ReceiptInput = Readonly<{
  tenantId: string;
  notificationId: string;
  requestedPosition: number;
  requestedAt: string;
  delivery: DeliveryRef;
  provider: string;
  status: ReceiptStatus;
  providerStatus: string;
  errorCode: string | null;
}>;

/**
 * Receipts from providers' callbacks, after their signatures were verified. Each delivery has
 * its own small stream, so a callback the provider sends twice is recorded once.
 */
export class ReceiptCommands {
  constructor(private readonly ctx: CommandContext) {}

  /** True when the receipt was new. */
  async record(receipt: ReceiptInput, requestId: string): Promise<boolean> {
    const result = await handleCommand(this.ctx.eventStore, streams.receipt(receipt.tenantId, receipt.delivery.deliveryId), receiptDecider,
      { type: 'RecordReceipt', data: receipt, now: this.ctx.clock.now() },
      metadataOf(this.ctx, receipt.tenantId, { keyId: `provider:${receipt.provider}`, requestId }));
    return result.appended.length > 0;
  }
}
