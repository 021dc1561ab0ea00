import type { EventMetadata, UserEvent } from '#schema/events';
import type { UserCommand } from '#schema/commands';
import { streams, userKeyId } from '#schema/streams';
import { ConcurrencyError, type EventStore, type StreamAppend } from '#platform/event-store/port';
import type { KeyVault } from '#platform/key-vault/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Clock } from '#platform/clock';
import { failpoint } from '#platform/failpoints';
import { handleCommand, load, type Loaded } from '#command/handler';
import { userDecider, type UserState } from '#command/user/decider';

export type UserRef = Readonly<{ tenantId: string; userId: string }>;
export type Shredded = UserRef & Readonly<{ at: Date }>;

export type ShredderDeps = Readonly<{
  eventStore: EventStore;
  vault: KeyVault & { destroyMany?: (keyIds: readonly string[]) => Promise<number> };
  cipher: PersonalDataCipher;
  clock: Clock;
}>;

type Loaded1 = UserRef & { stream: string; loaded: Loaded<UserState> };

/**
 * Destroys users' data in three steps, each safe to repeat: decide (ConsentExpired or
 * UserErasureRequested), destroy the data key, record UserDataShredded. A crash between steps
 * leaves the user in `Erasing`, which the next run finishes. Work is batched: one multi-stream
 * append per step and one vault transaction for a whole batch of keys.
 */
export class Shredder {
  constructor(private readonly deps: ShredderDeps) {}

  async shred(users: readonly UserRef[], mode: 'expire' | 'erase', meta: Omit<EventMetadata, 'tenantId' | 'at'>): Promise<readonly Shredded[]> {
    if (users.length === 0) return [];
    const now = this.deps.clock.now();
    const metaFor = (tenantId: string): EventMetadata => ({ ...meta, tenantId, at: now.toISOString() });
    const loaded: Loaded1[] = await Promise.all(
      users.map(async (u) => {
        const stream = streams.user(u.tenantId, u.userId);
        return { ...u, stream, loaded: await load(this.deps.eventStore, stream, userDecider) };
      }),
    );
    const command = (userId: string): UserCommand =>
      mode === 'expire' ? { type: 'ExpireConsent', data: { userId }, now } : { type: 'RequestErasure', data: { userId }, now };

    const decided = await this.step(loaded, command, metaFor);
    failpoint('shred:after-decision');
    const erasing = decided.filter((u) => u.loaded.state.status === 'Erasing');
    if (erasing.length === 0) return [];
    const keyIds = erasing.map((u) => userKeyId(u.tenantId, u.userId));
    if (this.deps.vault.destroyMany) await this.deps.vault.destroyMany(keyIds);
    else for (const id of keyIds) await this.deps.vault.destroy(id);
    for (const id of keyIds) this.deps.cipher.forget(id);
    const destroyedAt = this.deps.clock.now();
    failpoint('shred:after-key-destroyed');
    await this.step(erasing, (userId) => ({ type: 'RecordShredding', data: { userId }, now }), metaFor);
    return erasing.map((u) => ({ tenantId: u.tenantId, userId: u.userId, at: destroyedAt }));
  }

  /** Decides for every user and appends all the events in one call; on a conflict, user by user. */
  private async step(users: readonly Loaded1[], command: (userId: string) => UserCommand, metaFor: (tenantId: string) => EventMetadata): Promise<Loaded1[]> {
    const decisions = users.map((u) => ({ u, events: userDecider.decide(command(u.userId), u.loaded.state) as UserEvent[] }));
    const appends: StreamAppend[] = decisions
      .filter((d) => d.events.length > 0)
      .map((d) => ({
        streamName: d.u.stream,
        events: d.events.map((e) => ({ ...e, metadata: metaFor(d.u.tenantId) })),
        expectedRevision: d.u.loaded.revision < 0 ? 'no_stream' : d.u.loaded.revision,
      }));
    try {
      if (appends.length > 0) await this.deps.eventStore.appendToStreams(appends);
      return decisions.map(({ u, events }) => ({
        ...u,
        loaded: { state: events.reduce(userDecider.evolve, u.loaded.state), revision: u.loaded.revision + events.length },
      }));
    } catch (e) {
      if (!(e instanceof ConcurrencyError)) throw e;
      // Someone changed a user meanwhile (an update, another instance): redo each on fresh state.
      const out: Loaded1[] = [];
      for (const u of users) {
        const r = await handleCommand(this.deps.eventStore, u.stream, userDecider, command(u.userId), metaFor(u.tenantId));
        out.push({ ...u, loaded: { state: r.state, revision: r.revision } });
      }
      return out;
    }
  }
}
