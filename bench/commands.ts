import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import type { NewEvent } from '#platform/event-store/port';
import { mixedDevice } from '#cli/testing/seed';
import { fmt, load, paced, type LoadResult } from './support';
import {
  arg, createGroup, deploy, flag, fmtN, newMasterKey, num, progressOf, recordResult, registerTenant, seed, send, sleep, startSandbox, summarizeProfiles, topologyFromFlags,
  waitMembers, waitReadModels, type Deployment,
} from './lib';

/**
 * npm run bench:commands [-- --seconds 10 --clients 50 --rates 50,200,500 --load 1000000 --load-seconds 20] [--cluster] [--skip-quiet | --skip-load] [--profile]
 *
 * Command latency over HTTP, twice:
 *  (a) on a quiet service: the floor (`me`: HTTP, GraphQL, authentication, no aggregate), then
 *      registerUser and sendNotification, closed loop (--clients connections, each sending the next
 *      request when the last answers: saturation) and paced (open loop at each of --rates a
 *      second, latency from the scheduled start). Sends go to a one-user group, never to the
 *      group registrations fill, so each costs the same all along.
 *  (b) while a send of --load deliveries (default 1,000,000; 200,000 for a quick run) is being
 *      delivered: sendNotification (to the one-user group) and registerUser, 50 requests/s each
 *      at once, for --load-seconds; p50 / p99 / max, and the deliveries/s meanwhile.
 * Targets printed: p99 <= 50 ms at 50/s on the embedded default, <= 20 ms on the cluster's api
 * process (--cluster: api, projections, delivery workers as processes on Kafka and PostgreSQL).
 */
const consent = { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' };
let firstError = '';
const ok = (r: { errors?: unknown[] }) => {
  if (r.errors && !firstError) {
    firstError = JSON.stringify(r.errors).slice(0, 300);
    console.log(`first error: ${firstError}`);
  }
  return !r.errors;
};

const register = (d: Deployment, key: string, id: string, i: number) =>
  d.gql(key, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
    in: { userId: id, name: `User ${id}`, groupIds: ['reg'], consent, devices: [{ kind: 'EMAIL', address: `${id}@example.com` }, { kind: 'SMS', address: `+8210${String(10_000_000 + (i % 90_000_000)).slice(-8)}` }] },
  });
const sendOne = (d: Deployment, key: string, text: string) =>
  d.gql(key, `mutation($in: SendNotificationInput!) { sendNotification(input: $in) { duplicate } }`, { in: { groupId: 'one', text } });

const main = async (): Promise<void> => {
  const seconds = num('seconds', 10);
  const clients = num('clients', 50);
  const rates = arg('rates', '50,200,500').split(',').map(Number);
  const loadSize = num('load', 1_000_000);
  const loadSeconds = num('load-seconds', 20);
  const topology = topologyFromFlags();
  const target = topology.kind === 'embedded' ? 50 : 20;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-bench-commands-'));
  const masterKey = newMasterKey();
  // The providers' stand-in yields its turn to the client and the service (see startSandbox).
  const sandbox = await startSandbox(dir, num('latency-ms', 20), num('sandbox-nice', 10));
  const profileDir = flag('profile') ? (process.env.PROF_DIR ?? path.join(dir, 'profile')) : undefined;
  const d = await deploy({ dir, masterKey, sandboxFile: sandbox.file, topology, ...(profileDir ? { profileDir } : {}) });
  console.log(`bench:commands  ${d.describe}; ${clients} clients, ${seconds} s per phase, ${os.cpus().length} cores, node ${process.version}\n`);
  const results: Record<string, unknown> = {};
  const keep = (r: LoadResult) => {
    console.log(fmt(r));
    results[r.name] = { requests: r.requests, rps: Math.round(r.rps), p50Ms: +r.p50.toFixed(2), p99Ms: +r.p99.toFixed(2), maxMs: +r.max.toFixed(1), errors: r.errors };
    return r;
  };
  let failed = false;
  try {
    const key = await registerTenant(d, 'bench', 15);
    for (const g of ['all', 'one', 'reg']) await createGroup(d, key, g);
    const solo = await register(d, key, 'solo', 0);
    if (solo.errors) throw new Error(`registerUser: ${JSON.stringify(solo.errors)}`);
    const added = await d.gql(key, `mutation { addGroupMembers(groupId: "one", userIds: ["solo"]) { __typename } }`);
    if (added.errors) throw new Error(`addGroupMembers: ${JSON.stringify(added.errors)}`);
    await waitMembers(d, key, 'one', 1, 30_000);

    // ---- (a) quiet ----------------------------------------------------------------------------
    let apiEvents = 0;
    let apiSeconds = 0;
    if (!flag('skip-quiet')) {
      console.log('(a) quiet service');
      keep(await load('me (floor)', clients, seconds, async () => ok(await d.gql(key, `{ me { keyId } }`))));
      const reg = keep(await load('registerUser', clients, seconds, async (c, i) => ok(await register(d, key, `u-${c}-${i}`, c * 100_000 + i))));
      const snd = keep(await load('sendNotification (1 user)', clients, seconds, async (c, i) => ok(await sendOne(d, key, `안녕하세요 ${c}/${i}`))));
      apiEvents = reg.requests - reg.errors + snd.requests - snd.errors;
      apiSeconds = reg.seconds + snd.seconds;
      for (const rate of rates) {
        const s = keep(await paced(`sendNotification @${rate}/s`, clients, rate, seconds, async (i) => ok(await sendOne(d, key, `paced ${rate} ${i}`))));
        const r = keep(await paced(`registerUser @${rate}/s`, clients, rate, seconds, async (i) => ok(await register(d, key, `p${rate}-${i}`, 50_000_000 + rate * 100_000 + i))));
        if (rate === 50 && (s.p99 > target || r.p99 > target)) failed = true;
      }
    }

    // ---- (b) while a large send is delivered --------------------------------------------------
    if (!flag('skip-load')) {
      let t = performance.now();
      const seedRate = await seed(d, masterKey, { tenantId: 'bench', count: loadSize, groupIds: ['all'], devices: mixedDevice, prefix: 'load' });
      await waitMembers(d, key, 'all', loadSize);
      const catchUp = await waitReadModels(d);
      console.log(`every read model caught up with the seeding ${catchUp.toFixed(0)} s after the group was complete`);
      console.log(`\n(b) while a send of ${fmtN(loadSize)} deliveries is delivered (seeded in ${((performance.now() - t) / 1000).toFixed(0)} s, ${fmtN(seedRate)} users/s)`);
      const before = await sandbox.acceptedTotal();
      const big = await send(d, key, 'all', 'the large send');
      while ((await sandbox.acceptedTotal()) - before < 5_000) await sleep(100);
      const from = await sandbox.acceptedTotal();
      t = performance.now();
      const [s, r] = await Promise.all([
        paced('sendNotification @50/s under load', clients, 50, loadSeconds, async (i) => ok(await sendOne(d, key, `under load ${i}`))),
        paced('registerUser @50/s under load', clients, 50, loadSeconds, async (i) => ok(await register(d, key, `l-${i}`, 70_000_000 + i))),
      ]);
      const deliveries = (await sandbox.acceptedTotal()) - from;
      const window = (performance.now() - t) / 1000;
      keep(s);
      keep(r);
      const p = await progressOf(d, key, big.id);
      console.log(`deliveries meanwhile: ${fmtN(deliveries / window)}/s (${fmtN(deliveries)} in ${window.toFixed(0)} s); the large send ${p?.status}, ${fmtN(p ? p.succeeded + p.failed + p.expired : 0)} of ${fmtN(loadSize)} terminal`);
      results.underLoad = { load: loadSize, deliveriesPerSecond: Math.round(deliveries / window) };
      if (s.p99 > target || r.p99 > target) failed = true;
      console.log(`\ntargets: p99 <= ${target} ms at 50/s (${topology.kind === 'embedded' ? 'embedded default' : "cluster's api process"})`);
      console.log(`  under load: sendNotification p99 ${s.p99.toFixed(1)} ms (${s.p99 <= target ? 'met' : 'NOT met'}), registerUser p99 ${r.p99.toFixed(1)} ms (${r.p99 <= target ? 'met' : 'NOT met'})`);
    }
    const quiet50s = results['sendNotification @50/s'] as { p99Ms: number } | undefined;
    const quiet50r = results['registerUser @50/s'] as { p99Ms: number } | undefined;
    if (quiet50s && quiet50r) console.log(`  quiet:      sendNotification p99 ${quiet50s.p99Ms} ms (${quiet50s.p99Ms <= target ? 'met' : 'NOT met'}), registerUser p99 ${quiet50r.p99Ms} ms (${quiet50r.p99Ms <= target ? 'met' : 'NOT met'})`);

    // ---- the store's own ceiling (embedded default) -----------------------------------------------
    if (topology.kind === 'embedded' && apiSeconds > 0) {
      const raw = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-bench-es-'));
      const store = openSqliteEventStore({ path: path.join(raw, 'events.db') });
      const event = (i: number): NewEvent => ({ type: 'BenchEvent', data: { i, text: 'x'.repeat(200) }, metadata: { tenantId: 'b', actor: 'k', requestId: `r${i}`, at: new Date().toISOString() } }) as NewEvent;
      const t = performance.now();
      const singles = 20_000;
      for (let i = 0; i < singles; i++) await store.appendToStream(`s-${i}`, [event(i)], { expectedRevision: 'no_stream' });
      const singleRate = singles / ((performance.now() - t) / 1000);
      await store.close();
      fs.rmSync(raw, { recursive: true, force: true });
      console.log(`\nevents appended through the API (closed loops): ${(apiEvents / apiSeconds).toFixed(0)}/s; raw SQLite appends, 1 event per transaction: ${singleRate.toFixed(0)}/s (ratio ${(apiEvents / apiSeconds / singleRate).toFixed(3)})`);
      results.apiEventsPerSecond = Math.round(apiEvents / apiSeconds);
      results.rawSingleAppendsPerSecond = Math.round(singleRate);
    }
    recordResult(`commands/${topology.kind === 'embedded' ? 'embedded' : `cluster-${topology.workers}`}`, { topology: d.describe, targetP99Ms: target, ...results, met: !failed });
  } finally {
    await d.stop();
    await sandbox.stop();
    if (profileDir) console.log(`\nCPU profile of each process (node's internals charged to their caller):\n${summarizeProfiles(profileDir, 14).join('\n')}`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
};

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
