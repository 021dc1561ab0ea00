import { AsyncLocalStorage } from 'node:async_hooks';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';
import type TwilioResponse from 'twilio/lib/http/response';
import type { Channel, OutboundMessage, Provider, SendOutcome } from '../../port';
import { accepted, describeError, mayHaveArrived, permanent, retryAfterMs, settle, transient, type Draft } from '../../outcomes';

export type TwilioProviderOptions = {
  /** Default "twilio". */
  name?: string;
  accountSid: string;
  authToken: string;
  /** Sender number (E.164) or, with messagingServiceSid, omitted. */
  from?: string;
  messagingServiceSid?: string;
  /** Our status webhook; the delivery id is added as ?deliveryId=. Optional. */
  statusCallbackUrl?: string;
  /** Sandbox mode: requests keep their path and go to this origin (https://127.0.0.1:port). */
  baseUrl?: string;
  ca?: string;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** Default 256 (the SDK's own default is 20). */
  maxSockets?: number;
};

/** Carries the response headers the SDK's RestException drops (Retry-After) back to the caller. */
type CallContext = { retryAfter?: unknown };

/**
 * twilio has no base-URL option; its documented extension point is a custom httpClient. This one
 * is the SDK's own RequestClient, moving each request to `baseUrl` with its path kept, and noting
 * the Retry-After of a 429 for the call that made it.
 */
class RoutedRequestClient extends twilio.RequestClient {
  constructor(
    private readonly baseUrl: string | undefined,
    private readonly calls: AsyncLocalStorage<CallContext>,
    opts: RequestClient.RequestClientOptions,
  ) {
    super(opts);
  }

  override async request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<TwilioResponse<TData>> {
    let uri = opts.uri;
    if (this.baseUrl !== undefined) {
      const u = new URL(opts.uri);
      uri = new URL(u.pathname + u.search, this.baseUrl).toString();
    }
    const response = await super.request<TData>({ ...opts, uri });
    if (response.statusCode === 429) {
      const ctx = this.calls.getStore();
      if (ctx) ctx.retryAfter = (response.headers as Record<string, unknown> | undefined)?.['retry-after'];
    }
    return response;
  }
}

const INVALID_NUMBER = new Set([21211, 21217, 21401, 21610, 21614]);

/**
 * SMS through Twilio's Messages API with the twilio SDK (its auto-retry stays off: the saga
 * retries). 21211 / 21614 / 21610 and kin → permanent + invalidDevice; other 4xx request errors
 * → permanent; 429 → transient with Retry-After; auth (401/403/404) and 5xx → provider faults.
 */
export class TwilioProvider implements Provider {
  readonly name: string;
  readonly channel: Channel = 'sms';
  readonly maxBatch = 1;
  private readonly client: twilio.Twilio;
  private readonly http: RoutedRequestClient;
  private readonly calls = new AsyncLocalStorage<CallContext>();
  private readonly options: TwilioProviderOptions;

  constructor(options: TwilioProviderOptions) {
    this.name = options.name ?? 'twilio';
    this.options = options;
    const maxSockets = options.maxSockets ?? 256;
    this.http = new RoutedRequestClient(options.baseUrl, this.calls, {
      timeout: options.timeoutMs ?? 10_000,
      keepAlive: true,
      maxSockets,
      maxTotalSockets: maxSockets,
      maxFreeSockets: maxSockets,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
    });
    this.client = twilio(options.accountSid, options.authToken, { httpClient: this.http, autoRetry: false });
  }

  async send(messages: readonly OutboundMessage[]): Promise<readonly SendOutcome[]> {
    const drafts = await Promise.all(messages.map((m) => this.sendOne(m)));
    return settle(this.name, drafts);
  }

  private sendOne(m: OutboundMessage): Promise<Draft> {
    const ctx: CallContext = {};
    return this.calls.run(ctx, async () => {
      const o = this.options;
      try {
        const msg = await this.client.messages.create({
          to: m.address,
          body: m.text,
          ...(o.from !== undefined ? { from: o.from } : {}),
          ...(o.messagingServiceSid !== undefined ? { messagingServiceSid: o.messagingServiceSid } : {}),
          ...(o.statusCallbackUrl !== undefined ? { statusCallback: withDeliveryId(o.statusCallbackUrl, m.deliveryId) } : {}),
        });
        return accepted(m.deliveryId, msg.sid);
      } catch (err) {
        return this.classify(m.deliveryId, err, ctx);
      }
    });
  }

  private classify(deliveryId: string, err: unknown, ctx: CallContext): Draft {
    if (!(err instanceof twilio.RestException)) {
      return transient(deliveryId, `twilio: ${describeError(err)}`, { providerFault: true, maybeDelivered: mayHaveArrived(err) });
    }
    const status = err.status;
    const code = err.code;
    const reason = `twilio ${status} ${code ?? ''}: ${err.message}`;
    if (status === 429) return transient(deliveryId, reason, { providerFault: false, retryAfterMs: retryAfterMs(ctx.retryAfter) });
    if (status >= 500 || status === 401 || status === 403 || status === 404) return transient(deliveryId, reason, { providerFault: true });
    if (code !== undefined && INVALID_NUMBER.has(code)) return permanent(deliveryId, reason, true);
    return permanent(deliveryId, reason, false);
  }

  async close(): Promise<void> {
    (this.http.axios.defaults.httpsAgent as { destroy(): void } | undefined)?.destroy();
  }
}

function withDeliveryId(url: string, deliveryId: string): string {
  const u = new URL(url);
  u.searchParams.set('deliveryId', deliveryId);
  return u.toString();
}
