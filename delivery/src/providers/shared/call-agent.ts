import { AsyncLocalStorage } from 'node:async_hooks';
import type http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { givenUpError, retryAfterMs } from '../outcomes';

/** One provider call as the connection pool sees it: the requests it made, and what they met. */
export type Call = {
  readonly signal: AbortSignal | undefined;
  /** Told of every answer to one of the call's requests (SendOptions.onAnswer). */
  readonly onAnswer: (() => void) | undefined;
  /** A request of this call got a connection: from then on it may be on the wire. */
  written: boolean;
  /** The longest Retry-After a 429 or 5xx answer to this call asked for, in ms. */
  retryAfterMs?: number;
};

type AgentInternals = {
  addRequest(req: http.ClientRequest, options: object): void;
  createConnection(options: object): Duplex;
  requests: Record<string, http.ClientRequest[] | undefined>;
  freeSockets: Record<string, unknown[] | undefined>;
  sockets: Record<string, unknown[] | undefined>;
};
type Failable = { onSocket(socket: null, err: Error): void };

const agentPrototype = https.Agent.prototype as unknown as AgentInternals;

/** Connections being set up at once, per agent, unless told otherwise. */
export const MAX_CONNECTING = 64;

/**
 * An https.Agent that knows which provider call each request belongs to (AsyncLocalStorage, so
 * any SDK taking an agent works unchanged) and cancels a call's requests when its signal aborts: a
 * request still waiting for a connection leaves the agent's queue and fails without a byte
 * written (ECANCELED); one already given a connection has its socket destroyed (ECONNABORTED:
 * it may have arrived). A request made after the abort is failed at once and never queued. It
 * also notes the Retry-After of 429 and 5xx answers, which some SDKs (firebase-admin) drop.
 */
export class CallAgent extends https.Agent {
  private readonly calls = new AsyncLocalStorage<Call & { requests: Set<http.ClientRequest> }>();
  private readonly onWire = new WeakSet<http.ClientRequest>();
  private readonly maxConnecting: number;
  private connecting = 0;
  /** Requests waiting for a connection to be set up: the agent has not seen them yet. */
  private readonly held: { req: http.ClientRequest; options: object }[] = [];

  /**
   * `maxConnecting`: connections set up at once (TCP and TLS handshakes); a request needing
   * another waits for one of them, as it would for a free socket. A failover sends hundreds of
   * requests to a secondary with no connection yet: opened all at once, their handshakes shared
   * the event loop with every other, so the first request went out after the last handshake (up
   * to a second on 2 cores), and a provider sees a storm of new connections.
   */
  constructor(options: https.AgentOptions & Readonly<{ maxConnecting?: number }> = {}) {
    const { maxConnecting = MAX_CONNECTING, ...agentOptions } = options;
    // Every connection the pool may open stays open once free. With Node's default (256 free)
    // below maxSockets (FCM 512), a burst's extra connections closed when released and the next
    // burst opened them again, TLS handshake included: 9% of a fan-out's CPU.
    super({ ...agentOptions, maxFreeSockets: agentOptions.maxFreeSockets ?? agentOptions.maxSockets ?? 256 });
    this.maxConnecting = Math.max(1, maxConnecting);
    // After the agent's own listener: a connection it freed and kept serves a request held here.
    this.on('free', () => this.next());
  }

  /** Connections being set up now (for tests). */
  get settingUp(): number {
    return this.connecting;
  }

  /** Node's Agent sets up each connection here: counted until its handshake ends, either way. */
  override createConnection(options: http.ClientRequestArgs): Duplex {
    this.connecting++;
    const socket = agentPrototype.createConnection.call(this, options);
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      this.connecting--;
      this.next();
    };
    socket.once('secureConnect', settle);
    socket.once('close', settle);
    return socket;
  }

  /** Hands the agent the requests that waited, oldest first, as far as there is room for them. */
  private next(): void {
    while (this.held.length > 0 && this.room()) {
      const { req, options } = this.held.shift()!;
      if (!req.destroyed) agentPrototype.addRequest.call(this, req, options);
    }
  }

  /**
   * Whether the agent may take a request now without setting up one connection more than
   * maxConnecting allows: a handshake slot, a free connection (to any of its hosts: a provider's
   * agent talks to one or two), or every connection it may open already open, so that it queues
   * the request for the next one freed.
   */
  private room(): boolean {
    if (this.connecting < this.maxConnecting) return true;
    const { freeSockets, sockets } = this as unknown as AgentInternals;
    if (Object.values(freeSockets).some((free) => (free?.length ?? 0) > 0)) return true;
    return Object.values(sockets).reduce((n, open) => n + (open?.length ?? 0), 0) >= this.maxSockets;
  }

  private admit(req: http.ClientRequest, options: object): void {
    if (this.held.length === 0 && this.room()) agentPrototype.addRequest.call(this, req, options);
    else this.held.push({ req, options });
  }

  /**
   * Runs `fn` as one call: every request it makes through this agent belongs to the call, and
   * `onAnswer` hears of each answer (a response's head, any status) as it comes.
   */
  async run<T>(signal: AbortSignal | undefined, fn: (call: Call) => Promise<T>, onAnswer?: () => void): Promise<T> {
    const call = { signal, onAnswer, written: false, requests: new Set<http.ClientRequest>() };
    const abort = () => {
      for (const req of call.requests) this.cancel(req, call);
    };
    signal?.addEventListener('abort', abort, { once: true });
    try {
      return await this.calls.run(call, () => fn(call));
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  /** The call the current code runs in, if any. */
  current(): Call | undefined {
    return this.calls.getStore();
  }

  /** Runs `fn` outside every call: its requests (a token fetch other calls share) are no call's to cancel. */
  outside<T>(fn: () => T): T {
    return this.calls.exit(fn);
  }

  addRequest(req: http.ClientRequest, options: object): void {
    const call = this.calls.getStore();
    if (call) {
      if (call.signal?.aborted) {
        (req as unknown as Failable).onSocket(null, givenUpError(call.signal, false));
        return;
      }
      call.requests.add(req);
      req.once('socket', () => {
        this.onWire.add(req);
        call.written = true;
      });
      req.once('close', () => call.requests.delete(req));
      req.once('response', (res: http.IncomingMessage) => {
        call.onAnswer?.();
        const status = res.statusCode ?? 0;
        if (status !== 429 && status < 500) return;
        const ms = retryAfterMs(res.headers['retry-after']);
        if (ms !== undefined) call.retryAfterMs = Math.max(call.retryAfterMs ?? 0, ms);
      });
    }
    this.admit(req, options);
  }

  private cancel(req: http.ClientRequest, call: Call): void {
    if (req.destroyed) return;
    if (this.onWire.has(req)) {
      req.destroy(givenUpError(call.signal, true));
      return;
    }
    const held = this.held.findIndex((h) => h.req === req);
    if (held >= 0) {
      this.held.splice(held, 1);
      (req as unknown as Failable).onSocket(null, givenUpError(call.signal, false));
      return;
    }
    const queues = (this as unknown as AgentInternals).requests;
    for (const [name, queue] of Object.entries(queues)) {
      const i = queue?.indexOf(req) ?? -1;
      if (i < 0) continue;
      queue!.splice(i, 1);
      if (queue!.length === 0) delete queues[name];
      (req as unknown as Failable).onSocket(null, givenUpError(call.signal, false));
      return;
    }
    // A connection is being handed to it in this tick: Node fails it there, before writing.
    req.destroy(givenUpError(call.signal, false));
  }
}
