import crypto from 'node:crypto';
import nodemailer from 'nodemailer';
import type { Channel, OutboundMessage, Provider, SendOptions, SendOutcome } from '../../port';
import { accepted, credentialsRejected, describeError, givenUp, mayHaveArrived, permanent, sendEachWithin, transient, type Draft } from '../../outcomes';

export type SmtpProviderOptions = {
  /** Default "smtp". */
  name?: string;
  host: string;
  port: number;
  /** Implicit TLS (465). Default false: STARTTLS, required. */
  secure?: boolean;
  user?: string;
  pass?: string;
  from: string;
  /** Default "New notification". */
  subject?: string;
  /** Sandbox mode: the sandbox's CA (and the name its certificate is checked against). */
  ca?: string;
  servername?: string;
  /** Pooled connections; default 32. Each carries one message at a time. */
  maxConnections?: number;
  /** Connection, greeting and socket inactivity limit; default 10 s. */
  timeoutMs?: number;
};

export type SmtpError = Error & { code?: string; responseCode?: number; response?: string; command?: string };

const ENHANCED_STATUS = /\b([245]\.\d{1,3}\.\d{1,3})\b/;
const AUTH_REFUSED = new Set([530, 534, 535]);

/** What a reply code means, in our words. */
function wordsFor(code: number, recipient: boolean): string {
  if (recipient && code >= 500) return 'recipient refused';
  if (code >= 500) return 'refused';
  if (code === 421) return 'service not available';
  return 'try again later';
}

/**
 * One message's error from nodemailer. With a reply, the reason is `smtp <code> <x.y.z>: <our
 * words>`; without one (connection, TLS, timeout), nodemailer's code and message, which carry no
 * reply text (and any copy of the address is cut out).
 */
export function classifySmtpError(deliveryId: string, err: SmtpError, address?: string): Draft {
  const code = err.responseCode;
  if (code === undefined) {
    // The pool fails this way only a message none of whose bytes were sent (a connection that closed
    // before its greeting, or before the message): it would have requeued it, but requeues nothing.
    if (err.code === 'ECONNECTION' && /after connection was closed/i.test(err.message)) {
      return transient(deliveryId, 'smtp ECONNECTION: connection closed before the message was sent', { providerFault: true });
    }
    return transient(deliveryId, `smtp ${describeError(err, address)}`, { providerFault: true, maybeDelivered: mayHaveArrived(err) });
  }
  const enhanced = ENHANCED_STATUS.exec(err.response ?? '')?.[1];
  if (AUTH_REFUSED.has(code) && (err.code === 'EAUTH' || /^AUTH\b/.test(err.command ?? ''))) {
    return credentialsRejected(deliveryId, `smtp ${code}`);
  }
  const recipient = err.code === 'EENVELOPE' || err.command === 'RCPT TO';
  const reason = `smtp ${code}${enhanced ? ` ${enhanced}` : ''}: ${wordsFor(code, recipient)}`;
  if (code >= 500 && code < 600) return permanent(deliveryId, reason, recipient && [550, 551, 553].includes(code));
  if (code >= 400 && code < 500 && enhanced?.startsWith('4.7.')) return transient(deliveryId, reason, { providerFault: false });
  return transient(deliveryId, reason, { providerFault: true });
}

/**
 * Email's second route: SMTP submission with nodemailer's pooled transport (STARTTLS required,
 * AUTH). One message per call. The delivery id goes in `X-Delivery-Id`, and its hash makes the
 * Message-ID, so a resend carries the same Message-ID and mail clients show it once.
 * Email has no expiry field and SMTP no receipts. Replies: 535/534/530 to AUTH → credentials
 * rejected ('smtp 535'); 550/551/553 at RCPT → permanent + invalidDevice; other 5xx → permanent;
 * 4.7.x (rate limits) → transient; other 4xx, connection and timeout errors → transient provider
 * faults. SMTP has no Retry-After. Reasons are the reply code and enhanced status: the reply's
 * text often quotes the address. The pool requeues nothing (maxRequeues 0: a message whose
 * connection closed under it is the router's to retry), and a call given up is cancelled with
 * nodemailer's own `signal`: a message still queued in the pool leaves it unsent, one on a
 * connection has that connection closed.
 */
export class SmtpProvider implements Provider {
  readonly name: string;
  readonly channel: Channel = 'email';
  readonly maxBatch = 1;
  private readonly transport: ReturnType<typeof nodemailer.createTransport>;
  private readonly from: string;
  private readonly subject: string;
  private readonly timeoutMs: number;

  constructor(options: SmtpProviderOptions) {
    this.name = options.name ?? 'smtp';
    this.from = options.from;
    this.subject = options.subject ?? 'New notification';
    const timeout = options.timeoutMs ?? 10_000;
    this.timeoutMs = timeout;
    this.transport = nodemailer.createTransport({
      pool: true,
      host: options.host,
      port: options.port,
      secure: options.secure ?? false,
      requireTLS: !(options.secure ?? false),
      ...(options.user !== undefined ? { auth: { user: options.user, pass: options.pass ?? '' } } : {}),
      tls: {
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
        ...(options.servername !== undefined ? { servername: options.servername } : {}),
      },
      maxConnections: options.maxConnections ?? 32,
      maxMessages: Infinity,
      maxRequeues: 0,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
  }

  send(messages: readonly OutboundMessage[], options: SendOptions = {}): Promise<readonly SendOutcome[]> {
    return sendEachWithin(this.name, messages, options.signal, this.timeoutMs, (i, signal) => this.sendOne(messages[i]!, signal));
  }

  /** Whether the pool still holds the message in its queue (no connection has it): then it was never sent. */
  private queued(signal: AbortSignal): boolean {
    const pool = (this.transport as unknown as { transporter?: { _queue?: { mail?: { data?: { signal?: unknown } } }[] } }).transporter;
    return pool?._queue?.some((e) => e.mail?.data?.signal === signal) ?? false;
  }

  private async sendOne(m: OutboundMessage, callSignal: AbortSignal): Promise<Draft> {
    if (callSignal.aborted) return givenUp(m.deliveryId, callSignal, false, 'smtp');
    // One signal per message, so the pool's queue tells which message was still waiting; this
    // listener runs before nodemailer's, while the message is where the abort found it.
    const controller = new AbortController();
    let written = true;
    const abort = () => {
      written = !this.queued(controller.signal);
      controller.abort(callSignal.reason);
    };
    callSignal.addEventListener('abort', abort, { once: true });
    try {
      const info = await this.transport.sendMail({
        from: this.from,
        to: m.address,
        subject: this.subject,
        text: m.text,
        messageId: `<${crypto.createHash('sha256').update(m.deliveryId).digest('base64url')}@notify.delivery>`,
        headers: { 'X-Delivery-Id': m.deliveryId },
        signal: controller.signal,
      });
      if (info.rejected.length > 0) return permanent(m.deliveryId, 'smtp recipient refused', true);
      return accepted(m.deliveryId, info.messageId);
    } catch (err) {
      if (controller.signal.aborted) return givenUp(m.deliveryId, callSignal, written, 'smtp');
      return classifySmtpError(m.deliveryId, err as SmtpError, m.address);
    } finally {
      callSignal.removeEventListener('abort', abort);
    }
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
