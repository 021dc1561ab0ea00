import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { credentialId } from './credentials';
import type { SandboxInstance } from './instance';
import type { ReceiptFailure } from './types';
import { bearer, EMAIL, isObject, nextId, parseJson, sendJson, type HttpHandler } from './http';

/**
 * SendGrid v3 `POST /v3/mail/send`: bearer API key, 1 to 1000 personalizations (and at most 1000
 * recipients in all), from / subject / content checks, substitutions and custom_args applied per
 * personalization, 202 with X-Message-Id, and SendGrid's `{errors: [{message, field, help}]}`.
 * A refused address fails the whole request with 400 (as SendGrid does for invalid addresses),
 * with one error per address whose `field` names the personalization. API keys are the instance's
 * registered ones; accepted messages get signed event-webhook posts when their key has a webhook.
 */
type SgError = { message: string; field: string | null; help: string | null };
const err = (message: string, field: string | null = null, help: string | null = null): SgError => ({ message, field, help });

type Recipient = { email: string; text: string; deliveryId?: string; customArgs?: Record<string, string>; field: string };

function validate(body: unknown, refused: (email: string) => boolean): { recipients: Recipient[] } | { status: number; errors: SgError[] } {
  if (!isObject(body)) return { status: 400, errors: [err('Bad Request')] };
  const errors: SgError[] = [];
  const ps = body.personalizations;
  if (!Array.isArray(ps) || ps.length === 0) {
    return { status: 400, errors: [err('The personalizations field is required and must have at least one personalization.', 'personalizations', 'http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#-Personalizations-Errors')] };
  }
  if (ps.length > 1000) {
    return { status: 400, errors: [err('You may not have more than 1000 personalizations per API request.', 'personalizations')] };
  }
  const from = body.from;
  if (!isObject(from) || typeof from.email !== 'string' || !EMAIL.test(from.email)) {
    errors.push(err('The from email does not contain a valid address.', 'from.email'));
  }
  const templated = typeof body.template_id === 'string';
  const content = body.content;
  let text = '';
  if (!templated) {
    if (!Array.isArray(content) || content.length === 0) {
      errors.push(err('Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.', 'content'));
    } else {
      for (const [i, c] of content.entries()) {
        if (!isObject(c) || typeof c.type !== 'string' || typeof c.value !== 'string' || c.value.length === 0) {
          errors.push(err('The content value must be a string at least one character in length.', `content.${i}.value`));
        }
      }
      const plain = content.find((c) => isObject(c) && c.type === 'text/plain') ?? content[0];
      text = isObject(plain) && typeof plain.value === 'string' ? plain.value : '';
    }
  }
  const globalSubject = typeof body.subject === 'string' && body.subject.length > 0;
  const globalArgs = isObject(body.custom_args) ? body.custom_args : {};
  const recipients: Recipient[] = [];
  let total = 0;
  let missingSubject = false;
  for (const [i, p] of ps.entries()) {
    if (!isObject(p) || !Array.isArray(p.to) || p.to.length === 0) {
      errors.push(err('The to array is required for all personalization objects, and must have at least one email object with a valid email address.', `personalizations.${i}.to`));
      continue;
    }
    if (!globalSubject && !templated && !(typeof p.subject === 'string' && p.subject.length > 0)) missingSubject = true;
    let pText = text;
    if (isObject(p.substitutions)) {
      for (const [k, v] of Object.entries(p.substitutions)) if (typeof v === 'string' || typeof v === 'number') pText = pText.split(k).join(String(v));
    }
    const args = { ...globalArgs, ...(isObject(p.custom_args) ? p.custom_args : {}) };
    const deliveryId = typeof args.deliveryId === 'string' ? args.deliveryId : undefined;
    const customArgs = Object.keys(args).length === 0 ? undefined : Object.fromEntries(Object.entries(args).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    for (const [j, to] of (p.to as unknown[]).entries()) {
      total++;
      const field = `personalizations.${i}.to.${j}.email`;
      const email = isObject(to) && typeof to.email === 'string' ? to.email : '';
      if (!EMAIL.test(email) || refused(email)) {
        errors.push(err('Does not contain a valid address.', field, 'http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to'));
        continue;
      }
      recipients.push({ email, text: pText, field, ...(deliveryId !== undefined ? { deliveryId } : {}), ...(customArgs !== undefined ? { customArgs } : {}) });
    }
  }
  if (total > 1000) errors.push(err('The total number of recipients must be less than or equal to 1000.', 'personalizations'));
  if (missingSubject) {
    errors.push(err('The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.', 'subject'));
  }
  return errors.length > 0 ? { status: 400, errors } : { recipients };
}

/** Events that fall due within this window go out in one POST, as SendGrid batches them. */
const BATCH_WINDOW_MS = 20;

type SgEvent = Record<string, string | number>;

/** The event each receipt failure ends in, with the fields SendGrid gives it. */
const FINAL_EVENT: Record<'delivered' | 'bounce' | 'dropped' | 'deferred', SgEvent> = {
  delivered: { event: 'delivered', response: '250 2.0.0 OK' },
  bounce: {
    event: 'bounce',
    type: 'bounce',
    status: '5.1.1',
    reason: "550 5.1.1 The email account that you tried to reach does not exist.",
    bounce_classification: 'Invalid Address',
  },
  dropped: { event: 'dropped', reason: 'Bounced Address', status: '5.0.0' },
  deferred: { event: 'deferred', response: '451 4.3.0 Temporary server error, please try again later', attempt: '1' },
};

const finalEvent = (f: ReceiptFailure | undefined): keyof typeof FINAL_EVENT =>
  f === 'bounce' || f === 'dropped' || f === 'deferred' ? f : 'delivered';

/**
 * SendGrid's signed event webhook: the events of each API key's messages go, batched, to the URL
 * configured for that key, signed with the instance's ECDSA key (timestamp + body).
 */
class EventPoster {
  private readonly batches = new Map<string, SgEvent[]>();

  constructor(private readonly inst: SandboxInstance) {}

  /** processed after the receipt delay, then the outcome (delivered or the address's receipt failure) after another. */
  schedule(url: string, email: string, sgMessageId: string, customArgs: Record<string, string> | undefined): void {
    const delay = this.inst.faults().receiptDelayMs;
    const common = { ...customArgs, email, sg_message_id: sgMessageId, 'smtp-id': `<${sgMessageId}@sandbox.sendgrid.net>` };
    const event = (fields: SgEvent): SgEvent => ({
      ...common,
      timestamp: Math.floor(Date.now() / 1000),
      sg_event_id: crypto.randomBytes(16).toString('base64url'),
      ...fields,
    });
    this.inst.receipts.after(delay, () => {
      this.add(url, event({ event: 'processed' }));
      this.inst.receipts.after(delay, () => this.add(url, event(FINAL_EVENT[finalEvent(this.inst.receiptOutcome(email))])));
    });
  }

  private add(url: string, e: SgEvent): void {
    const pending = this.batches.get(url);
    if (pending !== undefined) return void pending.push(e);
    const batch = [e];
    this.batches.set(url, batch);
    this.inst.receipts.after(BATCH_WINDOW_MS, () => {
      this.batches.delete(url);
      const body = JSON.stringify(batch);
      const timestamp = String(Math.floor(Date.now() / 1000));
      void this.inst.receipts.post(
        url,
        body,
        {
          'content-type': 'application/json',
          'x-twilio-email-event-webhook-signature': this.inst.signEvents(timestamp, body),
          'x-twilio-email-event-webhook-timestamp': timestamp,
        },
        batch.length,
      );
    });
  }

  /** Batches not yet posted are dropped with the instance's pending receipts. */
  clear(): void {
    this.batches.clear();
  }
}

export function sendgridHandler(inst: SandboxInstance): HttpHandler {
  const reply = (res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>) =>
    inst.later(() => sendJson(res, status, body, headers));
  const events = new EventPoster(inst);
  inst.receipts.onCancel(() => events.clear());

  return (req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    const receivedAt = Date.now();
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/v3/mail/send') {
      sendJson(res, 404, { errors: [err('Not Found')] });
      return;
    }
    const v = inst.gate();
    if (v.kind === 'hang') return;
    if (v.kind === 'outage') {
      reply(res, 503, { errors: [err('Service Unavailable')] }, { 'retry-after': String(v.retryAfterSeconds) });
      return;
    }
    const apiKey = bearer(req);
    const key = apiKey === undefined ? undefined : inst.credential(credentialId.sendgrid(apiKey), 'sendgridApiKey');
    if (key === undefined || key.apiKey !== apiKey) {
      inst.counters.unauthorized++;
      reply(res, 401, { errors: [err('The provided authorization grant is invalid, expired, or revoked')] });
      return;
    }
    if (v.kind === 'ratelimited') {
      const reset = Math.ceil(Date.now() / 1000) + v.retryAfterSeconds;
      reply(res, 429, { errors: [err('too many requests')] }, {
        'x-ratelimit-limit': String(Math.round(inst.faults().rateLimitPerSecond ?? 0)),
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(reset),
      });
      return;
    }
    const checked = validate(parseJson(body), (email) => {
      const listed = inst.listedFailure(email);
      return listed !== undefined || email.startsWith('bad-');
    });
    if ('errors' in checked) {
      if (checked.errors.some((e) => e.message === 'Does not contain a valid address.')) inst.counters.permanent++;
      else inst.counters.invalid++;
      reply(res, checked.status, { errors: checked.errors });
      return;
    }
    if (v.kind === 'error') {
      if (Math.random() < 0.5) reply(res, 500, { errors: [err('internal error')] });
      else reply(res, 503, { errors: [err('Service Unavailable')] }, { 'retry-after': String(v.retryAfterSeconds) });
      return;
    }
    inst.later(() => {
      const id = nextId();
      const at = Date.now();
      const webhook = inst.eventWebhookFor(key.id);
      for (const [i, r] of checked.recipients.entries()) {
        inst.record({
          id: `${id}.${i}`,
          instance: inst.name,
          address: r.email,
          text: r.text,
          receivedAt,
          at,
          credential: key.id,
          ...(r.deliveryId !== undefined ? { deliveryId: r.deliveryId } : {}),
          ...(r.customArgs !== undefined ? { customArgs: r.customArgs } : {}),
        });
        // sg_message_id starts with the X-Message-Id, as SendGrid's do.
        if (webhook !== undefined) events.schedule(webhook, r.email, `${id}.${i}`, r.customArgs);
      }
      if (res.destroyed || res.writableEnded) return;
      res.writeHead(202, { 'x-message-id': id, 'content-length': 0 });
      res.end();
    });
  };
}
