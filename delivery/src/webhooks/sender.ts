import { performance } from 'node:perf_hooks';
import { Webhook } from 'standardwebhooks';
import { streams } from '#schema/streams';
import type { Sealed } from '#schema/events';
import type { EventStore } from '#platform/event-store/port';
import type { Change, ReadStore } from '#platform/read-store/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import { handleCommand } from '#command/handler';
import { webhookDecider } from '#command/webhook/decider';
import { openWebhookSecret } from '#command/webhook/commands';
import {
  WEBHOOK_ATTEMPTS,
  WEBHOOK_ATTEMPTS_KEPT,
  WEBHOOK_ENDPOINTS,
  WEBHOOK_OUTBOX,
  WEBHOOK_SENDERS,
  attemptDocId,
  type WebhookAttemptDocument,
  type WebhookEndpointDocument,
  type WebhookMessage,
  type WebhookOutboxDocument,
  type WebhookSenderDocument,
} from '#projections/webhooks/document';
import { retryAfterMs } from '../providers/outcomes';
import { backoffMs, type WebhookConfig } from './config';

export type SenderDeps = Readonly<{
  eventStore: EventStore;
  readStore: ReadStore;
  cipher: PersonalDataCipher;
  clock: Clock;
  logger: Logger;
  config: WebhookConfig;
  fetch: typeof fetch;
  random: () => number;
  /** Shared by every sender of the process: requests in flight at once. */
  slots: Slots;
}>;

/** A counting semaphore: at most `size` holders at once, served in arrival order. */
export class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.used >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.used++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.used--;
    }
  }
}

/** The reason recorded in WebhookEndpointDisabled. */
export const CONTINUOUS_FAILURE = 'continuous-failure';

/** One `webhook-id` per request, the same whenever the same messages are sent again. */
export const requestIdOf = (messages: readonly WebhookMessage[]): string =>
  `batch_${messages[0]!.id.slice('msg_'.length)}-${messages.at(-1)!.id.slice('msg_'.length)}`;

type Result = Readonly<{ ok: boolean; status: number | null; error: string | null; durationMs: number; retryAfterMs?: number | undefined }>;

/** How a sender ended: nothing left to send, or it disabled the endpoint at this version. */
export type SenderExit = Readonly<{ kind: 'idle' }> | Readonly<{ kind: 'disabled'; version: number }> | Readonly<{ kind: 'stopped' }>;

const networkCode = (e: unknown): string => {
  const code = (e as { cause?: { code?: unknown } } | null)?.cause?.code ?? (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(code) ? code : 'network-error';
};

/**
 * Sends one endpoint's outbox in log order: the oldest messages first, up to `batchSize` per
 * request, the next request only once the receiver answered 2xx to this one. A failing endpoint
 * is retried with exponential backoff and jitter until it has failed continuously for
 * `disableAfterMs`; then it is disabled (an event in the log) and this sender ends. It also ends
 * when the outbox is empty; the dispatcher starts it again when messages arrive.
 */
export class EndpointSender {
  readonly done: Promise<SenderExit>;
  /** Set as the sender decides to end, before `done` settles: a poke from then on must start a new one. */
  exited: SenderExit | null = null;
  private stopped = false;
  private woken = false;
  private wake: (() => void) | null = null;
  private inFlight: AbortController | null = null;
  /** Not before this (performance.now()): the backoff of the failure streak. */
  private notBefore: number | null = null;
  private signer: { sealed: Sealed; webhook: Webhook } | null = null;

  constructor(
    private readonly deps: SenderDeps,
    readonly key: string,
    /** Called as the sender ends, synchronously. */
    private readonly onExit: (exit: SenderExit) => void = () => undefined,
  ) {
    this.done = this.run();
  }

  /** New messages, or the endpoint changed: look again (a backoff still holds unless the endpoint changed). */
  poke(): void {
    this.woken = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.inFlight?.abort();
    this.poke();
    await this.done;
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.wake = finish;
    });
  }

  private async run(): Promise<SenderExit> {
    let errors = 0;
    while (!this.stopped) {
      this.woken = false;
      try {
        const exit = await this.step();
        errors = 0;
        if (exit) return this.exit(exit);
      } catch (e) {
        if (this.stopped) break;
        errors++;
        const waitMs = backoffMs({ retryBaseMs: 100, retryMaxMs: 30_000 }, errors, this.deps.random);
        this.deps.logger.warn({ err: e, endpoint: this.key, waitMs }, 'webhook sender: store error; trying again');
        await this.sleep(waitMs);
      }
    }
    return this.exit({ kind: 'stopped' });
  }

  private exit(exit: SenderExit): SenderExit {
    this.exited = exit;
    this.onExit(exit);
    return exit;
  }

  /** One request, or one wait. A result ends the sender. */
  private async step(): Promise<SenderExit | null> {
    const { readStore, clock, config } = this.deps;
    const endpoint = await readStore.get<WebhookEndpointDocument>(WEBHOOK_ENDPOINTS, this.key);
    if (!endpoint || endpoint.status !== 'enabled') return { kind: 'idle' };
    let state = (await readStore.get<WebhookSenderDocument>(WEBHOOK_SENDERS, this.key)) ?? {
      id: this.key, tenantId: endpoint.tenantId, endpointId: endpoint.endpointId, version: endpoint.version, sent: 0, attempts: 0, failures: 0, failingSince: null, lastSuccessAt: null,
    };
    if (state.version !== endpoint.version) {
      // Changed (another URL) or enabled again: a fresh start, no backoff.
      state = { ...state, version: endpoint.version, failures: 0, failingSince: null };
      this.notBefore = null;
    }
    if (state.failures > 0) {
      // After a restart the streak's backoff starts over from now.
      this.notBefore ??= performance.now() + backoffMs(config, state.failures, this.deps.random);
      const waitMs = this.notBefore - performance.now();
      if (waitMs > 0) {
        await this.sleep(waitMs);
        return null;
      }
    }
    const page = await readStore.find<WebhookOutboxDocument>(WEBHOOK_OUTBOX, { endpointKey: this.key }, { limit: config.batchSize, sort: { field: 'order', direction: 'asc' } });
    if (page.items.length === 0) return this.woken ? null : { kind: 'idle' };
    const messages = page.items.map((d) => d.message);
    const webhookId = requestIdOf(messages);
    const at = clock.now();
    const result = await this.deps.slots.run(() =>
      this.stopped ? Promise.resolve<Result>({ ok: false, status: null, error: 'aborted', durationMs: 0 }) : this.post(endpoint, webhookId, messages));
    if (this.stopped && result.error === 'aborted') return { kind: 'stopped' };

    const n = state.attempts + 1;
    const attempt: WebhookAttemptDocument = {
      id: attemptDocId(this.key, n), endpointKey: this.key, n, at: at.toISOString(), webhookId, messages: messages.length,
      status: result.status, error: result.error, durationMs: Math.round(result.durationMs), ok: result.ok,
    };
    const changes: Change[] = [{ op: 'put', collection: WEBHOOK_ATTEMPTS, doc: attempt }];
    if (n > WEBHOOK_ATTEMPTS_KEPT) changes.push({ op: 'delete', collection: WEBHOOK_ATTEMPTS, id: attemptDocId(this.key, n - WEBHOOK_ATTEMPTS_KEPT) });
    const now = clock.now();
    if (result.ok) {
      for (const d of page.items) changes.push({ op: 'delete', collection: WEBHOOK_OUTBOX, id: d.id });
      state = { ...state, attempts: n, sent: state.sent + messages.length, failures: 0, failingSince: null, lastSuccessAt: now.toISOString() };
      this.notBefore = null;
    } else {
      state = { ...state, attempts: n, failures: state.failures + 1, failingSince: state.failingSince ?? at.toISOString() };
      const waitMs = Math.min(config.retryMaxMs, Math.max(backoffMs(config, state.failures, this.deps.random), result.retryAfterMs ?? 0));
      this.notBefore = performance.now() + waitMs;
    }
    changes.push({ op: 'put', collection: WEBHOOK_SENDERS, doc: state });
    await readStore.commit({ checkpoints: [], changes });

    if (!result.ok && state.failingSince && now.getTime() - Date.parse(state.failingSince) >= config.disableAfterMs) {
      await this.disable(endpoint, state.failingSince, now);
      return { kind: 'disabled', version: endpoint.version };
    }
    return null;
  }

  private async disable(endpoint: WebhookEndpointDocument, failingSince: string, now: Date): Promise<void> {
    const { appended } = await handleCommand(this.deps.eventStore, streams.webhooks(endpoint.tenantId), webhookDecider, {
      type: 'DisableWebhookEndpoint',
      data: { endpointId: endpoint.endpointId, reason: CONTINUOUS_FAILURE, failingSince, version: endpoint.version },
      now,
    }, { tenantId: endpoint.tenantId, actor: 'system', requestId: `webhook-disable-${endpoint.endpointId}-${endpoint.version}`, at: now.toISOString() });
    if (appended.length > 0) {
      this.deps.logger.warn({ tenantId: endpoint.tenantId, endpointId: endpoint.endpointId, failingSince }, 'webhook endpoint disabled after failing continuously');
    }
  }

  private async webhookFor(endpoint: WebhookEndpointDocument): Promise<Webhook | null> {
    if (this.signer?.sealed === endpoint.secret) return this.signer.webhook;
    const secret = await openWebhookSecret(this.deps.cipher, endpoint.tenantId, endpoint.secret);
    if (secret === null) return null;
    this.signer = { sealed: endpoint.secret, webhook: new Webhook(secret) };
    return this.signer.webhook;
  }

  private async post(endpoint: WebhookEndpointDocument, webhookId: string, messages: readonly WebhookMessage[]): Promise<Result> {
    const webhook = await this.webhookFor(endpoint);
    if (!webhook) return { ok: false, status: null, error: 'secret-unavailable', durationMs: 0 };
    const body = JSON.stringify(messages);
    const timestamp = this.deps.clock.now();
    const controller = new AbortController();
    this.inFlight = controller;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.deps.config.requestTimeoutMs);
    const started = performance.now();
    try {
      const response = await this.deps.fetch(endpoint.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'notify-webhooks/1',
          'webhook-id': webhookId,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': webhook.sign(webhookId, timestamp, body),
        },
        body,
        redirect: 'manual',
        signal: controller.signal,
      });
      // The answer's body is not read: nothing of the receiver's text is kept.
      await response.body?.cancel().catch(() => undefined);
      const ok = response.status >= 200 && response.status < 300;
      return {
        ok,
        status: response.status,
        error: ok ? null : `http-${response.status}`,
        durationMs: performance.now() - started,
        retryAfterMs: ok ? undefined : retryAfterMs(response.headers.get('retry-after') ?? undefined),
      };
    } catch (e) {
      const error = timedOut ? 'timeout' : controller.signal.aborted ? 'aborted' : networkCode(e);
      return { ok: false, status: null, error, durationMs: performance.now() - started };
    } finally {
      clearTimeout(timer);
      this.inFlight = null;
    }
  }
}
