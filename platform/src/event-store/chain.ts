import { hash } from 'node:crypto';
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

export type ChainReport = Readonly<{ tenantId: string; checked: number; ok: boolean; firstBreak: ChainBreak | null; lastHash: string }>;

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

  constructor(readonly tenantId: string) {}

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
  }

  /** `head` is the store's record of the tenant's last hash, when it keeps one: it catches edits of the last event. */
  report(head?: string | null): ChainReport {
    if (!this.broken && head != null && head !== this.hash && this.previous) {
      const p = this.previous;
      this.broken = { position: p.position, streamName: p.streamName, revision: p.revision, type: p.type, reason: "the tenant's last event does not match the chain head the store recorded: it was changed, or events after it were removed" };
    }
    return { tenantId: this.tenantId, checked: this.checked, ok: this.broken === null, firstBreak: this.broken, lastHash: this.hash };
  }
}
