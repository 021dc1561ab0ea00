import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SandboxInstance } from './instance';
import { sendText, type HttpHandler } from './http';
import { smsRefusal } from './twilio';

/**
 * Amazon SNS Query API, the part an SMS sender uses: `POST /` form `Action=Publish` with
 * PhoneNumber + Message (and MessageAttributes), SigV4-signed; XML answers as SNS gives them
 * (PublishResponse / ErrorResponse with Type, Code, Message). The sandbox checks the access key
 * id in the signature's Credential scope and that a signature is present; it does not recompute
 * the HMAC. A String message attribute named `deliveryId` is recorded as the delivery id.
 */
export type SnsContext = { accessKeyId: string };

const NS = 'http://sns.amazonaws.com/doc/2010-03-31/';
const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function errorXml(type: 'Sender' | 'Receiver', code: string, message: string): string {
  return `<ErrorResponse xmlns="${NS}"><Error><Type>${type}</Type><Code>${code}</Code><Message>${xml(message)}</Message></Error><RequestId>${crypto.randomUUID()}</RequestId></ErrorResponse>`;
}

function attributes(form: URLSearchParams): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 1; ; i++) {
    const name = form.get(`MessageAttributes.entry.${i}.Name`);
    if (name === null) return out;
    const value = form.get(`MessageAttributes.entry.${i}.Value.StringValue`);
    if (value !== null) out.set(name, value);
  }
}

export function snsHandler(inst: SandboxInstance, ctx: SnsContext): HttpHandler {
  const reply = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) =>
    inst.later(() => sendText(res, status, body, { 'content-type': 'text/xml', ...headers }));

  return (req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    const receivedAt = Date.now();
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/') {
      sendText(res, 404, errorXml('Sender', 'InvalidAction', 'Only POST / is served'), { 'content-type': 'text/xml' });
      return;
    }
    const v = inst.gate();
    if (v.kind === 'hang') return;
    if (v.kind === 'outage') {
      reply(res, 503, errorXml('Receiver', 'ServiceUnavailable', 'Service is unavailable'), { 'retry-after': String(v.retryAfterSeconds) });
      return;
    }
    const auth = req.headers.authorization ?? '';
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/[^/]+\/sns\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/.exec(auth);
    if (!m) {
      inst.counters.unauthorized++;
      reply(res, 403, errorXml('Sender', 'IncompleteSignature', 'Request must contain a signature that conforms to AWS standards'));
      return;
    }
    if (m[1] !== ctx.accessKeyId) {
      inst.counters.unauthorized++;
      reply(res, 403, errorXml('Sender', 'InvalidClientTokenId', 'The security token included in the request is invalid.'));
      return;
    }
    if (v.kind === 'ratelimited') {
      reply(res, 429, errorXml('Sender', 'Throttled', 'Rate exceeded'), { 'retry-after': String(v.retryAfterSeconds) });
      return;
    }
    const form = new URLSearchParams(body.toString('utf8'));
    const invalid = (code: string, message: string) => {
      inst.counters.invalid++;
      reply(res, 400, errorXml('Sender', code, message));
    };
    if (form.get('Action') !== 'Publish') return invalid('InvalidAction', `The action ${form.get('Action') ?? ''} is not valid for this endpoint.`);
    const message = form.get('Message');
    const phone = form.get('PhoneNumber');
    if (!message) return invalid('ValidationError', "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null");
    if (!phone) {
      if (form.get('TopicArn') || form.get('TargetArn')) return invalid('NotFound', 'Topic does not exist');
      return invalid('InvalidParameter', 'Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter');
    }
    if (message.length > 1600) return invalid('InvalidParameter', 'Invalid parameter: Message too long');
    if (v.kind === 'error') {
      reply(res, 500, errorXml('Receiver', 'InternalError', 'An internal service error has occurred'));
      return;
    }
    const refused = smsRefusal(inst, phone);
    if (refused) {
      inst.counters.permanent++;
      reply(res, 400, errorXml('Sender', 'InvalidParameter', `Invalid parameter: PhoneNumber Reason: ${phone} is not valid to publish to`));
      return;
    }
    const deliveryId = attributes(form).get('deliveryId');
    inst.later(() => {
      const id = crypto.randomUUID();
      inst.record({ id, instance: inst.name, address: phone, text: message, receivedAt, at: Date.now(), ...(deliveryId !== undefined ? { deliveryId } : {}) });
      sendText(
        res,
        200,
        `<PublishResponse xmlns="${NS}"><PublishResult><MessageId>${id}</MessageId></PublishResult><ResponseMetadata><RequestId>${crypto.randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`,
        { 'content-type': 'text/xml', 'x-amzn-requestid': crypto.randomUUID() },
      );
    });
  };
}
