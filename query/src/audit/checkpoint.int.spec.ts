import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventStore, NewEvent } from '#platform/event-store/port';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openPostgresEventStore } from '#platform/event-store/postgres';
import { chainKeys, type ChainHead, type ChainKeys } from '#platform/event-store/chain';
import { verifyTenantChain } from './replay';
import { createCheckpoint, readCheckpoint, type Checkpoint } from './checkpoint';

const url = process.env['POSTGRES_URL'];
if (!url) console.warn('audit checkpoints on PostgreSQL: skipped, POSTGRES_URL is not set (start servers with npm run servers:up)');

/** What an administrator of the store can do with plain SQL, bypassing the service. */
type Tamper = Readonly<{
  eventsOf(tenantId: string): Promise<readonly { position: number; stream: string }[]>;
  deleteEvents(positions: readonly number[]): Promise<void>;
  setHead(tenantId: string, head: ChainHead): Promise<void>;
  deleteHead(tenantId: string): Promise<void>;
  /** Forgets a stream's revision, so the stream can be written again from revision 0. */
  forgetStream(stream: string): Promise<void>;
  close(): Promise<void>;
}>;

type Setup = Readonly<{ name: string; open: (keys: ChainKeys) => Promise<{ store: EventStore; tamper: Tamper; cleanup: () => Promise<void> }> }>;

const sqlite: Setup = {
  name: 'SQLite',
  open: async (keys) => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'checkpoint-')), 'events.db');
    const store = openSqliteEventStore({ path: file, chainKeys: keys });
    const db = new Database(file);
    const tamper: Tamper = {
      eventsOf: async (t) => db.prepare<[string], { position: number; stream: string }>('SELECT position, stream FROM events WHERE tenant_id = ? ORDER BY position').all(t),
      deleteEvents: async (ps) => void ps.forEach((p) => db.prepare('DELETE FROM events WHERE position = ?').run(p)),
      setHead: async (t, h) => void db.prepare('UPDATE chain_heads SET hash = ?, position = ?, events = ?, mac = ? WHERE tenant_id = ?').run(h.hash, h.position, h.events, h.mac, t),
      deleteHead: async (t) => void db.prepare('DELETE FROM chain_heads WHERE tenant_id = ?').run(t),
      forgetStream: async (s) => void db.prepare('DELETE FROM streams WHERE stream = ?').run(s),
      close: async () => void db.close(),
    };
    return { store, tamper, cleanup: async () => { await tamper.close(); await store.close(); } };
  },
};

const postgres: Setup = {
  name: 'PostgreSQL',
  open: async (keys) => {
    const schema = `audit_${randomBytes(6).toString('hex')}`;
    const store = await openPostgresEventStore({ connectionString: url!, schema, chainKeys: keys });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const s = `"${schema}"`;
    const tamper: Tamper = {
      eventsOf: async (t) => (await client.query<{ position: string; stream: string }>(`SELECT position, stream FROM ${s}.events WHERE tenant_id = $1 ORDER BY position`, [t])).rows.map((r) => ({ position: Number(r.position), stream: r.stream })),
      deleteEvents: async (ps) => void (await client.query(`DELETE FROM ${s}.events WHERE position = ANY($1::bigint[])`, [[...ps]])),
      setHead: async (t, h) => void (await client.query(`UPDATE ${s}.chain_heads SET hash = $2, position = $3, events = $4, mac = $5 WHERE tenant_id = $1`, [t, h.hash, h.position, h.events, h.mac])),
      deleteHead: async (t) => void (await client.query(`DELETE FROM ${s}.chain_heads WHERE tenant_id = $1`, [t])),
      forgetStream: async (st) => void (await client.query(`DELETE FROM ${s}.streams WHERE stream = $1`, [st])),
      close: async () => client.end(),
    };
    return {
      store,
      tamper,
      cleanup: async () => {
        await store.close();
        await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
        await tamper.close();
      },
    };
  },
};

const ev = (tenantId: string, type: string, data: object): NewEvent =>
  ({ type, data, metadata: { tenantId, actor: 'k', requestId: 'r', at: '2026-11-01T00:00:00.000Z' } }) as NewEvent;

const masterKey = () => ({ id: randomBytes(8).toString('hex'), key: randomBytes(32) });

for (const setup of [sqlite, ...(url ? [postgres] : [])]) {
  describe(`audit chain heads and checkpoints: ${setup.name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterAll(async () => {
      for (const c of cleanups) await c();
    });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');

    /** Two tenants; `t` has 6 events in 3 streams. */
    const start = async (keys = chainKeys([masterKey()])) => {
      const opened = await setup.open(keys);
      cleanups.push(opened.cleanup);
      const { store } = opened;
      for (let i = 0; i < 3; i++) {
        await store.appendToStream(`user-t.u${i}`, [ev('t', 'UserRegistered', { userId: `u${i}` }), ev('t', 'OptInChanged', { userId: `u${i}`, optIn: false })]);
        await store.appendToStream(`user-o.u${i}`, [ev('o', 'UserRegistered', { userId: `u${i}` })]);
      }
      return { ...opened, keys };
    };
    const verify = (store: EventStore, keys: ChainKeys, tenantId = 't', anchor: Checkpoint['heads'][number] | null = null) => verifyTenantChain(store, tenantId, { keys, anchor, macWaitMs: 200 });

    it('an intact log verifies, and a checkpoint of it verifies against it as the log grows', async () => {
      const { store, keys } = await start();
      expect(await verify(store, keys)).toMatchObject({ ok: true, checked: 6 });
      const result = await createCheckpoint(store, privateKey, { keys });
      if (!result.ok) throw new Error('not signed');
      const checkpoint = readCheckpoint(JSON.stringify(result.checkpoint), publicKey);
      expect(checkpoint.heads.map((h) => [h.tenantId, h.events])).toEqual([['o', 3], ['t', 6]]);
      await store.appendToStream('user-t.u9', [ev('t', 'UserRegistered', { userId: 'u9' })]);
      const anchor = checkpoint.heads.find((h) => h.tenantId === 't')!;
      expect(await verify(store, keys, 't', anchor)).toMatchObject({ ok: true, checked: 7 });
      // A changed checkpoint file, or another key, is refused.
      expect(() => readCheckpoint(JSON.stringify({ ...checkpoint, heads: checkpoint.heads.map((h) => ({ ...h, events: h.events + 1 })) }), publicKey)).toThrow(/signature does not verify/);
      expect(() => readCheckpoint(JSON.stringify(checkpoint), generateKeyPairSync('ed25519').publicKey)).toThrow(/signed by key/);
    });

    it("deleting a tenant's last events and resetting its head to match is a break", async () => {
      const { store, tamper, keys } = await start();
      const before = (await store.chainHead('t'))!;
      const events = await tamper.eventsOf('t');
      await tamper.deleteEvents(events.slice(-2).map((e) => e.position));
      // Reset to what the remaining log says, as the store would have written it without the key.
      const remaining = await verifyTenantChain(store, 't');
      await tamper.setHead('t', { hash: remaining.lastHash, position: remaining.lastPosition, events: 4, mac: before.mac });
      const report = await verify(store, keys);
      expect(report.ok).toBe(false);
      expect(report.firstBreak?.reason).toMatch(/does not match its MAC/);
      // Without a MAC at all it is no better.
      await tamper.setHead('t', { hash: remaining.lastHash, position: remaining.lastPosition, events: 4, mac: null });
      expect((await verify(store, keys)).firstBreak?.reason).toMatch(/not authenticated/);
      // Resetting the hash alone is caught by the count even without keys.
      await tamper.setHead('t', { ...before, hash: remaining.lastHash });
      expect((await verifyTenantChain(store, 't')).firstBreak?.reason).toMatch(/records 6 events, the log holds 4/);
    });

    it('a head with no events behind it is a break', async () => {
      const { store, tamper, keys } = await start();
      await tamper.deleteEvents((await tamper.eventsOf('t')).map((e) => e.position));
      expect(await store.tenants()).toContain('t');
      const report = await verify(store, keys);
      expect(report).toMatchObject({ ok: false, checked: 0 });
      expect(report.firstBreak?.reason).toMatch(/holds no event of this tenant/);
    });

    it('deleting a head row does not hide the tenant from verification', async () => {
      const { store, tamper, keys } = await start();
      await tamper.deleteHead('t');
      expect(await store.tenants()).toEqual(['o', 't']);
      const report = await verify(store, keys);
      expect(report.ok).toBe(false);
      expect(report.firstBreak?.reason).toMatch(/no chain head/);
    });

    it('a log rewritten whole, hashes, head and MAC recomputed, no longer extends the checkpoint', async () => {
      const { store, tamper, keys } = await start();
      const result = await createCheckpoint(store, privateKey, { keys });
      if (!result.ok) throw new Error('not signed');
      const anchor = result.checkpoint.heads.find((h) => h.tenantId === 't')!;
      // An insider with the store and the master key: drop the tenant's history and write another.
      const events = await tamper.eventsOf('t');
      await tamper.deleteEvents(events.map((e) => e.position));
      await tamper.deleteHead('t');
      for (const stream of new Set(events.map((e) => e.stream))) await tamper.forgetStream(stream);
      for (let i = 0; i < 3; i++) {
        await store.appendToStream(`user-t.u${i}`, [ev('t', 'UserRegistered', { userId: `u${i}` }), ev('t', 'OptInChanged', { userId: `u${i}`, optIn: true })]);
      }
      // The store alone cannot tell: the new chain is intact and authenticated.
      expect(await verify(store, keys)).toMatchObject({ ok: true, checked: 6 });
      const report = await verify(store, keys, 't', anchor);
      expect(report.ok).toBe(false);
      expect(report.firstBreak?.reason).toMatch(/checkpointed head .* is not in the chain/);
      // Cut short instead: the checkpointed head is past the log's end.
      const tail = await tamper.eventsOf('t');
      await tamper.deleteEvents(tail.slice(-3).map((e) => e.position));
      expect((await verify(store, keys, 't', anchor)).firstBreak?.reason).toMatch(/ends before the checkpointed head|not in the chain/);
    });

    it('verifies with keys while the log grows, and reports a head its writer never authenticated until an append authenticates the next', async () => {
      const { store, tamper, keys } = await start();
      // On PostgreSQL a head is committed first and authenticated by its writer right after.
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) await store.appendToStream(`live-${i % 5}`, [ev('t', 'OptInChanged', { userId: 'u0', optIn: i % 2 === 0 })]);
      })();
      try {
        for (let i = 0; i < 10; i++) expect(await verifyTenantChain(store, 't', { keys })).toMatchObject({ ok: true, firstBreak: null });
      } finally {
        writing = false;
        await writer;
      }
      // A writer stopped between its commit and its MAC.
      const head = (await store.chainHead('t'))!;
      await tamper.setHead('t', { ...head, mac: null });
      expect((await verify(store, keys)).firstBreak?.reason).toMatch(/not authenticated/);
      await store.appendToStream('user-t.u0', [ev('t', 'OptInChanged', { userId: 'u0', optIn: true })]);
      expect(await verify(store, keys)).toMatchObject({ ok: true, checked: head.events! + 1 });
    });

    it('signs nothing over a broken chain, and authenticates heads written before heads were keyed', async () => {
      const keys = chainKeys([masterKey()]);
      const { store, tamper } = await start(keys);
      const head = (await store.chainHead('o'))!;
      await tamper.setHead('o', { ...head, mac: null });
      expect((await verify(store, keys, 'o')).ok).toBe(false);
      const result = await createCheckpoint(store, privateKey, { keys });
      expect(result).toMatchObject({ ok: true, authenticated: ['o'] });
      expect((await verify(store, keys, 'o')).ok).toBe(true);
      await tamper.deleteEvents((await tamper.eventsOf('t')).slice(1, 2).map((e) => e.position));
      const refused = await createCheckpoint(store, privateKey, { keys });
      expect(refused.ok).toBe(false);
    });
  });
}
