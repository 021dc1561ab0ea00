import crypto from 'node:crypto';
import type { SendOutcome } from './port';

/**
 * How adapters report: every message gets an outcome, and `send` rejects only when the whole call
 * failed on the provider's side. Rule used by every adapter (so a circuit breaker counts the same
 * thing everywhere): if no message of the call was accepted or refused for good, and every failure
 * is a provider fault (5xx, outage, timeout, connection error, rejected credentials), `send`
 * rejects with ProviderUnavailableError, which still carries one transient outcome per message.
 * Rejected credentials are always a provider fault (the account is refused, whatever the
 * message): their outcomes also carry `credentialsRejected`, so the caller can tell "this
 * integration's key is wrong" from an outage and stop using the integration until reconfigured.
 * Rate limiting (429) is not a provider fault: those come back as transient outcomes with
 * retryAfterMs where the SDK lets us read it. A partial failure always resolves with outcomes.
 */
export class ProviderUnavailableError extends Error {
  override readonly name = 'ProviderUnavailableError';
  constructor(
    readonly provider: string,
    readonly outcomes: readonly SendOutcome[],
  ) {
    const first = outcomes[0];
    super(`${provider}: unavailable (${first && first.outcome === 'transient' ? first.reason : 'no outcome'})`);
  }
}

/** An outcome being built, with whether a transient failure is the provider's fault. */
export type Draft = { outcome: SendOutcome; providerFault: boolean };

export const accepted = (deliveryId: string, providerMessageId?: string): Draft => ({
  outcome: providerMessageId === undefined
    ? { deliveryId, outcome: 'accepted' }
    : { deliveryId, outcome: 'accepted', providerMessageId },
  providerFault: false,
});

export const permanent = (deliveryId: string, reason: string, invalidDevice: boolean): Draft => ({
  outcome: { deliveryId, outcome: 'permanent', reason, invalidDevice },
  providerFault: false,
});

export const transient = (
  deliveryId: string,
  reason: string,
  opts: { providerFault: boolean; retryAfterMs?: number | undefined; maybeDelivered?: boolean; credentialsRejected?: boolean },
): Draft => ({
  outcome: {
    deliveryId,
    outcome: 'transient',
    reason,
    ...(opts.retryAfterMs === undefined ? {} : { retryAfterMs: opts.retryAfterMs }),
    ...(opts.maybeDelivered ? { maybeDelivered: true as const } : {}),
    ...(opts.credentialsRejected ? { credentialsRejected: true as const } : {}),
  },
  providerFault: opts.providerFault || opts.credentialsRejected === true,
});

/** The provider refused the integration's credentials; `code` is the vendor's, e.g. 'twilio 20003'. */
export const credentialsRejected = (deliveryId: string, code: string): Draft =>
  transient(deliveryId, code, { providerFault: true, credentialsRejected: true });

/** Timeouts and connections dropped mid-request: the provider may have taken the message. */
const LOST_IN_FLIGHT = /\b(ETIMEDOUT|ESOCKETTIMEDOUT|ECONNRESET|ECONNABORTED|EPIPE|TimeoutError|RequestTimeout)\b|socket hang up|network-timeout|timed? ?out/i;

/**
 * Whether an error thrown by a client library leaves it unknown if the request arrived. Refused
 * connections, DNS failures and errors raised before sending say no; a retry then is safe.
 */
export function mayHaveArrived(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, name, message } = err as { code?: unknown; name?: unknown; message?: unknown };
  return LOST_IN_FLIGHT.test([code, name, message].filter((x) => typeof x === 'string').join(' '));
}

/**
 * A request cancelled because its call was given up: `ECANCELED` when it was never written (the
 * provider cannot have it, a retry is safe), `ECONNABORTED` when it was on the wire and its answer
 * is abandoned. Adapters tell the two by these codes or by their own record of what was written,
 * never by the message (which quotes the reason, "timeout" included).
 */
export const UNSENT = 'ECANCELED';
export const ABANDONED = 'ECONNABORTED';

/** Why a call was given up, in our words: the caller's reason (its deadline) or a plain cancel. */
export function whyGivenUp(signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason;
  return reason instanceof Error && reason.message !== '' ? reason.message : 'call cancelled';
}

export function givenUpError(signal: AbortSignal | undefined, written: boolean): Error & { code: string } {
  const why = whyGivenUp(signal);
  return Object.assign(new Error(written ? `${why}: request sent, answer abandoned` : `${why}: request never sent`), { code: written ? ABANDONED : UNSENT });
}

/** The outcome of a message whose call was given up: it may have arrived only if its request was written. */
export function givenUp(deliveryId: string, signal: AbortSignal | undefined, written: boolean, provider: string): Draft {
  const why = whyGivenUp(signal);
  return transient(deliveryId, `${provider}: ${why}${written ? ', answer abandoned' : ', never sent'}`, { providerFault: true, maybeDelivered: written });
}

/**
 * The caller's signal, also aborted after `timeoutMs`: an adapter's own limit is a cancellation
 * like the caller's, never a timer race that leaves the request running. `done` releases the timer.
 */
export function withDeadline(signal: AbortSignal | undefined, timeoutMs: number): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const abort = () => controller.abort(signal?.reason);
  if (signal?.aborted) abort();
  else signal?.addEventListener('abort', abort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error(`timeout: no answer within ${timeoutMs} ms`)), timeoutMs);
  timer.unref();
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
    },
  };
}

/**
 * A call of one request per message (APNs, SMTP, Twilio, SNS): every message sent at once under
 * the call's deadline (the caller's signal, or the adapter's own timeout), outcomes settled.
 */
export async function sendEachWithin(
  provider: string,
  messages: readonly { deliveryId: string }[],
  signal: AbortSignal | undefined,
  timeoutMs: number,
  sendOne: (index: number, signal: AbortSignal) => Promise<Draft>,
): Promise<readonly SendOutcome[]> {
  const deadline = withDeadline(signal, timeoutMs);
  try {
    return settle(provider, await Promise.all(messages.map((_, i) => sendOne(i, deadline.signal))));
  } finally {
    deadline.done();
  }
}

/** Applies the rule above. */
export function settle(provider: string, drafts: readonly Draft[]): readonly SendOutcome[] {
  const outcomes = drafts.map((d) => d.outcome);
  if (drafts.length > 0 && drafts.every((d) => d.providerFault)) throw new ProviderUnavailableError(provider, outcomes);
  return outcomes;
}

/** Parses a Retry-After header value (seconds or an HTTP date) into ms. */
export function retryAfterMs(value: unknown, now = Date.now()): number | undefined {
  if (Array.isArray(value)) value = value[0];
  if (typeof value === 'number') return value >= 0 ? value * 1000 : undefined;
  if (typeof value !== 'string' || value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * APNs collapse ids are limited to 64 bytes: a delivery id that fits is sent as is, a longer one
 * as its SHA-256 (base64url, 43 characters), still deterministic so a resend collapses.
 */
export function collapseIdFor(deliveryId: string): string {
  return Buffer.byteLength(deliveryId) <= 64 ? deliveryId : crypto.createHash('sha256').update(deliveryId).digest('base64url');
}

/**
 * A short description of an error thrown by a client library before or around the exchange
 * (connection, TLS, timeout), where there is no vendor code. Any copy of the message's address
 * is cut out, in case the library quotes its request.
 */
export function describeError(err: unknown, address?: string): string {
  const text = describeThrown(err);
  return address ? text.split(address).join('<address>') : text;
}

function describeThrown(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' || typeof code === 'number' ? `${String(code)}: ${err.message}` : err.message;
  }
  return String(err);
}
