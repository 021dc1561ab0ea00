import { Client } from '@sendgrid/client';
import type { ClientRequest } from '@sendgrid/client/src/request';
import { MailService } from '@sendgrid/mail';
import type { Channel, OutboundMessage, Provider, SendOptions, SendOutcome } from '../../port';
import { accepted, credentialsRejected, describeError, givenUp, mayHaveArrived, permanent, retryAfterMs, settle, transient, withDeadline, type Draft } from '../../outcomes';
import { CallAgent } from '../../shared/call-agent';

export type SendgridProviderOptions = {
  /** Default "sendgrid". */
  name?: string;
  apiKey: string;
  /** Sender address (a verified sender in SendGrid). */
  from: string;
  replyTo?: string;
  /** Default "New notification". */
  subject?: string;
  /** Sandbox mode: the sandbox's URL and CA. Default https://api.sendgrid.com/. */
  baseUrl?: string;
  ca?: string;
  /** Per call (axios's timeout, and our deadline); default 10 s. */
  timeoutMs?: number;
  /** Default 64. */
  maxSockets?: number;
};

/**
 * @sendgrid/client builds each axios request from a few fields of its own (createRequest): this
 * one adds the current call's AbortSignal, so axios cancels the request when the call is given up.
 */
class CancellableClient extends Client {
  constructor(private readonly agent: CallAgent) {
    super();
  }

  override createRequest(data: ClientRequest): ClientRequest {
    const request = super.createRequest(data);
    const signal = this.agent.current()?.signal;
    return signal ? ({ ...request, signal } as ClientRequest) : request;
  }
}

type SgError = { message?: string; field?: string | null };
type ResponseErrorLike = Error & { code?: number; response?: { headers?: Record<string, string>; body?: unknown } };

const ADDRESS_FIELD = /^personalizations\.(\d+)\.to\.\d+\.email$/;

/**
 * Email through SendGrid v3 mail/send with @sendgrid/mail: one request carries up to 1000
 * personalizations, one per message, each with its own text (a `{{text}}` substitution), and the
 * delivery id and receipt token in custom_args (deliveryId, r: SendGrid's event webhook echoes
 * them). Email has no expiry field. SendGrid refuses the whole request when an address is
 * invalid; the adapter marks the named personalizations permanent + invalidDevice and resends the
 * rest once. 429 → transient with retryAfterMs from X-RateLimit-Reset; 401/403 → credentials
 * rejected ('sendgrid 401'); 5xx and network errors → transient provider faults (with their
 * Retry-After). Reasons name SendGrid's error fields, not its messages. The client has no retries;
 * a call given up is cancelled through axios's AbortSignal and the CallAgent (a request that has
 * no connection yet is never written).
 */
export class SendgridProvider implements Provider {
  readonly name: string;
  readonly channel: Channel = 'email';
  readonly maxBatch = 1000;
  private readonly mail: MailService;
  private readonly agent: CallAgent;
  private readonly timeoutMs: number;
  private readonly from: string;
  private readonly replyTo: string | undefined;
  private readonly subject: string;

  constructor(options: SendgridProviderOptions) {
    this.name = options.name ?? 'sendgrid';
    this.from = options.from;
    this.replyTo = options.replyTo;
    this.subject = options.subject ?? 'New notification';
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.agent = new CallAgent({ keepAlive: true, maxSockets: options.maxSockets ?? 64, ...(options.ca !== undefined ? { ca: options.ca } : {}) });
    const client = new CancellableClient(this.agent);
    client.setApiKey(options.apiKey); // resets baseUrl, so the sandbox URL comes after it
    if (options.baseUrl !== undefined) client.setDefaultRequest('baseUrl', options.baseUrl);
    client.setDefaultRequest({ httpsAgent: this.agent, proxy: false, timeout: this.timeoutMs } as never);
    this.mail = new MailService();
    this.mail.setClient(client);
  }

  /** One request carries the whole call. */
  requestsPerCall(): number {
    return 1;
  }

  async send(messages: readonly OutboundMessage[], options: SendOptions = {}): Promise<readonly SendOutcome[]> {
    if (messages.length === 0) return [];
    if (messages.length > this.maxBatch) throw new RangeError(`${this.name}: ${messages.length} messages, at most ${this.maxBatch}`);
    const deadline = withDeadline(options.signal, this.timeoutMs);
    try {
      return settle(this.name, await this.agent.run(deadline.signal, () => this.attempt(messages, true)));
    } finally {
      deadline.done();
    }
  }

  private async attempt(messages: readonly OutboundMessage[], mayResend: boolean): Promise<Draft[]> {
    try {
      const [response] = await this.mail.send({
        from: this.from,
        ...(this.replyTo !== undefined ? { replyTo: this.replyTo } : {}),
        subject: this.subject,
        content: [{ type: 'text/plain', value: '{{text}}' }],
        personalizations: messages.map((m) => ({
          to: [{ email: m.address }],
          substitutions: { text: m.text },
          customArgs: { deliveryId: m.deliveryId, ...(m.receipt !== undefined ? { r: m.receipt } : {}) },
        })),
      } as never);
      const id = (response.headers as Record<string, string | undefined>)['x-message-id'];
      return messages.map((m) => accepted(m.deliveryId, id));
    } catch (err) {
      return this.failed(messages, err as ResponseErrorLike, mayResend);
    }
  }

  private async failed(messages: readonly OutboundMessage[], err: ResponseErrorLike, mayResend: boolean): Promise<Draft[]> {
    const status = typeof err.code === 'number' ? err.code : undefined;
    if (status === undefined || err.response === undefined) {
      // Given up: whatever the error says (axios's "canceled", a reset), it may have arrived only if written.
      const call = this.agent.current();
      if (call?.signal?.aborted) return messages.map((m) => givenUp(m.deliveryId, call.signal, call.written, 'sendgrid'));
      const reason = `sendgrid: ${describeError(err)}`;
      const maybeDelivered = mayHaveArrived(err);
      return messages.map((m) => transient(m.deliveryId, reason, { providerFault: true, maybeDelivered }));
    }
    const body = err.response.body as { errors?: SgError[] } | undefined;
    const errors = Array.isArray(body?.errors) ? body.errors : [];
    if (status === 401 || status === 403) return messages.map((m) => credentialsRejected(m.deliveryId, `sendgrid ${status}`));
    // The fields at fault, not SendGrid's messages (they may quote the request).
    const fields = [...new Set(errors.map((e) => e.field ?? '-'))].join(', ');
    const summary = fields === '' ? 'request refused' : `${fields}: request refused`;
    if (status === 429) {
      const reset = Number(err.response.headers?.['x-ratelimit-reset']);
      const retryAfterMs = Number.isFinite(reset) && reset > 0 ? Math.max(1000, reset * 1000 - Date.now()) : undefined;
      return messages.map((m) => transient(m.deliveryId, 'sendgrid 429 too many requests', { providerFault: false, retryAfterMs }));
    }
    if (status === 400) {
      const badIndexes = new Set<number>();
      let otherProblem = errors.length === 0;
      for (const e of errors) {
        const match = e.field ? ADDRESS_FIELD.exec(e.field) : null;
        if (match) badIndexes.add(Number(match[1]));
        else otherProblem = true;
      }
      if (otherProblem) return messages.map((m) => permanent(m.deliveryId, `sendgrid 400 ${summary}`, false));
      const refused = new Map<number, Draft>();
      for (const i of badIndexes) {
        const m = messages[i];
        if (m) refused.set(i, permanent(m.deliveryId, 'sendgrid 400 Does not contain a valid address.', true));
      }
      const restIndexes = messages.map((_, i) => i).filter((i) => !refused.has(i));
      const rest = restIndexes.map((i) => messages[i]!);
      const resent =
        rest.length > 0 && mayResend
          ? await this.attempt(rest, false)
          : rest.map((m) => permanent(m.deliveryId, `sendgrid 400 ${summary}`, false));
      const out: Draft[] = [];
      messages.forEach((_, i) => out.push(refused.get(i)!));
      restIndexes.forEach((i, k) => (out[i] = resent[k]!));
      return out;
    }
    if (status === 413) return messages.map((m) => permanent(m.deliveryId, 'sendgrid 413 request too large', false));
    // 5xx and the rest: nothing about the addresses; let the chain try elsewhere.
    const reason = `sendgrid ${status} ${status >= 500 ? 'server error' : summary}`;
    const retryAfter = status >= 500 ? retryAfterMs(err.response.headers?.['retry-after']) : undefined;
    return messages.map((m) => transient(m.deliveryId, reason, { providerFault: status >= 500, retryAfterMs: retryAfter }));
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}
