import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { credentialId } from './credentials';
import type { SandboxInstance } from './instance';
import { twilioSignature } from './receipts';
import { basicAuth, E164, nextId, sendJson, type HttpHandler } from './http';
import type { PermanentKind } from './types';

/**
 * Twilio Programmable Messaging: `POST /2010-04-01/Accounts/{sid}/Messages.json`, HTTP basic auth
 * (AccountSid:AuthToken), form body To / From (or MessagingServiceSid) / Body, 201 with the
 * Message resource, Twilio's error JSON `{code, message, more_info, status}` (21211 invalid
 * number, 21610 unsubscribed, 21604/21602/21603 missing fields, 21617 too long, 20003 auth,
 * 20429 too many requests). Twilio's magic test numbers are honoured (+15005550001 invalid,
 * +15005550004 unsubscribed, ...). A `deliveryId` query parameter on StatusCallback is recorded.
 * Accounts are the instance's registered credentials: an auth token (basic AccountSid:AuthToken)
 * or an API key (basic SK…:secret, the AccountSid in the path). Status callbacks are sent as
 * Twilio sends them: form posts signed with the account's auth token (X-Twilio-Signature).
 */
const twilioError = (status: number, code: number, message: string) => ({
  code,
  message,
  more_info: `https://www.twilio.com/docs/errors/${code}`,
  status,
});

/** Twilio's test-credential magic numbers, plus the sandbox's refused list. */
const MAGIC: Record<string, [number, string]> = {
  '+15005550001': [21211, "The 'To' number +15005550001 is not a valid phone number."],
  '+15005550002': [21612, "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone number via SMS."],
  '+15005550003': [21408, 'Permission to send an SMS has not been enabled for the region indicated by the \'To\' number: +15005550003.'],
  '+15005550004': [21610, 'Attempt to send to unsubscribed recipient'],
  '+15005550009': [21614, "'To' number +15005550009 is not a valid mobile number"],
};

/** The SMS refusal rules shared by the Twilio and SNS instances. */
export function smsRefusal(inst: SandboxInstance, to: string): { kind: PermanentKind; code: number; message: string } | undefined {
  const listed = inst.listedFailure(to);
  if (listed === 'unregistered') return { kind: listed, code: 21610, message: 'Attempt to send to unsubscribed recipient' };
  if (listed === 'invalid' || !E164.test(to)) return { kind: 'invalid', code: 21211, message: `The 'To' number ${to} is not a valid phone number.` };
  const magic = MAGIC[to];
  if (magic) return { kind: magic[0] === 21610 ? 'unregistered' : 'invalid', code: magic[0], message: magic[1] };
  return undefined;
}

const MESSAGES_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;

/** Twilio's error codes for the final statuses a receipt failure stands for. */
const STATUS_ERROR: Record<'undelivered' | 'failed', string> = { undelivered: '30005', failed: '30008' };

type Authenticated = { credential: string; accountSid: string; signingToken: string | undefined };

function authenticate(inst: SandboxInstance, req: IncomingMessage, pathSid: string): Authenticated | undefined {
  const auth = basicAuth(req);
  if (auth === undefined) return undefined;
  // Callbacks are signed with the account's auth token, whichever credential sent the message.
  const accountToken = (sid: string) => inst.credential(credentialId.twilio(sid), 'twilioAuthToken')?.authToken;
  if (auth.user.startsWith('SK')) {
    const key = inst.credential(credentialId.twilioApiKey(pathSid, auth.user), 'twilioApiKey');
    if (key === undefined || key.apiKeySecret !== auth.pass) return undefined;
    return { credential: key.id, accountSid: key.accountSid, signingToken: accountToken(key.accountSid) ?? key.authToken };
  }
  const account = inst.credential(credentialId.twilio(auth.user), 'twilioAuthToken');
  if (account === undefined || account.authToken !== auth.pass) return undefined;
  return { credential: account.id, accountSid: account.accountSid, signingToken: account.authToken };
}

type StatusReceipt = {
  url: string;
  signingToken: string | undefined;
  params: Record<string, string>;
  to: string;
};

/** `sent`, then delivered / undelivered after another delay; a failed message reports only `failed`, as Twilio's never went out. */
async function sendStatusCallbacks(inst: SandboxInstance, r: StatusReceipt): Promise<void> {
  const outcome = inst.receiptOutcome(r.to);
  const statuses = outcome === 'failed' ? ['failed'] : ['sent', outcome === 'undelivered' ? 'undelivered' : 'delivered'];
  const steps = inst.receipts.sequence();
  for (const status of statuses) {
    if (!(await steps.wait(inst.faults().receiptDelayMs))) return;
    const params: Record<string, string> = { ...r.params, MessageStatus: status, SmsStatus: status };
    if (status === 'undelivered' || status === 'failed') params.ErrorCode = STATUS_ERROR[status];
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'i-twilio-idempotency-token': crypto.randomUUID() };
    if (r.signingToken !== undefined) headers['x-twilio-signature'] = twilioSignature(r.signingToken, r.url, params);
    await steps.post(r.url, new URLSearchParams(params).toString(), headers);
  }
}

export function twilioHandler(inst: SandboxInstance): HttpHandler {
  const reply = (res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>) =>
    inst.later(() => sendJson(res, status, body, headers));

  return (req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    const receivedAt = Date.now();
    const url = (req.url ?? '').split('?')[0]!;
    const pathSid = MESSAGES_PATH.exec(url)?.[1];
    if (req.method !== 'POST' || pathSid === undefined) {
      sendJson(res, 404, twilioError(404, 20404, `The requested resource ${url} was not found`));
      return;
    }
    const v = inst.gate();
    if (v.kind === 'hang') return;
    if (v.kind === 'outage') {
      reply(res, 503, twilioError(503, 20503, 'Service unavailable'), { 'retry-after': String(v.retryAfterSeconds) });
      return;
    }
    const auth = authenticate(inst, req, pathSid);
    if (auth === undefined) {
      inst.counters.unauthorized++;
      reply(res, 401, twilioError(401, 20003, 'Authenticate'));
      return;
    }
    if (pathSid !== auth.accountSid) {
      inst.counters.unauthorized++;
      reply(res, 404, twilioError(404, 20404, `The requested resource ${url} was not found`));
      return;
    }
    if (v.kind === 'ratelimited') {
      reply(res, 429, twilioError(429, 20429, 'Too Many Requests'), { 'retry-after': String(v.retryAfterSeconds) });
      return;
    }
    const form = new URLSearchParams(body.toString('utf8'));
    const to = form.get('To');
    const from = form.get('From');
    const text = form.get('Body');
    const invalid = (code: number, message: string) => {
      inst.counters.invalid++;
      reply(res, 400, twilioError(400, code, message));
    };
    if (!to) return invalid(21604, "A 'To' phone number is required.");
    if (!from && !form.get('MessagingServiceSid')) return invalid(21603, "A 'From' phone number is required.");
    if (!text && !form.get('MediaUrl') && !form.get('ContentSid')) return invalid(21602, 'Message body is required.');
    if (text && text.length > 1600) return invalid(21617, 'The concatenated message body exceeds the 1600 character limit.');
    const validity = form.get('ValidityPeriod');
    if (validity !== null && !(/^\d{1,5}$/.test(validity) && Number(validity) >= 1 && Number(validity) <= 36000)) {
      return invalid(21624, 'Invalid Validity Period value');
    }
    if (v.kind === 'error') {
      if (Math.random() < 0.5) reply(res, 500, twilioError(500, 20500, 'An internal server error has occurred'));
      else reply(res, 503, twilioError(503, 20503, 'Service unavailable'), { 'retry-after': String(v.retryAfterSeconds) });
      return;
    }
    const refused = smsRefusal(inst, to);
    if (refused) {
      inst.counters.permanent++;
      reply(res, 400, twilioError(400, refused.code, refused.message));
      return;
    }
    let deliveryId: string | undefined;
    const callback = form.get('StatusCallback');
    if (callback) {
      try {
        deliveryId = new URL(callback).searchParams.get('deliveryId') ?? undefined;
      } catch {
        return invalid(21609, 'Invalid StatusCallback');
      }
    }
    const messagingServiceSid = form.get('MessagingServiceSid');
    inst.later(() => {
      const sid = 'SM' + nextId().padStart(32, '0');
      const now = new Date().toUTCString();
      inst.record({
        id: sid,
        instance: inst.name,
        address: to,
        text: text ?? '',
        receivedAt,
        at: Date.now(),
        credential: auth.credential,
        ...(deliveryId !== undefined ? { deliveryId } : {}),
        ...(validity !== null ? { validityPeriod: Number(validity) } : {}),
        ...(callback ? { statusCallback: callback } : {}),
      });
      // sandboxIntegrations points StatusCallback at the instance itself only to carry the delivery id.
      if (callback && new URL(callback).origin !== new URL(inst.endpoint.url).origin) {
        void sendStatusCallbacks(inst, {
          url: callback,
          signingToken: auth.signingToken,
          to,
          params: {
            MessageSid: sid,
            SmsSid: sid,
            AccountSid: auth.accountSid,
            To: to,
            ...(from ? { From: from } : {}),
            ...(messagingServiceSid ? { MessagingServiceSid: messagingServiceSid } : {}),
            ApiVersion: '2010-04-01',
          },
        });
      }
      sendJson(res, 201, {
        account_sid: auth.accountSid,
        api_version: '2010-04-01',
        body: text ?? '',
        date_created: now,
        date_sent: null,
        date_updated: now,
        direction: 'outbound-api',
        error_code: null,
        error_message: null,
        from: from ?? null,
        messaging_service_sid: messagingServiceSid,
        num_media: '0',
        num_segments: String(Math.max(1, Math.ceil((text ?? '').length / 153))),
        price: null,
        price_unit: 'USD',
        sid,
        status: 'queued',
        subresource_uris: { media: `/2010-04-01/Accounts/${auth.accountSid}/Messages/${sid}/Media.json` },
        to,
        uri: `/2010-04-01/Accounts/${auth.accountSid}/Messages/${sid}.json`,
      });
    });
  };
}
