import { createHmac, hash, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { RecordedEvent } from './event';

export const GENESIS = '0'.repeat(64);

/**
 * JSON with object keys sorted, so the hash does not depend on how a store orders keys. Values
 * go through `toJSON` as in JSON.stringify (a Date becomes its ISO string). The SQLite store
 * keeps this exact text, so an event read back hashes as it did when it was appended.
 */
export const canonical = (value: unknown): string => {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return canonical((value as { toJSON: () => unknown }).toJSON());
      // Plain loops and concatenation: this runs twice for every appended event.
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonical(value[i]);
        return `${out}]`;
      }
      const keys = Object.keys(value);
      let sorted = true;
      for (let i = 1; i < keys.length && sorted; i++) sorted = keys[i - 1]! < keys[i]!;
      if (!sorted) keys.sort();
      let out = '';
      for (const key of keys) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined) continue;
        out += `${out === '' ? '{' : ','}${JSON.stringify(key)}:${canonical(v)}`;
      }
      return out === '' ? '{}' : `${out}}`;
    }
    default:
      return JSON.stringify(value) ?? 'null';
  }
};

export type Chainable = Readonly<{ streamName: string; revision: number; type: string; data: unknown; metadata: unknown }>;

/** The hash of an event from its canonical data and metadata texts (see `eventHash`). */
export const eventHashOfCanonical = (streamName: string, revision: number, type: string, data: string, metadata: string): string =>
  hash('sha256', `${streamName}\n${revision}\n${type}\n${data}\n${metadata}`, 'hex');

/**
 * The hash of one event: its stream, revision, type, data and metadata, the metadata holding the
 * previous event's hash, so each hash covers the whole history of the tenant before it.
 */
export const eventHash = (e: Chainable): string =>
  eventHashOfCanonical(e.streamName, e.revision, e.type, canonical(e.data), canonical(e.metadata));

export type ChainBreak = Readonly<{
  position: number;
  streamName: string;
  revision: number;
  type: string;
  reason: string;
}>;

/**
 * What the store records of a tenant's chain at each append: the last event's hash, its position
 * and the number of the tenant's events, with a MAC over them (`<master key id>:<hex>`, keyed by
 * a key derived from the master key) so that someone who can write the store but does not hold
 * the master key cannot cut the log short and reset the head to match. Position and MAC are null
 * where the store cannot know them (KurrentDB assigns positions on commit) or in rows written
 * before heads were keyed.
 */
export type ChainHead = Readonly<{ hash: string; position: number | null; events: number | null; mac: string | null }>;

/** Keys that authenticate chain heads: the current one writes, every one verifies. */
export type ChainKeys = Readonly<{ current: Readonly<{ id: string; key: Buffer }>; all: ReadonlyMap<string, Buffer> }>;

/** The chain-head key of one master key: its own derived key, so the master key itself never MACs anything. */
export const chainKeyOf = (masterKey: Buffer): Buffer => Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'notify/chain-head', 32));

/** Chain keys from master keys (the first is the current one), named by the master key ids. */
export const chainKeys = (masters: readonly Readonly<{ id: string; key: Buffer }>[]): ChainKeys => {
  const [current, ...rest] = masters;
  if (!current) throw new Error('chainKeys needs a master key');
  const derived = (m: Readonly<{ id: string; key: Buffer }>) => ({ id: m.id, key: chainKeyOf(m.key) });
  return { current: derived(current), all: new Map([current, ...rest].map((m) => [m.id, chainKeyOf(m.key)])) };
};

const macText = (tenantId: string, head: Omit<ChainHead, 'mac'>): string => `notify-chain-head\n${tenantId}\n${head.hash}\n${head.position ?? ''}\n${head.events ?? ''}`;

/** The MAC of a head under the current chain key (null without keys). */
export const headMac = (keys: ChainKeys | null | undefined, tenantId: string, head: Omit<ChainHead, 'mac'>): string | null =>
  keys ? `${keys.current.id}:${createHmac('sha256', keys.current.key).update(macText(tenantId, head)).digest('hex')}` : null;

/** Why a head's MAC does not check out, or null when it does. */
export const headMacProblem = (keys: ChainKeys, tenantId: string, head: ChainHead): string | null => {
  if (!head.mac) return 'the chain head is not authenticated (no MAC: written before heads were keyed, or the MAC was removed); `notify audit checkpoint` authenticates an intact chain';
  const [id, mac] = head.mac.split(':');
  const key = id ? keys.all.get(id) : undefined;
  if (!key || !mac) return `the chain head is authenticated with master key ${id ?? '?'}, which this process does not have`;
  const expected = createHmac('sha256', key).update(macText(tenantId, head)).digest();
  const given = Buffer.from(mac, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) ? null : 'the chain head does not match its MAC: it was rewritten by someone without the master key';
};

export type ChainReport = Readonly<{
  tenantId: string;
  checked: number;
  ok: boolean;
  firstBreak: ChainBreak | null;
  lastHash: string;
  /** Position of the tenant's last event checked (0: none). */
  lastPosition: number;
}>;

/** A checkpointed head (from `notify audit checkpoint`) that the log must still extend. */
export type AnchoredHead = Readonly<{ hash: string; position: number; events: number }>;

/**
 * Checks one tenant's events, in log order, link by link. Feed it in pages; it keeps only the
 * running hash. A changed event breaks the link to the event after it, so the break names the
 * event before the mismatch: that one was edited, or events after it were removed.
 */
export class ChainVerifier {
  private hash = GENESIS;
  private previous: RecordedEvent | null = null;
  private checked = 0;
  private broken: ChainBreak | null = null;
  private anchorSeen = false;

  /** `anchor`: a checkpointed head the chain must pass through (same hash at the same count and position). */
  constructor(readonly tenantId: string, private readonly anchor: AnchoredHead | null = null) {}

  add(event: RecordedEvent): void {
    if (this.broken) return;
    this.checked++;
    if (event.metadata.prevHash !== this.hash) {
      const at = this.previous ?? event;
      this.broken = {
        position: at.position,
        streamName: at.streamName,
        revision: at.revision,
        type: at.type,
        reason: this.previous
          ? `the event at position ${event.position} expects a predecessor hashing to ${String(event.metadata.prevHash).slice(0, 12)}…, but this event hashes to ${this.hash.slice(0, 12)}…: it was changed, or events after it were removed`
          : `the first event does not start the chain: events before it were removed, or it was changed`,
      };
      return;
    }
    this.hash = eventHash(event);
    this.previous = event;
    const a = this.anchor;
    if (a && !this.anchorSeen && (this.checked === a.events || event.position >= a.position)) {
      this.anchorSeen = true;
      if (this.checked !== a.events || event.position !== a.position || this.hash !== a.hash) {
        this.broken = this.breakAt(event, `the checkpointed head (event ${a.events} at position ${a.position}, hash ${a.hash.slice(0, 12)}…) is not in the chain: here the ${this.checked}th event, at position ${event.position}, hashes to ${this.hash.slice(0, 12)}…; the log was rewritten since the checkpoint`);
      }
    }
  }

  /** The hash of the last event added so far (GENESIS before any). */
  get lastHash(): string {
    return this.hash;
  }

  private breakAt(e: RecordedEvent, reason: string): ChainBreak {
    return { position: e.position, streamName: e.streamName, revision: e.revision, type: e.type, reason };
  }

  /**
   * `head` is the store's record of the tenant's chain, when it keeps one: it catches an edit of
   * the last event, a log cut short (count and position), a head with no events behind it and
   * events with no head; with `keys`, a head rewritten without the master key. A plain string is
   * a head hash alone (older callers).
   */
  report(head?: ChainHead | string | null, keys?: ChainKeys | null): ChainReport {
    const h: ChainHead | null | undefined = typeof head === 'string' ? { hash: head, position: null, events: null, mac: null } : head;
    const p = this.previous;
    const fail = (reason: string, at: RecordedEvent | null = p) => {
      this.broken = at ? this.breakAt(at, reason) : { position: 0, streamName: '', revision: -1, type: '', reason };
    };
    if (!this.broken && this.anchor && !this.anchorSeen) {
      fail(`the log ends before the checkpointed head (event ${this.anchor.events} at position ${this.anchor.position}): ${this.checked} events remain; events were removed since the checkpoint`);
    }
    if (!this.broken && h !== undefined) {
      if (h === null) {
        if (p) fail('the store keeps no chain head for this tenant, though it has events: the head was deleted');
      } else if (!p) {
        fail(`the store records a chain head (${h.events ?? '?'} events, hash ${h.hash.slice(0, 12)}…) but the log holds no event of this tenant: its events were deleted`);
      } else if (h.hash !== this.hash) {
        fail("the tenant's last event does not match the chain head the store recorded: it was changed, or events after it were removed");
      } else if (h.events !== null && h.events !== this.checked) {
        fail(`the chain head records ${h.events} events, the log holds ${this.checked}: events were removed and the head reset`);
      } else if (h.position !== null && h.position !== p.position) {
        fail(`the chain head records its last event at position ${h.position}, the log's last is at ${p.position}: events were removed and the head reset`);
      } else if (keys) {
        const problem = headMacProblem(keys, this.tenantId, h);
        if (problem) fail(problem);
      }
    }
    return { tenantId: this.tenantId, checked: this.checked, ok: this.broken === null, firstBreak: this.broken, lastHash: this.hash, lastPosition: p?.position ?? 0 };
  }
}
