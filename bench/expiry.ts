import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { openSqliteLeaseStore } from '#platform/lease/sqlite';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { systemClock } from '#platform/clock';
import type { StreamAppend } from '#platform/event-store/port';
import type { Sealed } from '#schema/events';
import { streams, userKeyId } from '#schema/streams';
import { Shredder, type Shredded } from '#expiry/shredder';
import { ExpiryService } from '#expiry/service';
import { handleCommand } from '#command/handler';
import { userDecider } from '#command/user/decider';
import { replayAudit } from '#query/audit/replay';
import { percentile } from './support';

/**
 * npm run bench:expiry [-- --users 100000 --trickle 500]
 * Latency from consent end to data key destroyed, for a trickle and for a burst of users whose
 * consents end in the same second; the batched path against the naive one-user-at-a-time path;
 * and the audit replay rate against a raw read of the same log.
 */
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const logger = pino({ level: 'warn' });
const ms = (n: number) => `${n.toFixed(1)} ms`;

const main = async (): Promise<void> => {
  const burst = arg('users', 100_000);
  const trickle = arg('trickle', 500);
  const naiveUsers = arg('naive', 5_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-bench-expiry-'));
  const eventStore = openSqliteEventStore({ path: path.join(dir, 'events.db') });
  const readStore = openSqliteReadStore({ path: path.join(dir, 'read.db') });
  const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
  const leases = openSqliteLeaseStore({ path: path.join(dir, 'read.db') });
  const cipher = new PersonalDataCipher(vault, randomBytes(32));
  const shredder = new Shredder({ eventStore, vault, cipher, clock: systemClock });
  const latencies = new Map<string, number>();
  const ends = new Map<string, number>();
  const onShredded = (users: readonly Shredded[]) => {
    for (const u of users) latencies.set(u.userId, u.at.getTime() - ends.get(u.userId)!);
  };
  const service = new ExpiryService({ eventStore, readStore, leases, shredder, clock: systemClock, logger, instanceId: 'bench', onShredded, batchSize: arg('batch', 1000) });
  await service.start();

  /** Registers users the way the API would (a data key each, sealed name and address), in batches. */
  const seed = async (prefix: string, count: number, end: (i: number) => number, scheduled = true) => {
    for (let from = 0; from < count; from += 1000) {
      const appends: StreamAppend[] = [];
      for (let i = from; i < Math.min(count, from + 1000); i++) {
        const userId = `${prefix}${i}`;
        const key = (await cipher.keyFor(userKeyId('bench', userId), { create: true }))!;
        ends.set(userId, end(i));
        appends.push({
          streamName: streams.user('bench', userId),
          expectedRevision: 'no_stream',
          events: [{
            type: 'UserRegistered',
            data: { userId, name: cipher.seal(key, `Bench User ${i}`), devices: [{ deviceId: 'd1', kind: 'email', address: cipher.seal(key, `u${i}@bench.example`) as Sealed }], consent: { start: '2026-01-01T00:00:00.000Z', end: new Date(end(i)).toISOString() }, optIn: true, groupIds: [] },
            metadata: { tenantId: 'bench', actor: 'bench', requestId: 'seed', at: new Date().toISOString() },
          }],
        });
      }
      await eventStore.appendToStreams(appends);
    }
    if (scheduled) await service.caughtUp(await eventStore.headPosition());
  };
  const waitFor = async (prefix: string, count: number, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    const done = () => [...latencies.keys()].filter((k) => k.startsWith(prefix)).length;
    while (done() < count && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return [...latencies.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v).sort((a, b) => a - b);
  };

  console.log(`bench:expiry  ${os.cpus().length} cores, node ${process.version}, embedded SQLite\n`);

  // Trickle: one consent ending every 20 ms.
  let t = Date.now();
  const trickleStart = Date.now() + 3000;
  await seed('t', trickle, (i) => trickleStart + i * 20);
  const tl = await waitFor('t', trickle, trickle * 20 + 10_000);
  console.log(`trickle   ${trickle} users, one every 20 ms: consent end -> key destroyed p50 ${ms(percentile(tl, 50))}, p99 ${ms(percentile(tl, 99))}, max ${ms(tl[tl.length - 1]!)}  (target p99 <= 1000 ms)`);

  // Burst: every consent ends in the same second.
  t = Date.now();
  const burstEnd = Date.now() + 20_000 + burst / 4;
  await seed('b', burst, (i) => burstEnd + (i % 1000));
  const seeded = (Date.now() - t) / 1000;
  if (Date.now() > burstEnd) throw new Error('seeding took past the consent end; rerun with fewer --users');
  const bl = await waitFor('b', burst, 120_000);
  const drained = bl.length === burst ? bl[bl.length - 1]! : NaN;
  const burstRate = burst / ((drained + 1000) / 1000);
  console.log(`burst     ${burst} users ending within one second (seeded in ${seeded.toFixed(1)} s): p50 ${ms(percentile(bl, 50))}, p99 ${ms(percentile(bl, 99))}, all drained ${ms(drained)} after the last end  (target <= 10 s)`);
  await service.stop();

  // Baseline: the naive path, one user at a time (two commands and one vault delete each).
  const baseEnd = Date.now() + 10_000;
  await seed('n', naiveUsers, () => baseEnd, false);
  await new Promise((r) => setTimeout(r, Math.max(0, baseEnd - Date.now())));
  t = performance.now();
  for (let i = 0; i < naiveUsers; i++) {
    const stream = streams.user('bench', `n${i}`);
    const meta = { tenantId: 'bench', actor: 'system', requestId: 'naive', at: new Date().toISOString() };
    await handleCommand(eventStore, stream, userDecider, { type: 'ExpireConsent', data: { userId: `n${i}` }, now: new Date() }, meta);
    await vault.destroy(userKeyId('bench', `n${i}`));
    cipher.forget(userKeyId('bench', `n${i}`));
    await handleCommand(eventStore, stream, userDecider, { type: 'RecordShredding', data: { userId: `n${i}` }, now: new Date() }, meta);
  }
  const naiveRate = naiveUsers / ((performance.now() - t) / 1000);

  // Audit replay of the whole tenant against a raw read of the same events.
  const head = await eventStore.headPosition();
  t = performance.now();
  let raw = 0;
  for (let after = 0; ; ) {
    const page = await eventStore.readAll({ after, maxCount: 1000, tenantId: 'bench' });
    raw += page.length;
    if (page.length < 1000) break;
    after = page[page.length - 1]!.position;
  }
  const rawRate = raw / ((performance.now() - t) / 1000);
  let peak = process.memoryUsage().rss;
  const baseRss = peak;
  t = performance.now();
  let replayed = 0;
  let bytes = 0;
  for await (const record of replayAudit(eventStore, cipher, { tenantId: 'bench' })) {
    bytes += JSON.stringify(record).length + 1;
    if (++replayed % 10_000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  const replayRate = replayed / ((performance.now() - t) / 1000);

  console.log(`baseline  naive one-user-at-a-time expiry: ${naiveRate.toFixed(0)} users/s`);
  console.log(`audit     replayed ${replayed} events (${(bytes / 1e6).toFixed(0)} MB of JSON Lines, log head ${head}) at ${replayRate.toFixed(0)} events/s; raw read ${rawRate.toFixed(0)} events/s; peak RSS ${(peak / 1e6).toFixed(0)} MB (${((peak - baseRss) / 1e6).toFixed(0)} MB above the start of the replay)`);
  console.log('\nratios (same run):');
  console.log(`  batched expiry rate / naive rate = ${(burstRate / naiveRate).toFixed(1)}  (burst: ${burstRate.toFixed(0)} users/s)`);
  console.log(`  audit replay rate / raw read rate = ${(replayRate / rawRate).toFixed(2)}  (target >= 100,000 events/s: ${replayRate >= 100_000 ? 'met' : 'NOT met'})`);
  await Promise.all([eventStore.close(), readStore.close(), vault.close(), leases.close()]);
  fs.rmSync(dir, { recursive: true, force: true });
};

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
