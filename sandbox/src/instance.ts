import crypto from 'node:crypto';
import { CredentialRegistry, credentialId, type CredentialOf, type SandboxCredential } from './credentials';
import { ReceiptDispatcher } from './receipts';
import type {
  AcceptedFilter,
  AcceptedMessage,
  CredentialInput,
  CredentialListing,
  Faults,
  InstanceStats,
  PermanentKind,
  ReceiptFailure,
  RecordingOptions,
  SandboxEndpoint,
  SandboxKind,
} from './types';
import { DEFAULT_FAULTS, DEFAULT_RECORDING } from './types';

/** The receipt failures each kind can report; other kinds send no receipts. */
const RECEIPT_FAILURES: Partial<Record<SandboxKind, readonly ReceiptFailure[]>> = {
  twilio: ['undelivered', 'failed'],
  sendgrid: ['bounce', 'dropped', 'deferred'],
};

/** Throws TypeError unless an instance of `kind` can report `outcome`. */
export function checkReceiptFailure(kind: SandboxKind, outcome: unknown): asserts outcome is ReceiptFailure {
  const allowed = RECEIPT_FAILURES[kind];
  if (allowed === undefined) throw new TypeError(`${kind} instances send no receipts`);
  if (!allowed.includes(outcome as ReceiptFailure)) throw new TypeError(`receipt outcome "${String(outcome)}" is not one of ${allowed.join(', ')}`);
}

/** What the fault settings decide for one request, before the protocol looks at it. */
export type Verdict =
  | { readonly kind: 'hang' }
  | { readonly kind: 'outage'; readonly retryAfterSeconds: number }
  | { readonly kind: 'ratelimited'; readonly retryAfterSeconds: number }
  | { readonly kind: 'error'; readonly retryAfterSeconds: number }
  | { readonly kind: 'ok' };

const HANG: Verdict = { kind: 'hang' };
const OK: Verdict = { kind: 'ok' };

const FAULT_KEYS = Object.keys(DEFAULT_FAULTS) as (keyof Faults)[];

/** Checks a fault patch (from code or from the control endpoint) and returns it typed. */
export function parseFaults(patch: unknown): Partial<Faults> {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw new TypeError('faults must be an object');
  }
  const out: Partial<Faults> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (!FAULT_KEYS.includes(key as keyof Faults)) throw new TypeError(`unknown fault setting "${key}"`);
    const k = key as keyof Faults;
    if (k === 'outage' || k === 'hang') {
      if (typeof value !== 'boolean') throw new TypeError(`${k} must be a boolean`);
      out[k] = value;
    } else if (k === 'rateLimitPerSecond' || k === 'rateLimitBurst') {
      if (value !== null && (typeof value !== 'number' || !(value > 0))) {
        throw new TypeError(`${k} must be a positive number or null`);
      }
      out[k] = value as number | null;
    } else {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new TypeError(`${k} must be a number >= 0`);
      }
      if (k === 'errorRate' && value > 1) throw new TypeError('errorRate must be between 0 and 1');
      out[k] = value;
    }
  }
  return out;
}

function gaussian(): number {
  // Box-Muller; 1 - random() keeps log away from 0.
  return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
}

function emptyStats(): InstanceStats {
  return { requests: 0, accepted: 0, permanent: 0, serverErrors: 0, rateLimited: 0, hung: 0, unauthorized: 0, invalid: 0, receiptsSent: 0, receiptsFailed: 0 };
}

/**
 * One provider instance: its fault settings, rate-limit bucket, refused addresses and records.
 * Everything on the request path is O(1): counters and map increments, a bounded ring buffer.
 */
export class SandboxInstance {
  readonly name: string;
  readonly kind: SandboxKind;
  /** Set once the instance's server listens. */
  endpoint!: SandboxEndpoint;
  /** Exposed for the protocol servers; read it through stats(). */
  readonly counters: InstanceStats = emptyStats();

  private current: Faults;
  /** When the first request arrived after the faults last changed: when a fault began to bite. */
  private firstSinceFaults: number | null = null;
  private tokens = 0;
  private refilledAt = 0;
  private readonly permanent = new Map<string, PermanentKind>();
  private recording: RecordingOptions;
  private total = 0;
  private byAddress = new Map<string, number>();
  private byDeliveryId = new Map<string, number>();
  // One entry per credential, so always counted.
  private byCredential = new Map<string, number>();
  private ring: AcceptedMessage[] = [];
  private ringNext = 0;
  private readonly initialFaults: Faults;
  private readonly registry: CredentialRegistry;
  private readonly receiptFailureOf = new Map<string, ReceiptFailure>();
  /** SendGrid: event webhook URL per API key's credential id. */
  private readonly eventWebhooks = new Map<string, string>();
  private readonly eventWebhookKey: crypto.KeyObject | undefined;
  /** SendGrid: the event-webhook verification key, base64 DER SubjectPublicKeyInfo (as SendGrid shows it). */
  readonly eventWebhookPublicKey: string | undefined;
  /** Sends this instance's delivery receipts; the protocol servers schedule them. */
  readonly receipts: ReceiptDispatcher;

  constructor(name: string, kind: SandboxKind, faults: Partial<Faults>, recording: Partial<RecordingOptions>) {
    this.name = name;
    this.kind = kind;
    this.initialFaults = { ...DEFAULT_FAULTS, ...parseFaults(faults) };
    this.current = { ...this.initialFaults };
    this.recording = { ...DEFAULT_RECORDING, ...recording };
    this.registry = new CredentialRegistry(kind);
    this.receipts = new ReceiptDispatcher(this.counters, () => this.current.receiptDelayMs);
    if (kind === 'sendgrid') {
      const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      this.eventWebhookKey = pair.privateKey;
      this.eventWebhookPublicKey = pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    }
    this.refill(true);
  }

  // ---- credentials -------------------------------------------------------------------------

  /**
   * Accepts a credential from now on; returns its id (apns:TEAM.KEY, fcm:token:<hash>,
   * fcm:<clientEmail>, sendgrid:<hash>, twilio:AC…, twilio:AC…:SK…, sns:AKID, smtp:user).
   * Registering an id again replaces its secret. Throws TypeError for a shape this kind does not take.
   */
  registerCredential(c: CredentialInput): string {
    return this.registry.register(c);
  }

  /** Registered at start: reset() brings these back (and drops the others). */
  registerInitialCredential(c: CredentialInput): string {
    return this.registry.registerInitial(c);
  }

  /** Refuses the credential from now on, as the vendor refuses a revoked one; false for an unknown id. */
  revokeCredential(id: string): boolean {
    return this.registry.revoke(id);
  }

  /** The active credential with this id and type (for the protocol servers). */
  credential<T extends SandboxCredential['type']>(id: string, type: T): CredentialOf<T> | undefined {
    return this.registry.get(id, type);
  }

  /** Whether a credential seen earlier (a cached token's) is still registered and not revoked. */
  credentialActive(c: SandboxCredential): boolean {
    return this.registry.isActive(c);
  }

  credentials(): CredentialListing[] {
    return this.registry.list();
  }

  // ---- receipts -----------------------------------------------------------------------------

  /** Receipts for these addresses report `outcome` instead of delivered (Twilio: undelivered | failed; SendGrid: bounce | dropped | deferred). */
  addReceiptFailures(addresses: Iterable<string>, outcome: ReceiptFailure): void {
    checkReceiptFailure(this.kind, outcome);
    for (const a of addresses) this.receiptFailureOf.set(a, outcome);
  }

  removeReceiptFailures(addresses: Iterable<string>): void {
    for (const a of addresses) this.receiptFailureOf.delete(a);
  }

  receiptFailures(): Record<string, ReceiptFailure> {
    return Object.fromEntries(this.receiptFailureOf);
  }

  /** The first receipt failure this kind knows, for a bare list of addresses. */
  defaultReceiptFailure(): ReceiptFailure | undefined {
    return RECEIPT_FAILURES[this.kind]?.[0];
  }

  receiptOutcome(address: string): ReceiptFailure | undefined {
    return this.receiptFailureOf.size === 0 ? undefined : this.receiptFailureOf.get(address);
  }

  /**
   * SendGrid: events of messages sent with this API key go to url (null: none). As on SendGrid,
   * the webhook belongs to the account, whether or not the key is registered here.
   */
  setEventWebhook(apiKey: string, url: string | null): void {
    if (this.kind !== 'sendgrid') throw new TypeError(`${this.name}: only SendGrid instances have an event webhook`);
    if (typeof apiKey !== 'string' || apiKey === '') throw new TypeError('apiKey must be a non-empty string');
    const id = credentialId.sendgrid(apiKey);
    if (url === null) {
      this.eventWebhooks.delete(id);
      return;
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError('url must be an absolute http(s) URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError('url must be an absolute http(s) URL');
    this.eventWebhooks.set(id, url);
  }

  eventWebhookFor(credential: string): string | undefined {
    return this.eventWebhooks.size === 0 ? undefined : this.eventWebhooks.get(credential);
  }

  eventWebhook(): { publicKey: string; webhooks: { credential: string; url: string }[] } {
    if (this.eventWebhookPublicKey === undefined) throw new TypeError(`${this.name}: only SendGrid instances have an event webhook`);
    return { publicKey: this.eventWebhookPublicKey, webhooks: [...this.eventWebhooks].map(([credential, url]) => ({ credential, url })) };
  }

  /** SendGrid's event signature: ECDSA-SHA256 over timestamp + body, DER, base64. */
  signEvents(timestamp: string, body: string): string {
    if (this.eventWebhookKey === undefined) throw new TypeError(`${this.name}: only SendGrid instances sign events`);
    return crypto.sign('sha256', Buffer.from(timestamp + body, 'utf8'), this.eventWebhookKey).toString('base64');
  }

  /**
   * Back to start: faults, no refused addresses or receipt failures, the start credentials only,
   * no event webhooks, pending receipts dropped, records and stats cleared.
   */
  reset(): void {
    this.resetFaults();
    this.permanent.clear();
    this.receiptFailureOf.clear();
    this.registry.reset();
    this.eventWebhooks.clear();
    this.receipts.cancel();
    this.clear();
  }

  /** Stops sending receipts for good. */
  close(): void {
    this.receipts.close();
  }

  // ---- faults ----------------------------------------------------------------------------

  faults(): Faults {
    return { ...this.current };
  }

  setFaults(patch: Partial<Faults>): Faults {
    const checked = parseFaults(patch);
    const rateChanged = 'rateLimitPerSecond' in checked || 'rateLimitBurst' in checked;
    this.current = { ...this.current, ...checked };
    this.firstSinceFaults = null;
    if (rateChanged) this.refill(true);
    return this.faults();
  }

  /** Back to the settings the instance started with. */
  resetFaults(): Faults {
    this.current = { ...this.initialFaults };
    this.firstSinceFaults = null;
    this.refill(true);
    return this.faults();
  }

  private refill(full: boolean): void {
    const rate = this.current.rateLimitPerSecond;
    const now = performance.now();
    if (rate === null) return;
    const burst = this.current.rateLimitBurst ?? rate;
    if (full) this.tokens = burst;
    else this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) * rate) / 1000);
    this.refilledAt = now;
  }

  /** Decides the fate of one arriving request and counts it. */
  gate(): Verdict {
    const f = this.current;
    this.counters.requests++;
    this.firstSinceFaults ??= Date.now();
    if (f.hang) {
      this.counters.hung++;
      return HANG;
    }
    if (f.outage) {
      this.counters.serverErrors++;
      return { kind: 'outage', retryAfterSeconds: f.retryAfterSeconds };
    }
    if (f.rateLimitPerSecond !== null) {
      this.refill(false);
      if (this.tokens >= 1) this.tokens -= 1;
      else {
        this.counters.rateLimited++;
        const wait = Math.max(1, Math.ceil((1 - this.tokens) / f.rateLimitPerSecond));
        return { kind: 'ratelimited', retryAfterSeconds: wait };
      }
    }
    if (f.errorRate > 0 && Math.random() < f.errorRate) {
      this.counters.serverErrors++;
      return { kind: 'error', retryAfterSeconds: f.retryAfterSeconds };
    }
    return OK;
  }

  /** A latency sample in ms from the current distribution. */
  delay(): number {
    const f = this.current;
    let ms = f.latencyMs;
    if (f.jitterMs > 0) ms += Math.random() * f.jitterMs;
    if (f.latencyStddevMs > 0) ms += gaussian() * f.latencyStddevMs;
    return ms > 0 ? ms : 0;
  }

  /** Runs `answer` after a latency sample (at once when it is 0). */
  later(answer: () => void): void {
    const ms = this.delay();
    if (ms > 0) setTimeout(answer, ms);
    else answer();
  }

  // ---- refused addresses ----------------------------------------------------------------

  /** Addresses refused for good; 'unregistered' (default) or 'invalid' (malformed). */
  addPermanentFailures(addresses: Iterable<string>, kind: PermanentKind = 'unregistered'): void {
    for (const a of addresses) this.permanent.set(a, kind);
  }

  removePermanentFailures(addresses: Iterable<string>): void {
    for (const a of addresses) this.permanent.delete(a);
  }

  permanentFailures(): Record<string, PermanentKind> {
    return Object.fromEntries(this.permanent);
  }

  /** The explicit list only; each protocol adds its own format rules ("bad-" prefixes, magic numbers). */
  listedFailure(address: string): PermanentKind | undefined {
    return this.permanent.size === 0 ? undefined : this.permanent.get(address);
  }

  // ---- records ---------------------------------------------------------------------------

  setRecording(patch: Partial<RecordingOptions>): RecordingOptions {
    const ordered = this.accepted();
    this.recording = { ...this.recording, ...patch };
    if (!this.recording.countByAddress) this.byAddress.clear();
    if (!this.recording.countByDeliveryId) this.byDeliveryId.clear();
    const limit = this.recording.logLimit;
    this.ring = limit > 0 ? ordered.slice(-limit) : [];
    this.ringNext = limit > 0 ? this.ring.length % limit : 0;
    return { ...this.recording };
  }

  recordingOptions(): RecordingOptions {
    return { ...this.recording };
  }

  /** Called by the protocol servers when they answer "accepted". */
  record(m: AcceptedMessage): void {
    this.total++;
    this.counters.accepted++;
    const r = this.recording;
    if (r.countByAddress) this.byAddress.set(m.address, (this.byAddress.get(m.address) ?? 0) + 1);
    if (r.countByDeliveryId && m.deliveryId !== undefined) {
      this.byDeliveryId.set(m.deliveryId, (this.byDeliveryId.get(m.deliveryId) ?? 0) + 1);
    }
    if (m.credential !== undefined) this.byCredential.set(m.credential, (this.byCredential.get(m.credential) ?? 0) + 1);
    if (r.logLimit > 0) {
      if (this.ring.length < r.logLimit) this.ring.push(m);
      else this.ring[this.ringNext] = m;
      this.ringNext = (this.ringNext + 1) % r.logLimit;
    }
  }

  /** The logged accepted messages (the last `logLimit`), oldest first. */
  accepted(filter: AcceptedFilter = {}): AcceptedMessage[] {
    const ordered =
      this.ring.length < this.recording.logLimit || this.ringNext === 0
        ? this.ring.slice()
        : this.ring.slice(this.ringNext).concat(this.ring.slice(0, this.ringNext));
    const picked = ordered.filter(
      (m) =>
        (filter.address === undefined || m.address === filter.address) &&
        (filter.deliveryId === undefined || m.deliveryId === filter.deliveryId) &&
        (filter.credential === undefined || m.credential === filter.credential) &&
        (filter.since === undefined || m.at >= filter.since) &&
        (filter.receivedSince === undefined || m.receivedAt >= filter.receivedSince),
    );
    return filter.limit === undefined ? picked : picked.slice(-filter.limit);
  }

  /** Accepted messages in total, or for one address / delivery id / credential (from the counters, not the log). */
  count(filter: { address?: string; deliveryId?: string; credential?: string } = {}): number {
    if (filter.address !== undefined) return this.byAddress.get(filter.address) ?? 0;
    if (filter.deliveryId !== undefined) return this.byDeliveryId.get(filter.deliveryId) ?? 0;
    if (filter.credential !== undefined) return this.byCredential.get(filter.credential) ?? 0;
    return this.total;
  }

  countsByCredential(): ReadonlyMap<string, number> {
    return this.byCredential;
  }

  countsByAddress(): ReadonlyMap<string, number> {
    return this.byAddress;
  }

  countsByDeliveryId(): ReadonlyMap<string, number> {
    return this.byDeliveryId;
  }

  /** Addresses (or delivery ids) accepted more than once. */
  duplicates(by: 'address' | 'deliveryId' = 'deliveryId'): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, n] of by === 'address' ? this.byAddress : this.byDeliveryId) if (n > 1) out.set(k, n);
    return out;
  }

  /** Wall-clock ms of the first request since the faults were last set (null: none yet). */
  firstRequestSinceFaults(): number | null {
    return this.firstSinceFaults;
  }

  stats(): InstanceStats {
    return { ...this.counters };
  }

  /** Forgets records and statistics (not faults nor refused addresses). */
  clear(): void {
    this.total = 0;
    this.byAddress = new Map();
    this.byDeliveryId = new Map();
    this.byCredential = new Map();
    this.ring = [];
    this.ringNext = 0;
    Object.assign(this.counters, emptyStats());
  }

  /** Resolves once `count(filter)` reaches n; rejects after timeoutMs. */
  async waitForCount(n: number, opts: { address?: string; deliveryId?: string; credential?: string; timeoutMs?: number } = {}): Promise<void> {
    const until = Date.now() + (opts.timeoutMs ?? 10_000);
    while (this.count(opts) < n) {
      if (Date.now() > until) {
        throw new Error(`${this.name}: ${this.count(opts)} accepted, waited for ${n}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  describe(): object {
    return {
      name: this.name,
      kind: this.kind,
      endpoint: this.endpoint,
      faults: this.faults(),
      stats: this.stats(),
      accepted: this.total,
      recording: this.recording,
      permanentFailures: this.permanentFailures(),
      receiptFailures: this.receiptFailures(),
      credentials: this.credentials(),
      ...(this.eventWebhookPublicKey !== undefined ? { eventWebhook: this.eventWebhook() } : {}),
    };
  }
}
