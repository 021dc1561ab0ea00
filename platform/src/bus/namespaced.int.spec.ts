import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobBusContract } from './contract';
import { namespacedBus } from './namespaced';
import { openSqliteBus } from './sqlite';
import type { BusMessage } from './port';

const tempFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bus-ns-')), 'bus.db');

jobBusContract('namespaced sqlite', async () => {
  const file = tempFile();
  const inner = openSqliteBus({ path: file });
  let bus = namespacedBus(inner, 'a');
  return { bus, reopen: async () => (bus = namespacedBus(openSqliteBus({ path: file }), 'a')), cleanup: () => bus.close() };
});

describe('namespaced bus', () => {
  it('keeps two namespaces on one store apart', async () => {
    const store = openSqliteBus({ path: tempFile() });
    const a = namespacedBus(store, 'blue');
    const b = namespacedBus(store, 'green');
    await a.ensureTopic('jobs', 2);
    await b.ensureTopic('jobs', 2);
    await a.publish('jobs', [{ partition: 0, key: 'k', value: 'for blue' }]);
    await b.publish('jobs', [{ partition: 1, key: 'k', value: 'for green' }]);
    const seen: BusMessage[] = [];
    const consumer = await b.consume({ topic: 'jobs', group: 'g', handler: async (m) => void seen.push(...m) });
    const end = Date.now() + 5000;
    while (seen.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.map((m) => [m.topic, m.value])).toEqual([['jobs', 'for green']]);
    await consumer.stop();
    await store.close();
  });
});
