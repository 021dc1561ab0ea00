import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SandboxInstance } from './instance';
import { bearer, EMAIL, isObject, nextId, parseJson, sendJson, type HttpHandler } from './http';

/**
 * SendGrid v3 `POST /v3/mail/send`: bearer API key, 1 to 1000 personalizations (and at most 1000
 * recipients in all), from / subject / content checks, substitutions and custom_args applied per
 * personalization, 202 with X-Message-Id, and SendGrid's `{errors: [{message, field, help}]}`.
 * A refused address fails the whole request with 400 (as SendGrid does for invalid addresses),
 * with one error per address whose `field` names the personalization.
 */
export type SendgridContext = { apiKey: string };

type SgError = { message: string; field: string | null; help: string | null };
const err = (message: string, field: string | null = null, help: string | null = null): SgError => ({ message, field, help });

type Recipient = { email: string; text: string; deliveryId?: string; field: string };

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
    for (const [j, to] of (p.to as unknown[]).entries()) {
      total++;
      const field = `personalizations.${i}.to.${j}.email`;
      const email = isObject(to) && typeof to.email === 'string' ? to.email : '';
      if (!EMAIL.test(email) || refused(email)) {
        errors.push(err('Does not contain a valid address.', field, 'http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to'));
        continue;
      }
      recipients.push({ email, text: pText, field, ...(deliveryId !== undefined ? { deliveryId } : {}) });
    }
  }
  if (total > 1000) errors.push(err('The total number of recipients must be less than or equal to 1000.', 'personalizations'));
  if (missingSubject) {
    errors.push(err('The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.', 'subject'));
  }
  return errors.length > 0 ? { status: 400, errors } : { recipients };
}

export function sendgridHandler(inst: SandboxInstance, ctx: SendgridContext): HttpHandler {
  const reply = (res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>) =>
    inst.later(() => sendJson(res, status, body, headers));

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
    if (bearer(req) !== ctx.apiKey) {
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
      for (const [i, r] of checked.recipients.entries()) {
        inst.record({
          id: `${id}.${i}`,
          instance: inst.name,
          address: r.email,
          text: r.text,
          receivedAt,
          at,
          ...(r.deliveryId !== undefined ? { deliveryId: r.deliveryId } : {}),
        });
      }
      if (res.destroyed || res.writableEnded) return;
      res.writeHead(202, { 'x-message-id': id, 'content-length': 0 });
      res.end();
    });
  };
}
