import { inSpan, SpanKind } from '#platform/tracing';
import { userKeyId } from '#schema/streams';
import { failpoint } from '#platform/failpoints';
import { USERS, userDocId, type UserDocument } from '#projections/users/document';
import type { SealedDevice } from '#schema/events';
import { deliverableDevice, withDataKey, type Ineligibility } from '../eligibility';
import type { OutboundMessage } from '../providers/port';
import { encodeReceipt } from '../providers/receipts';
import { NO_PROVIDER } from './scheduler';
import type { Recorder } from '../recorder';
import type { Ownership } from './ownership';
import type { Scheduler } from './scheduler';
import type { Channel, Item, Pending, Tasks, WorkerDeps } from './state';

type Ready = { item: Item; message: OutboundMessage };

/** Channels whose providers send delivery receipts back (Twilio status callbacks, SendGrid events). */
const RECEIPTED: ReadonlySet<Channel> = new Set(['sms', 'email']);

/** The message a provider gets: it expires with the notification's deadline; receipts find their way back by the token. */
const messageOf = (item: Item, address: string): OutboundMessage => ({
  deliveryId: item.ref.deliveryId,
  address,
  text: item.notification.text,
  expiresAt: item.deadline,
  ...(RECEIPTED.has(item.ref.channel)
    ? {
        receipt: encodeReceipt({
          tenantId: item.batch.tenantId,
          notificationId: item.batch.notificationId,
          partition: item.batch.partition,
          requestedPosition: item.batch.requestedPosition,
          requestedAt: item.batch.requestedAt,
          deliveryId: item.ref.deliveryId,
          userId: item.ref.userId,
          deviceId: item.ref.deviceId,
          channel: item.ref.channel,
        }),
      }
    : {}),
});

/**
 * A dispatch round from intent to outcome: logs the intent, checks who may still receive, sends
 * through the router, and turns each answer into an attempt and an outcome (succeed, fail, retry
 * with backoff, expire).
 */
export class Sender {
  /**
   * Per delivery, its attempts that may have reached a provider: accepted, or answer lost (a call
   * given up after its request was written, a reset). One sent before a crash counts as one.
   */
  private readonly copies = new WeakMap<Item, number>();

  constructor(
    private readonly deps: Pick<WorkerDeps, 'readStore' | 'cipher' | 'router' | 'clock' | 'logger' | 'config' | 'metrics'> &
      Readonly<{ recorder: Recorder; pending: Pending; scheduler: Scheduler; ownership: Ownership; tasks: Tasks }>,
  ) {}

  async dispatch(round: Item[]): Promise<void> {
    const { recorder, ownership } = this.deps;
    // The intent is logged before any provider sees a message: a crash from here on marks these
    // deliveries possibly duplicated when they are sent again.
    for (const item of round) {
      if (item.dispatched) continue;
      item.dispatched = true;
      recorder.dispatched(item.batch, [item.ref]);
    }
    await recorder.flush();
    failpoint('delivery:after-dispatch-intent');
    // A rebalance that began meanwhile decides who sends: the intent alone makes a new owner wait
    // for this worker's outcome (or, past the handover time, send again flagged).
    await ownership.settledRebalance();
    const mine = round.filter((item) => ownership.ours(item));
    if (mine.length === 0) return;
    // The read models hold every change accepted before the request (the slice caught up once);
    // one accepted since is honoured here as soon as the read models have it, without a wait.
    const second = await this.eligible(mine);
    for (const r of second.refused) {
      this.deps.pending.sending.delete(r.item);
      this.fail(r.item, null, r.reason);
    }
    // One send per tenant and channel: each tenant has its own chain of integrations.
    const groups = new Map<string, { tenantId: string; channel: Channel; list: Ready[] }>();
    for (const o of second.ok) {
      const key = `${o.item.batch.tenantId}\u0000${o.item.ref.channel}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { tenantId: o.item.batch.tenantId, channel: o.item.ref.channel, list: [] }));
      g.list.push(o);
    }
    for (const g of groups.values()) this.deps.tasks.track(this.send(g.tenantId, g.channel, g.list));
  }

  /** Who may still receive: checked at send time, not only at fan-out. */
  private async eligible(items: readonly Item[]): Promise<{ ok: Ready[]; refused: { item: Item; reason: Ineligibility }[] }> {
    const { readStore, cipher, clock } = this.deps;
    const ids = [...new Set(items.map((i) => userDocId(i.batch.tenantId, i.ref.userId)))];
    const users = new Map((await readStore.getMany<UserDocument>(USERS, ids)).map((u) => [u.id, u]));
    const now = clock.now().toISOString();
    const ok: Ready[] = [];
    const refused: { item: Item; reason: Ineligibility }[] = [];
    const deliverable: { item: Item; address: SealedDevice['address'] }[] = [];
    for (const item of items) {
      const device = deliverableDevice(users.get(userDocId(item.batch.tenantId, item.ref.userId)), item.ref.deviceId, now);
      if (device.ok) deliverable.push({ item, address: device.value.address });
      else refused.push({ item, reason: device.reason });
    }
    // One vault read for the round's keys, not one round trip per delivery.
    const keys = await cipher.keysFor(deliverable.map(({ item }) => userKeyId(item.batch.tenantId, item.ref.userId)));
    for (const { item, address } of deliverable) {
      const key = withDataKey(keys.get(userKeyId(item.batch.tenantId, item.ref.userId)));
      if (!key.ok) {
        refused.push({ item, reason: key.reason });
        continue;
      }
      ok.push({ item, message: messageOf(item, cipher.open(key.value, address)) });
    }
    return { ok, refused };
  }

  private async send(tenantId: string, channel: Channel, list: Ready[]): Promise<void> {
    const { pending, recorder, scheduler, ownership } = this.deps;
    const byId = new Map(list.map((o) => [o.item.ref.deliveryId, o.item]));
    const now = this.deps.clock.now().getTime();
    const live = list.filter((o) => {
      if (o.item.deadline > now) return true;
      pending.sending.delete(o.item);
      this.expire(o.item, 'deadline passed before a provider could take it');
      return false;
    });
    let result;
    try {
      const trace = live[0]?.item.notification.trace;
      const send = () => this.deps.router.send(tenantId, channel, live.map((o) => o.message), (id) => byId.get(id)?.lastFailedOn ?? null);
      // One span per provider call, in the trace of its first delivery's send (a call may carry several sends).
      result = trace ? await inSpan('provider.send', { parent: trace, kind: SpanKind.CLIENT, attributes: { 'notify.tenant': tenantId, 'notify.channel': channel, 'notify.deliveries': live.length } }, send) : await send();
    } catch (e) {
      result = { sent: [], unsent: live.map((o) => o.message), waitMs: 100 };
      this.deps.logger.error({ err: e, channel }, 'router failed');
    }
    const handled = new Set<string>();
    for (const routed of result.sent) {
      this.deps.metrics?.attemptSeconds.observe({ integration: routed.provider }, routed.latencyMs / 1000);
      const acceptedAt = this.deps.clock.now().getTime();
      const refused = routed.outcomes.filter((o) => o.outcome !== 'accepted');
      // Reasons are the adapters' own words (codes, never a provider's text, which may quote an address).
      if (refused.length > 0 && this.deps.logger.isLevelEnabled('debug'))
        this.deps.logger.debug({ tenantId, channel, provider: routed.provider, refused: refused.length, of: routed.outcomes.length, reason: refused[0]!.reason }, 'provider refused messages');
      for (const outcome of routed.outcomes) {
        const item = byId.get(outcome.deliveryId);
        if (!item || handled.has(outcome.deliveryId)) continue;
        handled.add(outcome.deliveryId);
        pending.sending.delete(item);
        item.attempts++;
        item.lastFailedOn = outcome.outcome === 'transient' ? routed.provider : null;
        const before = this.possibleCopies(item);
        const reached = outcome.outcome === 'accepted' || (outcome.outcome === 'transient' && outcome.maybeDelivered === true);
        const copies = before + (reached ? 1 : 0);
        this.copies.set(item, copies);
        recorder.attempted(item.batch, {
          ...item.ref,
          provider: routed.provider,
          latencyMs: Math.round(routed.latencyMs),
          outcome: outcome.outcome,
          ...(outcome.outcome === 'accepted' ? {} : { reason: outcome.reason }),
          ...(before > 0 ? { possiblyDuplicate: true } : {}),
          // Said wherever it is news: a copy beyond the first, or one whose answer was lost.
          ...(copies > 1 || (copies === 1 && outcome.outcome !== 'accepted') ? { possibleCopies: copies } : {}),
        });
        if (outcome.outcome === 'accepted') {
          this.deps.metrics?.deadlineSlackSeconds.observe({ channel: item.ref.channel }, (item.deadline - acceptedAt) / 1000);
          this.succeed(item, routed.provider);
        }
        else if (outcome.outcome === 'permanent') {
          if (outcome.invalidDevice) recorder.deviceInvalidated(item.batch, item.ref.userId, item.ref.deviceId, routed.provider, outcome.reason);
          this.fail(item, routed.provider, outcome.reason);
        } else if (outcome.credentialsRejected) {
          // The integration's fault, not the device's: the next integration takes it at once.
          this.retry(item, `${routed.provider}: ${outcome.reason}`, false, undefined, routed.elsewhere);
        } else {
          // From here on every attempt of it is flagged: the lost one may have arrived.
          if (outcome.maybeDelivered) item.possiblyDuplicate = true;
          this.retry(item, `${routed.provider}: ${outcome.reason}`, true, outcome.retryAfterMs, routed.elsewhere);
        }
      }
    }
    if (result.noProvider) {
      for (const o of live) {
        handled.add(o.item.ref.deliveryId);
        pending.sending.delete(o.item);
        this.fail(o.item, null, NO_PROVIDER);
      }
    }
    for (const message of result.unsent) {
      const item = byId.get(message.deliveryId);
      if (!item || handled.has(message.deliveryId)) continue;
      handled.add(message.deliveryId);
      pending.sending.delete(item);
      if (!ownership.ours(item)) continue;
      scheduler.delay(item, Date.now() + result.waitMs);
    }
    // A provider that answered for fewer messages than it was given: the rest count as not sent.
    for (const o of live) {
      if (handled.has(o.item.ref.deliveryId)) continue;
      pending.sending.delete(o.item);
      this.retry(o.item, 'no outcome from the provider', true);
    }
    scheduler.wake();
  }

  // ---- outcomes ----------------------------------------------------------------------------

  /** `elsewhere`: another integration takes it now (see Routed): no wait. */
  retry(item: Item, reason: string, counted: boolean, retryAfterMs?: number, elsewhere?: true): void {
    item.lastReason = reason;
    // No longer ours: the new owner sends it (flagged, since an attempt of it is in the log).
    if (!this.deps.ownership.ours(item)) return;
    const { retryBaseMs, retryMaxMs } = this.deps.config;
    const backoff = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.max(0, item.attempts - 1));
    // Full jitter: spread retries so a recovering provider is not hit by a wall of them.
    const wait = elsewhere ? 0 : Math.max(retryAfterMs ?? 0, counted ? Math.random() * backoff : retryBaseMs);
    if (this.deps.clock.now().getTime() + wait >= item.deadline) {
      this.expire(item, `deadline passed after ${item.attempts} attempt(s); last error: ${reason}`);
      return;
    }
    this.deps.scheduler.delay(item, Date.now() + wait);
    this.deps.scheduler.wake();
  }

  /** Attempts of the item so far that may have reached a provider (one lost in a crash before this worker had it). */
  private possibleCopies(item: Item): number {
    return this.copies.get(item) ?? (item.possiblyDuplicate ? 1 : 0);
  }

  private succeed(item: Item, provider: string): void {
    this.deps.recorder.succeeded(item.batch, item.ref, provider, Math.max(1, this.possibleCopies(item)));
  }

  fail(item: Item, provider: string | null, reason: string): void {
    this.deps.recorder.failed(item.batch, item.ref, provider, reason);
  }

  expire(item: Item, reason: string): void {
    this.deps.recorder.expired(item.batch, item.ref, reason);
  }
}
