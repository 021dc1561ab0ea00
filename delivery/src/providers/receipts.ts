import { EventWebhook } from '@sendgrid/eventwebhook';
import twilio from 'twilio';
import { DEVICE_KINDS, type DeviceKind, type ReceiptStatus } from '#schema/events';

/**
 * Delivery receipts: what a provider reports after accepting a message. Each message carries a
 * receipt token (OutboundMessage.receipt), the provider echoes it (Twilio's status callback ?r=,
 * SendGrid's custom_args.r), and the token says which delivery the receipt is about. Ids only:
 * the token leaves the service, so it holds no personal data.
 */
export type ReceiptRef = Readonly<{
  tenantId: string;
  notificationId: string;
  partition: number;
  requestedPosition: number;
  requestedAt: string;
  deliveryId: string;
  userId: string;
  deviceId: string;
  channel: DeviceKind;
}>;

/** One receipt read from a provider's callback; `at` when the provider dated it. */
export type ProviderReceipt = Readonly<{
  ref: ReceiptRef;
  status: ReceiptStatus;
  /** The provider's own word: Twilio's MessageStatus, SendGrid's event. */
  providerStatus: string;
  /** Twilio's ErrorCode, SendGrid's SMTP status (x.y.z): codes, never the provider's text. */
  errorCode?: string;
  at?: string;
}>;

const VERSION = 1;
/** Longer tokens are refused before decoding: a receipt is a few hundred characters. */
const MAX_TOKEN = 2048;
const MAX_ID = 256;

/** A compact token: base64url of a JSON array, version first, in ReceiptRef's field order. */
export function encodeReceipt(ref: ReceiptRef): string {
  const row = [VERSION, ref.tenantId, ref.notificationId, ref.partition, ref.requestedPosition, ref.requestedAt, ref.deliveryId, ref.userId, ref.deviceId, ref.channel];
  return Buffer.from(JSON.stringify(row), 'utf8').toString('base64url');
}

const id = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID;
const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The reference a token holds, or null for anything that is not a token we made. */
export function decodeReceipt(token: unknown): ReceiptRef | null {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN || !/^[A-Za-z0-9_-]+$/.test(token)) return null;
  let row: unknown;
  try {
    row = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(row) || row.length !== 10 || row[0] !== VERSION) return null;
  const [, tenantId, notificationId, partition, requestedPosition, requestedAt, deliveryId, userId, deviceId, channel] = row as unknown[];
  if (!id(tenantId) || !id(notificationId) || !id(deliveryId) || !id(userId) || !id(deviceId)) return null;
  if (!count(partition) || !count(requestedPosition)) return null;
  if (typeof requestedAt !== 'string' || requestedAt.length > 40 || Number.isNaN(Date.parse(requestedAt))) return null;
  if (typeof channel !== 'string' || !(DEVICE_KINDS as readonly string[]).includes(channel)) return null;
  return { tenantId, notificationId, partition, requestedPosition, requestedAt, deliveryId, userId, deviceId, channel: channel as DeviceKind };
}

// ---- Twilio ---------------------------------------------------------------------------------

/**
 * Whether a status callback is Twilio's: X-Twilio-Signature over the full URL (as Twilio called
 * it, query included) and the POSTed form parameters, signed with the account's auth token. An
 * integration signed in with an API key cannot check this: Twilio signs with the auth token.
 */
export function verifyTwilioCallback(authToken: string, signature: string, fullUrl: string, params: Readonly<Record<string, string>>): boolean {
  if (!authToken || !signature) return false;
  try {
    return twilio.validateRequest(authToken, signature, fullUrl, { ...params });
  } catch {
    return false;
  }
}

const TWILIO_STATUS: Readonly<Record<string, ReceiptStatus | null>> = {
  delivered: 'delivered',
  undelivered: 'bounced',
  failed: 'bounced',
  // Still on its way: not a receipt.
  accepted: null,
  scheduled: null,
  queued: null,
  sending: null,
  sent: null,
};

/**
 * A status callback's receipt (`token` is its ?r= parameter), or null when it is not one:
 * delivered → delivered; undelivered, failed → bounced; queued, sending, sent → null.
 */
export function twilioReceipt(params: Readonly<Record<string, string | undefined>>, token: string | null | undefined): ProviderReceipt | null {
  const ref = decodeReceipt(token);
  const providerStatus = params.MessageStatus ?? params.SmsStatus;
  if (!ref || providerStatus === undefined) return null;
  const status = TWILIO_STATUS[providerStatus];
  if (!status) return null;
  const errorCode = params.ErrorCode;
  return { ref, status, providerStatus, ...(errorCode && /^\d{1,6}$/.test(errorCode) ? { errorCode } : {}) };
}

// ---- SendGrid -------------------------------------------------------------------------------

/**
 * Whether an event webhook POST is SendGrid's: ECDSA P-256 over timestamp + raw body (the bytes
 * as received, before any JSON parsing), with the verification key SendGrid shows (base64 DER).
 */
export function verifySendgridEvents(publicKeyBase64: string, rawBody: string | Buffer, signature: string, timestamp: string): boolean {
  if (!publicKeyBase64 || !signature || !timestamp) return false;
  try {
    const webhook = new EventWebhook();
    const key = webhook.convertPublicKeyToECDSA(`-----BEGIN PUBLIC KEY-----\n${publicKeyBase64}\n-----END PUBLIC KEY-----`);
    return webhook.verifySignature(key, rawBody, signature, timestamp);
  } catch {
    return false;
  }
}

const SENDGRID_STATUS: Readonly<Record<string, ReceiptStatus>> = {
  delivered: 'delivered',
  bounce: 'bounced',
  dropped: 'bounced',
  deferred: 'deferred',
};
const SMTP_STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;

/**
 * The receipts in an event webhook body (the parsed JSON array): each delivered, bounce, dropped
 * or deferred event that carries our `r` custom argument. Opens, clicks, processed and events
 * of mail we did not tag are left out.
 */
export function sendgridReceipts(body: unknown): ProviderReceipt[] {
  if (!Array.isArray(body)) return [];
  const out: ProviderReceipt[] = [];
  for (const e of body as unknown[]) {
    if (typeof e !== 'object' || e === null) continue;
    const { event, r, status: smtpStatus, timestamp } = e as Record<string, unknown>;
    if (typeof event !== 'string') continue;
    const status = SENDGRID_STATUS[event];
    const ref = status ? decodeReceipt(r) : null;
    if (!status || !ref) continue;
    const at = typeof timestamp === 'number' && Number.isFinite(timestamp) ? new Date(timestamp * 1000).toISOString() : undefined;
    out.push({
      ref,
      status,
      providerStatus: event,
      ...(typeof smtpStatus === 'string' && SMTP_STATUS.test(smtpStatus) ? { errorCode: smtpStatus } : {}),
      ...(at !== undefined ? { at } : {}),
    });
  }
  return out;
}
