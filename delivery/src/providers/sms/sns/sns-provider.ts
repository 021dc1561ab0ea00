import { PublishCommand, SNSClient, SNSServiceException } from '@aws-sdk/client-sns';
import type { Channel, OutboundMessage, Provider, SendOptions, SendOutcome } from '../../port';
import { accepted, credentialsRejected, describeError, givenUp, mayHaveArrived, permanent, retryAfterMs, sendEachWithin, transient, type Draft } from '../../outcomes';
import { CallAgent } from '../../shared/call-agent';

export type SnsProviderOptions = {
  /** Default "sns". */
  name?: string;
  region: string;
  /** Static keys; omitted: the SDK's default credential chain (environment, IAM role...). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Sandbox mode: the sandbox's URL (the client's documented `endpoint` option) and CA. */
  endpoint?: string;
  ca?: string;
  /** AWS.SNS.SMS.SenderID, where the destination country supports it. */
  senderId?: string;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** Default 256 (the SDK's default is 50). */
  maxSockets?: number;
};

/** Codes that mean the request itself is wrong (not the service, not a rate). */
const REQUEST_ERRORS = new Set(['InvalidParameter', 'InvalidParameterValue', 'ValidationError', 'NotFound', 'InvalidAction']);
/** Codes that refuse the access key (unknown, wrong secret, expired, or not allowed to publish). */
const CREDENTIAL_ERRORS = new Set([
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'UnrecognizedClient',
  'AccessDenied',
  'AuthorizationError',
  'ExpiredToken',
  'MissingAuthenticationToken',
]);
const THROTTLING = new Set(['Throttled', 'Throttling', 'TooManyRequests', 'RequestLimitExceeded', 'RequestThrottled', 'KMSThrottling']);

/**
 * An error answer from SNS: its HTTP status, AWS error code (with any 'Exception' suffix cut) and
 * message. The message only decides whether the phone number was at fault; the reason is the
 * code and our words, since SNS quotes the number.
 */
export function classifySnsError(deliveryId: string, status: number, awsCode: string, message: string, retryAfter?: unknown): Draft {
  const code = awsCode.replace(/Exception$/, '');
  if (CREDENTIAL_ERRORS.has(code)) return credentialsRejected(deliveryId, awsCode);
  if (status === 429 || THROTTLING.has(code)) {
    return transient(deliveryId, `sns ${status} ${code}: sending too fast`, { providerFault: false, retryAfterMs: retryAfterMs(retryAfter) });
  }
  if (status >= 500) return transient(deliveryId, `sns ${status} ${code}: server error`, { providerFault: true, retryAfterMs: retryAfterMs(retryAfter) });
  if (status === 401 || status === 403 || status === 0) return transient(deliveryId, `sns ${status} ${code}: refused`, { providerFault: true });
  if (REQUEST_ERRORS.has(code) || status === 400) {
    const phone = /PhoneNumber/.test(message);
    return permanent(deliveryId, `sns ${status} ${code}: ${phone ? 'invalid phone number' : 'request refused'}`, phone);
  }
  return permanent(deliveryId, `sns ${status} ${code}: request refused`, false);
}

/**
 * SMS's second route: Amazon SNS direct-to-phone Publish with @aws-sdk/client-sns. The SDK's own
 * retries are off (maxAttempts 1: the saga retries); a call given up is cancelled with the SDK's
 * `abortSignal` (and its request by the CallAgent, never written if it had no connection yet). The delivery id is a String message
 * attribute; SMS has no expiry field here. InvalidParameter about PhoneNumber → permanent +
 * invalidDevice; other request errors → permanent; Throttled (429) → transient with Retry-After
 * when sent; refused keys (InvalidClientTokenId...) → credentials rejected; 5xx (with their
 * Retry-After) and network errors → transient provider faults.
 */
export class SnsProvider implements Provider {
  readonly name: string;
  readonly channel: Channel = 'sms';
  readonly maxBatch = 1;
  private readonly client: SNSClient;
  private readonly agent: CallAgent;
  private readonly senderId: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: SnsProviderOptions) {
    this.name = options.name ?? 'sns';
    this.senderId = options.senderId;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.agent = new CallAgent({ keepAlive: true, maxSockets: options.maxSockets ?? 256, ...(options.ca !== undefined ? { ca: options.ca } : {}) });
    this.client = new SNSClient({
      region: options.region,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      maxAttempts: 1,
      // Without throwOnRequestTimeout the handler only logs a warning when requestTimeout passes.
      requestHandler: {
        httpsAgent: this.agent,
        requestTimeout: options.timeoutMs ?? 10_000,
        connectionTimeout: options.timeoutMs ?? 10_000,
        throwOnRequestTimeout: true,
      },
    });
  }

  send(messages: readonly OutboundMessage[], options: SendOptions = {}): Promise<readonly SendOutcome[]> {
    return sendEachWithin(this.name, messages, options.signal, this.timeoutMs, (i, signal) => this.agent.run(signal, (call) => this.sendOne(messages[i]!, call)));
  }

  private async sendOne(m: OutboundMessage, call: { signal: AbortSignal | undefined; written: boolean }): Promise<Draft> {
    const signal = call.signal!;
    if (signal.aborted) return givenUp(m.deliveryId, signal, false, 'sns');
    try {
      const out = await this.client.send(
        new PublishCommand({
          PhoneNumber: m.address,
          Message: m.text,
          MessageAttributes: {
            'AWS.SNS.SMS.SMSType': { DataType: 'String', StringValue: 'Transactional' },
            deliveryId: { DataType: 'String', StringValue: m.deliveryId },
            ...(this.senderId !== undefined ? { 'AWS.SNS.SMS.SenderID': { DataType: 'String', StringValue: this.senderId } } : {}),
          },
        }),
        { abortSignal: signal },
      );
      return accepted(m.deliveryId, out.MessageId);
    } catch (err) {
      if (signal.aborted) return givenUp(m.deliveryId, signal, call.written, 'sns');
      return this.classify(m, err);
    }
  }

  private classify(m: OutboundMessage, err: unknown): Draft {
    if (!(err instanceof SNSServiceException)) {
      return transient(m.deliveryId, `sns: ${describeError(err, m.address)}`, { providerFault: true, maybeDelivered: mayHaveArrived(err) });
    }
    const status = err.$metadata.httpStatusCode ?? 0;
    const code = (err as { Code?: string }).Code ?? err.name;
    const headers = (err.$response as { headers?: Record<string, string> } | undefined)?.headers;
    return classifySnsError(m.deliveryId, status, code, err.message, headers?.['retry-after']);
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.agent.destroy();
  }
}
