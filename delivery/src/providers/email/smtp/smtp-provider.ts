import crypto from 'node:crypto';
import nodemailer from 'nodemailer';
import type { Channel, OutboundMessage, Provider, SendOutcome } from '../../port';
import { accepted, describeError, mayHaveArrived, permanent, settle, transient, type Draft } from '../../outcomes';

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

type SmtpError = Error & { code?: string; responseCode?: number; response?: string; command?: string };

/**
 * Email's second route: SMTP submission with nodemailer's pooled transport (STARTTLS required,
 * AUTH). One message per call. The delivery id goes in `X-Delivery-Id`, and its hash makes the
 * Message-ID, so a resend carries the same Message-ID and mail clients show it once.
 * Replies: 550/551/553 at RCPT → permanent + invalidDevice; other 5xx → permanent; 4.7.x
 * (rate limits) → transient; other 4xx, auth, connection and timeout errors → transient
 * provider faults. SMTP has no Retry-After.
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
      if (info.rejected.length > 0) return permanent(m.deliveryId, `smtp rejected ${String(info.response)}`, true);
      return accepted(m.deliveryId, info.messageId);
    } catch (err) {
      return this.classify(m.deliveryId, err as SmtpError);
    }
  }

  private classify(deliveryId: string, err: SmtpError): Draft {
    const code = err.responseCode;
    const reason = `smtp ${code ?? err.code ?? 'error'}: ${err.response ?? describeError(err)}`;
    if (code !== undefined && code >= 500 && code < 600) {
      const recipient = err.code === 'EENVELOPE' || err.command === 'RCPT TO';
      return permanent(deliveryId, reason, recipient && [550, 551, 553].includes(code));
    }
    if (code !== undefined && code >= 400 && code < 500 && /\b4\.7\.\d+/.test(err.response ?? '')) {
      return transient(deliveryId, reason, { providerFault: false });
    }
    return transient(deliveryId, reason, { providerFault: true, maybeDelivered: code === undefined && mayHaveArrived(err) });
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
