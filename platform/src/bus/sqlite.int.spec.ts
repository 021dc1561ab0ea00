import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobBusContract } from './contract';
import type { BusMessage, JobBus } from './port';
import { openSqliteBus } from './sqlite';

jobBusContract('sqlite', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bus-'));
  const file = path.join(dir, 'bus.db');
  let bus = openSqliteBus({ path: file });
  return {
    bus,
    reopen: async () => {
      await bus.close();
      bus = openSqliteBus({ path: file });
      return bus;
    },
    cleanup: async () => {
      await bus.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite bus: space of committed messages', () => {
  const size = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
  /** What the bus takes on disk: the file and its WAL. */
  const onDisk = (file: string) => size(file) + size(`${file}-wal`);
  /** Pages in use, as another connection sees them. */
  const inUse = (file: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return ((db.pragma('page_count', { simple: true }) as number) - (db.pragma('freelist_count', { simple: true }) as number)) * (db.pragma('page_size', { simple: true }) as number);
    } finally {
      db.close();
    }
  };
  const until = async (check: () => boolean) => {
    for (const end = Date.now() + 10_000; !check(); await new Promise((r) => setTimeout(r, 10))) if (Date.now() > end) throw new Error('timed out');
  };
  /** Publishes ~4 MB over 4 partitions, consumes it and commits it all; returns the sizes before, full and after. */
  const fillAndDrain = async (bus: JobBus, file: string, group = 'workers') => {
    await bus.ensureTopic('jobs', 4);
    const before = { disk: onDisk(file), used: inUse(file) };
    for (let round = 0; round < 4; round++) {
      await bus.publish('jobs', Array.from({ length: 1000 }, (_, i) => ({ partition: i % 4, key: `k${i}`, value: { round, i, pad: 'x'.repeat(1000) } })));
    }
    const full = { disk: onDisk(file), used: inUse(file) };
    const seen: BusMessage[] = [];
    const consumer = await bus.consume({ topic: 'jobs', group, handler: async (m) => void seen.push(...m) });
    await until(() => seen.length === 4000);
    for (let p = 0; p < 4; p++) await consumer.commit(p, seen.filter((m) => m.partition === p).at(-1)!.offset);
    const after = { disk: onDisk(file), used: inUse(file) };
    await consumer.stop();
    return { before, full, after };
  };

  /** A bus on a file of its own (`prepare` may make the file first), closed and removed after `fn`. */
  const onFreshBus = async (fn: (bus: JobBus, file: string) => Promise<void>, prepare?: (file: string) => void): Promise<void> => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bus-reclaim-'));
    const file = path.join(dir, 'bus.db');
    prepare?.(file);
    const bus = openSqliteBus({ path: file });
    try {
      await fn(bus, file);
    } finally {
      await bus.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  it('gives the space back once every message is committed: the file and its WAL return to their size before', () =>
    onFreshBus(async (bus, file) => {
      const { before, full, after } = await fillAndDrain(bus, file);
      expect(full.disk).toBeGreaterThan(before.disk + 4_000_000);
      expect(after.used).toBeLessThanOrEqual(before.used + 4096);
      expect(after.disk).toBeLessThanOrEqual(before.disk + 16 * 1024);
    }));

  it('keeps what a group that committed less still needs, and gives it back when that group commits', () =>
    onFreshBus(async (bus, file) => {
      await bus.ensureTopic('jobs', 1);
      const before = onDisk(file);
      await bus.publish('jobs', Array.from({ length: 2000 }, (_, i) => ({ partition: 0, key: `k${i}`, value: { i, pad: 'x'.repeat(1000) } })));
      const fast: BusMessage[] = [];
      const slow: BusMessage[] = [];
      const cf = await bus.consume({ topic: 'jobs', group: 'fast', handler: async (m) => void fast.push(...m) });
      const cs = await bus.consume({ topic: 'jobs', group: 'slow', handler: async (m) => void slow.push(...m) });
      await until(() => fast.length === 2000 && slow.length === 2000);
      await cs.commit(0, 0);
      await cf.commit(0, 1999);
      expect(inUse(file)).toBeGreaterThan(1999 * 1000);
      await cs.commit(0, 1999);
      expect(onDisk(file)).toBeLessThanOrEqual(before + 16 * 1024);
      await Promise.all([cf.stop(), cs.stop()]);
    }));

  it('converts a file made before reclaim (no auto-vacuum) when it opens, and reclaims in it', () =>
    onFreshBus(
      async (bus, file) => {
        const probe = new Database(file, { readonly: true });
        expect(probe.pragma('auto_vacuum', { simple: true })).toBe(2);
        probe.close();
        const { before, after } = await fillAndDrain(bus, file);
        expect(after.disk).toBeLessThanOrEqual(before.disk + 16 * 1024);
      },
      (file) => {
        const old = new Database(file);
        old.pragma('journal_mode = WAL');
        old.exec('CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, partitions INTEGER NOT NULL) WITHOUT ROWID');
        old.close();
      },
    ));
});
