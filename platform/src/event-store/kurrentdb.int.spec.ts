import { describe, it } from 'vitest';
import { eventStoreContract } from './contract';
import { openKurrentDbEventStore } from './kurrentdb';

const url = process.env.EVENTSTORE_CONNECTION_STRING;

if (url) {
  eventStoreContract('kurrentdb', async () => {
    const store = await openKurrentDbEventStore({ connectionString: url });
    return { store, cleanup: () => store.close() };
  });
} else {
  console.warn(
    'kurrentdb event store: contract suite skipped, EVENTSTORE_CONNECTION_STRING is not set ' +
      '(no EventStoreDB/KurrentDB server can be installed on this machine; set it to e.g. kurrentdb://127.0.0.1:2113?tls=false to run it)',
  );
  describe.skip('event store contract: kurrentdb (EVENTSTORE_CONNECTION_STRING is not set)', () => {
    it('runs the event store contract against a KurrentDB server', () => undefined);
  });
}
