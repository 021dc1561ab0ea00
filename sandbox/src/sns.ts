import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { credentialId } from './credentials';
import type { SandboxInstance } from './instance';
import { sendText, type HttpHandler } from './http';
import { smsRefusal } from './twilio';

/**
 * Amazon SNS Query API, the part an SMS sender uses: `POST /` form `Action=Publish` with
 * PhoneNumber + Message (and MessageAttributes), SigV4-signed; XML answers as SNS gives them
 * (PublishResponse / ErrorResponse with Type, Code, Message). The signature is verified as AWS
 * does: the access key id must be a registered credential (else 403 InvalidClientTokenId) and the
 * SigV4 HMAC, recomputed from the headers it names and the body with that key's secret, must match
 * (else 403 SignatureDoesNotMatch). A String message attribute named `deliveryId` is recorded as
 * the delivery id.
 */

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

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

const hmac = (key: crypto.BinaryLike, data: string) => crypto.createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: crypto.BinaryLike) => crypto.createHash('sha256').update(data).digest('hex');
const awsEncode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

/** The SigV4 signature of a request, as the signer computed it over the headers it names. */
function sigV4(req: IncomingMessage, body: Buffer, secret: string, scope: { date: string; region: string; service: string }, signedHeaders: string): string {
  const url = new URL(req.url ?? '/', 'http://sns');
  const query = [...url.searchParams]
    .map(([k, v]) => [awsEncode(k), awsEncode(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headers = signedHeaders
    .split(';')
    .map((h) => `${h}:${String(req.headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const payloadHash = typeof req.headers['x-amz-content-sha256'] === 'string' ? req.headers['x-amz-content-sha256'] : sha256(body);
  const canonical = [req.method, url.pathname, query, headers, signedHeaders, payloadHash].join('\n');
  const credentialScope = `${scope.date}/${scope.region}/${scope.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', String(req.headers['x-amz-date'] ?? ''), credentialScope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac('AWS4' + secret, scope.date), scope.region), scope.service), 'aws4_request');
  return crypto.createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
}

export function snsHandler(inst: SandboxInstance): HttpHandler {
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
    const m = AUTHORIZATION.exec(req.headers.authorization ?? '');
    if (!m || m[4] !== 'sns' || !m[5]!.split(';').includes('host')) {
      inst.counters.unauthorized++;
      reply(res, 403, errorXml('Sender', 'IncompleteSignature', 'Request must contain a signature that conforms to AWS standards'));
      return;
    }
    const key = inst.credential(credentialId.sns(m[1]!), 'snsAccessKey');
    if (key === undefined) {
      inst.counters.unauthorized++;
      reply(res, 403, errorXml('Sender', 'InvalidClientTokenId', 'The security token included in the request is invalid.'));
      return;
    }
    const expected = sigV4(req, body, key.secretAccessKey, { date: m[2]!, region: m[3]!, service: m[4]! }, m[5]!);
    if (!crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(m[6]!))) {
      inst.counters.unauthorized++;
      reply(res, 403, errorXml('Sender', 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'));
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
      inst.record({ id, instance: inst.name, address: phone, text: message, receivedAt, at: Date.now(), credential: key.id, ...(deliveryId !== undefined ? { deliveryId } : {}) });
      sendText(
        res,
        200,
        `<PublishResponse xmlns="${NS}"><PublishResult><MessageId>${id}</MessageId></PublishResult><ResponseMetadata><RequestId>${crypto.randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`,
        { 'content-type': 'text/xml', 'x-amzn-requestid': crypto.randomUUID() },
      );
    });
  };
}
