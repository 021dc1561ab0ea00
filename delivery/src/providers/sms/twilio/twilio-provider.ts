import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';
import type TwilioResponse from 'twilio/lib/http/response';
import type { Channel, OutboundMessage, Provider, SendOptions, SendOutcome } from '../../port';
import { accepted, credentialsRejected, describeError, givenUp, mayHaveArrived, permanent, sendEachWithin, transient, type Draft } from '../../outcomes';
import { CallAgent } from '../../shared/call-agent';

export type TwilioProviderOptions = {
  /** Default "twilio". */
  name?: string;
  accountSid: string;
  /** The account's auth token, or one of its API keys: exactly one. */
  authToken?: string;
  apiKey?: { sid: string; secret: string };
  /** Sender number (E.164) or, with messagingServiceSid, omitted. */
  from?: string;
  messagingServiceSid?: string;
  /** Our status webhook; each message adds ?deliveryId= and, with a receipt token, &r=. Optional. */
  statusCallbackUrl?: string;
  /** Sandbox mode: requests keep their path and go to this origin (https://127.0.0.1:port). */
  baseUrl?: string;
  ca?: string;
  /** Per request (the SDK's timeout, and our deadline); default 10 s. */
  timeoutMs?: number;
  /** Default 256 (the SDK's own default is 20). */
  maxSockets?: number;
};

/**
 * twilio has no base-URL option; its documented extension point is a custom httpClient. This one
 * is the SDK's own RequestClient, moving each request to `baseUrl` with its path kept. Its axios
 * goes through a CallAgent (which also notes the Retry-After the SDK's RestException drops) and
 * carries the current call's AbortSignal, so a call given up is cancelled in axios.
 */
class RoutedRequestClient extends twilio.RequestClient {
  constructor(
    private readonly baseUrl: string | undefined,
    readonly agent: CallAgent,
    opts: RequestClient.RequestClientOptions,
  ) {
    super(opts);
    (this.axios.defaults.httpsAgent as { destroy?: () => void } | undefined)?.destroy?.();
    this.axios.defaults.httpsAgent = agent;
    this.axios.interceptors.request.use((config) => {
      const signal = agent.current()?.signal;
      if (signal) config.signal = signal;
      return config;
    });
  }

  override async request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<TwilioResponse<TData>> {
    let uri = opts.uri;
    if (this.baseUrl !== undefined) {
      const u = new URL(opts.uri);
      uri = new URL(u.pathname + u.search, this.baseUrl).toString();
    }
    return super.request<TData>({ ...opts, uri });
  }
}

const INVALID_NUMBER = new Set([21211, 21217, 21401, 21610, 21614]);
/** Twilio's codes in our words: its messages quote the number. */
const WORDS: Readonly<Record<number, string>> = {
  20003: 'credentials rejected',
  20005: 'account not active',
  20404: 'resource not found',
  20429: 'too many requests',
  20500: 'server error',
  20503: 'service unavailable',
  21211: 'invalid number',
  21217: 'invalid number',
  21401: 'invalid number',
  21408: 'region not enabled for this account',
  21602: 'message body missing',
  21603: 'sender missing',
  21604: 'recipient missing',
  21610: 'recipient unsubscribed',
  21612: 'number not reachable from this sender',
  21614: 'not a mobile number',
  21617: 'message body too long',
};
/** Seconds Twilio keeps trying a queued message: 1 to 36,000 (10 hours). */
const MAX_VALIDITY_S = 36_000;

/**
 * A Twilio API error: its status and numeric code. 401 (20003) and an inactive account (20005)
 * refuse the account → credentials rejected ('twilio 20003'). The reason never carries Twilio's
 * message.
 */
export function classifyTwilioError(deliveryId: string, status: number, code: number | undefined, retryAfter?: number): Draft {
  if (status === 401 || code === 20003 || code === 20005) return credentialsRejected(deliveryId, `twilio ${code ?? status}`);
  const words = (code !== undefined ? WORDS[code] : undefined) ?? (status >= 500 ? 'server error' : 'request refused');
  const reason = `twilio ${status} ${code ?? '-'}: ${words}`;
  if (status === 429) return transient(deliveryId, reason, { providerFault: false, retryAfterMs: retryAfter });
  if (status >= 500) return transient(deliveryId, reason, { providerFault: true, retryAfterMs: retryAfter });
  if (status === 403 || status === 404) return transient(deliveryId, reason, { providerFault: true });
  if (code !== undefined && INVALID_NUMBER.has(code)) return permanent(deliveryId, reason, true);
  return permanent(deliveryId, reason, false);
}

/**
 * SMS through Twilio's Messages API with the twilio SDK (its auto-retry stays off: the saga
 * retries, honouring Retry-After). The deadline is ValidityPeriod (seconds left); the status
 * callback carries the delivery id and the receipt token. Errors: classifyTwilioError.
 */
export class TwilioProvider implements Provider {
  readonly name: string;
  readonly channel: Channel = 'sms';
  readonly maxBatch = 1;
  private readonly client: twilio.Twilio;
  private readonly http: RoutedRequestClient;
  private readonly options: TwilioProviderOptions;
  private readonly timeoutMs: number;

  constructor(options: TwilioProviderOptions) {
    this.name = options.name ?? 'twilio';
    this.options = options;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const maxSockets = options.maxSockets ?? 256;
    const agentOptions = {
      timeout: this.timeoutMs,
      keepAlive: true,
      maxSockets,
      maxTotalSockets: maxSockets,
      maxFreeSockets: maxSockets,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
    };
    this.http = new RoutedRequestClient(options.baseUrl, new CallAgent(agentOptions), agentOptions);
    if ((options.authToken === undefined) === (options.apiKey === undefined)) {
      throw new Error(`${this.name}: give authToken or apiKey, exactly one`);
    }
    this.client = options.apiKey
      ? twilio(options.apiKey.sid, options.apiKey.secret, { accountSid: options.accountSid, httpClient: this.http, autoRetry: false })
      : twilio(options.accountSid, options.authToken, { httpClient: this.http, autoRetry: false });
  }

  send(messages: readonly OutboundMessage[], options: SendOptions = {}): Promise<readonly SendOutcome[]> {
    return sendEachWithin(this.name, messages, options.signal, this.timeoutMs, (i, signal) => this.sendOne(messages[i]!, signal));
  }

  private sendOne(m: OutboundMessage, signal: AbortSignal): Promise<Draft> {
    return this.http.agent.run(signal, async (call) => {
      const o = this.options;
      try {
        const msg = await this.client.messages.create({
          to: m.address,
          body: m.text,
          ...(o.from !== undefined ? { from: o.from } : {}),
          ...(o.messagingServiceSid !== undefined ? { messagingServiceSid: o.messagingServiceSid } : {}),
          validityPeriod: validityPeriodOf(m.expiresAt, Date.now()),
          ...(o.statusCallbackUrl !== undefined ? { statusCallback: statusCallbackOf(o.statusCallbackUrl, m) } : {}),
        });
        return accepted(m.deliveryId, msg.sid);
      } catch (err) {
        if (err instanceof twilio.RestException) return classifyTwilioError(m.deliveryId, err.status, err.code, call.retryAfterMs);
        if (signal.aborted) return givenUp(m.deliveryId, signal, call.written, 'twilio');
        return transient(m.deliveryId, `twilio: ${describeError(err, m.address)}`, { providerFault: true, maybeDelivered: mayHaveArrived(err) });
      }
    });
  }

  async close(): Promise<void> {
    this.http.agent.destroy();
  }
}

/** Whole seconds left until the deadline, within what Twilio accepts. */
export function validityPeriodOf(expiresAt: number, now: number): number {
  return Math.min(MAX_VALIDITY_S, Math.max(1, Math.ceil((expiresAt - now) / 1000)));
}

/** The webhook URL with the message's delivery id and receipt token (URL-encoded) added to its query. */
export function statusCallbackOf(url: string, m: Pick<OutboundMessage, 'deliveryId' | 'receipt'>): string {
  const u = new URL(url);
  u.searchParams.set('deliveryId', m.deliveryId);
  if (m.receipt !== undefined) u.searchParams.set('r', m.receipt);
  return u.toString();
}
