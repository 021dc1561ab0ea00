import crypto from 'node:crypto';
import nodemailer from 'nodemailer';
import type { Channel, OutboundMessage, Provider, SendOutcome } from '../../port';
import { accepted, credentialsRejected, describeError, mayHaveArrived, permanent, settle, transient, type Draft } from '../../outcomes';

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
 * text often quotes the address.
 */
export class SmtpProvider implements Provider {
  readonly name: string;
  readonly channel: Channel = 'email';
  readonly maxBatch = 1;
  private readonly transport: ReturnType<typeof nodemailer.createTransport>;
  private readonly from: string;
  private readonly subject: string;

  constructor(options: SmtpProviderOptions) {
    this.name = options.name ?? 'smtp';
    this.from = options.from;
    this.subject = options.subject ?? 'New notification';
    const timeout = options.timeoutMs ?? 10_000;
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
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
  }

  async send(messages: readonly OutboundMessage[]): Promise<readonly SendOutcome[]> {
    const drafts = await Promise.all(messages.map((m) => this.sendOne(m)));
    return settle(this.name, drafts);
  }

  private async sendOne(m: OutboundMessage): Promise<Draft> {
    try {
      const info = await this.transport.sendMail({
        from: this.from,
        to: m.address,
        subject: this.subject,
        text: m.text,
        messageId: `<${crypto.createHash('sha256').update(m.deliveryId).digest('base64url')}@notify.delivery>`,
        headers: { 'X-Delivery-Id': m.deliveryId },
      });
      if (info.rejected.length > 0) return permanent(m.deliveryId, 'smtp recipient refused', true);
      return accepted(m.deliveryId, info.messageId);
    } catch (err) {
      return classifySmtpError(m.deliveryId, err as SmtpError, m.address);
    }
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
