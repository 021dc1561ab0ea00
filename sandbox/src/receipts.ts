import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { InstanceStats } from './types';

/** Tries per receipt request: the first and three retries, backing off from the receipt delay. */
const ATTEMPTS = 4;
const ATTEMPT_TIMEOUT_MS = 5000;

/**
 * Sends an instance's delivery receipts (webhook POSTs): timers it can cancel all at once (a reset,
 * a close), retries with backoff, and the outcome counted per receipt in the instance's stats.
 */
export class ReceiptDispatcher {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly requests = new Set<http.ClientRequest>();
  private readonly waiters = new Set<(ok: boolean) => void>();
  private readonly cancelled: (() => void)[] = [];
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64 });
  /** Bumped by cancel(): work scheduled before it stops at its next step. */
  private generation = 0;
  private closed = false;

  constructor(
    private readonly counters: InstanceStats,
    private readonly delayMs: () => number,
  ) {}

  /** Runs fn after ms unless cancelled first. */
  after(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  /**
   * Steps of one receipt sequence (a message's statuses): once cancel() runs, its waits resolve
   * false and its posts are skipped, even those begun after the cancel.
   */
  sequence(): { wait(ms: number): Promise<boolean>; post(url: string, body: string, headers: Record<string, string>): Promise<boolean> } {
    const generation = this.generation;
    return {
      wait: (ms) => this.waitIn(generation, ms),
      post: (url, body, headers) => this.postIn(generation, url, body, headers, 1),
    };
  }

  /**
   * POSTs body to url until a 2xx answer or ATTEMPTS tries; counts `receipts` (the events the body
   * carries) as sent or failed. Resolves whether it was delivered.
   */
  post(url: string, body: string, headers: Record<string, string>, receipts = 1): Promise<boolean> {
    return this.postIn(this.generation, url, body, headers, receipts);
  }

  /** Resolves true after ms, or false as soon as the generation is cancelled. */
  private waitIn(generation: number, ms: number): Promise<boolean> {
    if (this.closed || generation !== this.generation) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        this.timers.delete(t);
        this.waiters.delete(done);
        resolve(ok);
      };
      const t = setTimeout(() => done(generation === this.generation), ms);
      this.timers.add(t);
      this.waiters.add(done);
    });
  }

  private async postIn(generation: number, url: string, body: string, headers: Record<string, string>, receipts: number): Promise<boolean> {
    const backoff = Math.max(10, this.delayMs());
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (attempt > 0 && !(await this.waitIn(generation, backoff * 2 ** (attempt - 1)))) return false;
      if (this.closed || generation !== this.generation) return false;
      const status = await this.once(url, body, headers);
      if (generation !== this.generation) return false;
      if (status >= 200 && status < 300) {
        this.counters.receiptsSent += receipts;
        return true;
      }
    }
    this.counters.receiptsFailed += receipts;
    return false;
  }

  /** One request; the status, or 0 when it could not be made or timed out. */
  private once(url: string, body: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        return resolve(0);
      }
      const secure = target.protocol === 'https:';
      if (!secure && target.protocol !== 'http:') return resolve(0);
      const req = (secure ? https : http).request(
        target,
        {
          method: 'POST',
          agent: secure ? this.httpsAgent : this.httpAgent,
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'notify-provider-sandbox' },
          timeout: ATTEMPT_TIMEOUT_MS,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(0));
        },
      );
      this.requests.add(req);
      req.on('close', () => this.requests.delete(req));
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(0));
      req.end(body);
    });
  }

  /** fn runs on every cancel(), to drop state kept alongside the timers (a batch being filled). */
  onCancel(fn: () => void): void {
    this.cancelled.push(fn);
  }

  /** Drops every pending receipt (timers, retries, requests in flight). */
  cancel(): void {
    this.generation++;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const w of [...this.waiters]) w(false);
    for (const r of this.requests) r.destroy();
    this.requests.clear();
    for (const fn of this.cancelled) fn();
  }

  close(): void {
    this.closed = true;
    this.cancel();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/**
 * Twilio's X-Twilio-Signature: HMAC-SHA1 keyed by the account's auth token over the full URL
 * followed by each POST parameter's name and value, sorted by name; base64.
 */
export function twilioSignature(authToken: string, url: string, params: Readonly<Record<string, string>>): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, k) => acc + k + params[k], url);
  return crypto.createHmac('sha1', authToken).update(Buffer.from(data, 'utf8')).digest('base64');
}
