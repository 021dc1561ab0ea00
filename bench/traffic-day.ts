import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mixedDevice } from '#cli/testing/seed';
import { percentile } from './support';
import {
  createGroup, deploy, flag, fmtN, newMasterKey, num, progressOf, recordResult, registerTenant, seed, send, sleep, startSandbox, waitCompleted,
  waitMembers, waitReadModels, type Deployment, type Estimate, type Progress,
} from './lib';

/**
 * npm run bench:traffic-day [-- --rate 2000 --minutes 8 --overload 3 --latency-ms 20] [--quick]
 *
 * The traffic model's worst hour (docs/design.md §5: ten tenants sending to their whole audience)
 * scaled to this machine, on the embedded default: ten tenants whose group sizes follow a mix of
 * audience sizes (--weights, 10 numbers), together --minutes of this machine's delivery rate
 * (--rate deliveries/s, or measured first with a short fan-out of --probe recipients), all
 * requested within ten seconds, deadlines of 10, 15, 20 and 30 minutes spread over the tenants.
 * User registrations and consent expiries run meanwhile at the traffic model's daily rate
 * (100,000 a day per tenant) scaled by the same factor as the sends (--churn-factor to override;
 * each registered user's consent ends 60 s later, so expiries run at the same rate).
 *
 * Phase 1 prints per tenant the completion time against its deadline and p50/p99 from request to
 * provider acceptance; exit code 1 unless every deadline is met and tighter deadlines finish first.
 * Phase 2 (--overload N, 0 to skip) sends N notifications per tenant within ten seconds, prints
 * each send's admission estimate (fitsDeadline, seconds, ahead) as sendNotification answered it,
 * then waits for the sends that fit and says whether they met their deadlines (exit code 1 if
 * not); sends that did not fit are left running and their progress is printed.
 * --overload-max-minutes M stops waiting for the fitting sends after M minutes (a fitting send
 * not completed by then is reported as such, with its progress).
 * --quick: --minutes 1 --overload 0 --probe 10000 (a smoke test of the script, not a result).
 */
const DEADLINES = [10, 15, 20, 30] as const;
const DEFAULT_WEIGHTS = [22, 16, 14, 11, 9, 8, 7, 6, 4, 3];
const REAL_DELIVERIES = 1e9; // ten tenants, 50M users each on average, two devices each (MISSION.md)
const REGISTRATIONS_PER_TENANT_DAY = 100_000;

type Send = Readonly<{ tenant: number; id: string; at: number; requestedAt: string; estimate: Estimate | null; deadlineMs: number; size: number }>;

const tenantId = (i: number) => `tenant-${i}`;

/** Request-to-acceptance of each succeeded delivery of a notification (the outcome event's time). */
const latencies = async (d: Deployment, sends: readonly Send[]): Promise<Map<string, number[]>> => {
  const out = new Map<string, number[]>(sends.map((s) => [s.id, []]));
  const requested = new Map(sends.map((s) => [s.id, Date.parse(s.requestedAt)]));
  const { eventStore, close } = await d.openStores();
  try {
    for (let after = 0; ; ) {
      const page = await eventStore.readAll({ after, maxCount: 2000, types: ['DeliverySucceeded'] });
      for (const e of page) {
        const data = e.data as unknown as { notificationId: string; deliveries: unknown[] };
        const list = out.get(data.notificationId);
        if (!list) continue;
        const ms = Date.parse(e.metadata.at) - requested.get(data.notificationId)!;
        for (let k = 0; k < data.deliveries.length; k++) list.push(ms);
      }
      if (page.length < 2000) break;
      after = page.at(-1)!.position;
    }
  } finally {
    await close();
  }
  for (const l of out.values()) l.sort((a, b) => a - b);
  return out;
};

const countEvents = async (d: Deployment, type: string): Promise<number> => {
  const { eventStore, close } = await d.openStores();
  let n = 0;
  try {
    for (let after = 0; ; ) {
      const page = await eventStore.readAll({ after, maxCount: 5000, types: [type] });
      n += page.length;
      if (page.length < 5000) break;
      after = page.at(-1)!.position;
    }
  } finally {
    await close();
  }
  return n;
};

/** Registrations at `perSecond` over the tenants, each with a consent that ends `consentSeconds` later. */
const churn = (d: Deployment, keys: readonly string[], perSecond: number, consentSeconds: number) => {
  let stopped = false;
  let registered = 0;
  let errors = 0;
  const lat: number[] = [];
  const loop = (async () => {
    if (perSecond <= 0) return;
    const start = performance.now();
    for (let i = 0; !stopped; i++) {
      const due = start + (i * 1000) / perSecond;
      while (!stopped && performance.now() < due) await sleep(Math.min(500, due - performance.now()));
      if (stopped) break;
      const t = keys.length ? i % keys.length : 0;
      const now = Date.now();
      const t0 = performance.now();
      const r = await d.gql<any>(keys[t]!, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
        in: { userId: `churn-${i}`, name: `Churn ${i}`, groupIds: ['new'], consent: { start: new Date(now - 60_000).toISOString(), end: new Date(now + consentSeconds * 1000).toISOString() }, devices: [{ kind: 'EMAIL', address: `churn${i}@example.com` }] },
      }).catch(() => ({ errors: ['network'] }));
      lat.push(performance.now() - t0);
      if (r.errors) errors++;
      else registered++;
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      lat.sort((a, b) => a - b);
      return { registered, errors, p99: percentile(lat, 99) };
    },
  };
};

/** Polls every send until COMPLETED or `until(send)` passes; returns completion times (epoch ms, NaN if not). */
const waitAll = async (d: Deployment, keys: readonly string[], sends: readonly Send[], until: (s: Send) => number, label: string): Promise<Map<string, { at: number; p: Progress | null }>> => {
  const done = new Map<string, { at: number; p: Progress | null }>();
  let lastPrint = 0;
  const t0 = Math.min(...sends.map((s) => s.at));
  for (;;) {
    const open = sends.filter((s) => !done.has(s.id));
    if (open.length === 0) break;
    const now = Date.now();
    const progress: string[] = [];
    for (const s of open) {
      const p = await progressOf(d, keys[s.tenant]!, s.id);
      if (p?.status === 'COMPLETED') done.set(s.id, { at: Date.now(), p });
      else if (Date.now() > until(s)) done.set(s.id, { at: NaN, p });
      else if (p) progress.push(`${s.tenant}:${Math.round(((p.succeeded + p.failed + p.expired) / Math.max(1, p.total || s.size)) * 100)}%`);
    }
    if (now - lastPrint >= 30_000) {
      lastPrint = now;
      console.log(`  ${label} ${((now - t0) / 1000).toFixed(0).padStart(5)} s  completed ${done.size}/${sends.length}  open ${progress.join(' ')}`);
    }
    await sleep(250);
  }
  return done;
};

const main = async (): Promise<void> => {
  const quick = flag('quick');
  const minutes = num('minutes', quick ? 1 : 8);
  const overload = num('overload', quick ? 0 : 3);
  const weights = process.argv.includes('--weights') ? process.argv[process.argv.indexOf('--weights') + 1]!.split(',').map(Number) : DEFAULT_WEIGHTS;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-bench-day-'));
  const sandbox = await startSandbox(dir, num('latency-ms', 20));
  let failed = false;
  try {
    // ---- the machine's delivery rate ------------------------------------------------------------
    let rate = num('rate', 0);
    if (!(rate > 0)) {
      const probe = num('probe', quick ? 10_000 : 50_000);
      const masterKey = newMasterKey();
      const d = await deploy({ dir, masterKey, sandboxFile: sandbox.file, topology: { kind: 'embedded' }, tag: 'probe' });
      const key = await registerTenant(d, 'probe', 30);
      await createGroup(d, key, 'all');
      await seed(d, masterKey, { tenantId: 'probe', count: probe, groupIds: ['all'], devices: mixedDevice });
      await waitMembers(d, key, 'all', probe);
      await waitReadModels(d);
      const s = await send(d, key, 'all', 'probe');
      const done = await waitCompleted(d, key, s.id, undefined, 250);
      rate = probe / ((done - s.at) / 1000);
      await d.stop();
      console.log(`measured delivery rate: ${fmtN(rate)} deliveries/s (${fmtN(probe)} recipients, embedded default)`);
    }
    const total = Math.round(rate * minutes * 60);
    const wsum = weights.reduce((a, b) => a + b, 0);
    const sizes = weights.map((w) => Math.max(100, Math.round((total * w) / wsum)));
    const deadlines = sizes.map((_, i) => DEADLINES[i % DEADLINES.length]!);
    const factor = total / REAL_DELIVERIES;
    const churnFactor = num('churn-factor', factor);
    const churnPerSecond = (REGISTRATIONS_PER_TENANT_DAY * sizes.length * churnFactor) / 86_400;
    console.log(`bench:traffic-day  ${sizes.length} tenants, ${fmtN(total)} deliveries (${minutes} min at ${fmtN(rate)}/s; scale ${factor.toExponential(2)} of the model's 10^9), overload x${overload}; ${os.cpus().length} cores, node ${process.version}`);
    console.log(`  sizes ${sizes.map(fmtN).join(', ')}; deadlines ${deadlines.join(', ')} min`);
    console.log(`  registrations and expiries: ${churnPerSecond.toPrecision(3)}/s each (${fmtN(REGISTRATIONS_PER_TENANT_DAY)}/day per tenant x ${churnFactor.toExponential(2)})`);

    const masterKey = newMasterKey();
    const d = await deploy({ dir, masterKey, sandboxFile: sandbox.file, topology: { kind: 'embedded' }, tag: 'day', env: { DELIVERY_CLUSTER_RATE: String(Math.round(rate)) } });
    try {
      const keys: string[] = [];
      let t = performance.now();
      let from = 0;
      for (let i = 0; i < sizes.length; i++) {
        keys.push(await registerTenant(d, tenantId(i), deadlines[i]!));
        await createGroup(d, keys[i]!, 'all');
        await createGroup(d, keys[i]!, 'new');
        await seed(d, masterKey, { tenantId: tenantId(i), count: sizes[i]!, from, groupIds: ['all'], devices: mixedDevice });
        from += sizes[i]!;
      }
      for (let i = 0; i < sizes.length; i++) await waitMembers(d, keys[i]!, 'all', sizes[i]!);
      await waitReadModels(d);
      console.log(`seeded ${fmtN(from)} users in ${((performance.now() - t) / 1000).toFixed(0)} s\n`);

      // ---- phase 1: the day's worst hour at capacity ---------------------------------------------
      const expiredBefore = await countEvents(d, 'ConsentExpired');
      const c = churn(d, keys, churnPerSecond, 60);
      const sends: Send[] = [];
      const order = sizes.map((_, i) => i).sort(() => Math.random() - 0.5);
      t = performance.now();
      for (const [k, i] of order.entries()) {
        const due = t + (k * 10_000) / order.length;
        if (performance.now() < due) await sleep(due - performance.now());
        const s = await send(d, keys[i]!, 'all', `day ${i}`);
        sends.push({ tenant: i, ...s, deadlineMs: deadlines[i]! * 60_000, size: sizes[i]! });
      }
      console.log(`10 sends requested in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      const done = await waitAll(d, keys, sends, (s) => s.at + s.deadlineMs + 60_000, 'day');
      const churned = await c.stop();
      await sleep(2_000);
      const expired = (await countEvents(d, 'ConsentExpired')) - expiredBefore;
      const lat = await latencies(d, sends);
      console.log('\ntenant  deadline  deliveries  completed after   met   request→accepted p50 / p99');
      const rows = sends.slice().sort((a, b) => a.deadlineMs - b.deadlineMs || a.at - b.at);
      const result: Record<string, unknown>[] = [];
      for (const s of rows) {
        const r = done.get(s.id)!;
        const took = r.at - Date.parse(s.requestedAt);
        const met = took <= s.deadlineMs && (r.p?.expired ?? 1) === 0;
        if (!met) failed = true;
        const l = lat.get(s.id)!;
        console.log(`${String(s.tenant).padStart(6)}  ${String(s.deadlineMs / 60_000).padStart(5)} min  ${fmtN(s.size).padStart(10)}  ${Number.isNaN(took) ? 'not completed' : `${(took / 1000).toFixed(1).padStart(8)} s`}  ${met ? ' yes' : '  NO'}   ${(percentile(l, 50) / 1000).toFixed(1)} s / ${(percentile(l, 99) / 1000).toFixed(1)} s`);
        result.push({ tenant: s.tenant, deadlineMinutes: s.deadlineMs / 60_000, deliveries: s.size, completedSeconds: +(took / 1000).toFixed(1), met, p50Ms: percentile(l, 50), p99Ms: percentile(l, 99), expired: r.p?.expired ?? null });
      }
      // Tighter deadlines first: every send of a deadline class completes before any of a looser one (1 s of slack).
      let ordered = true;
      for (const a of rows) for (const b of rows) if (a.deadlineMs < b.deadlineMs && done.get(a.id)!.at > done.get(b.id)!.at + 1_000) ordered = false;
      if (!ordered) failed = true;
      console.log(`tighter deadlines finished first: ${ordered ? 'yes' : 'NO'}; every deadline met: ${result.every((r) => r.met) ? 'yes' : 'NO'}`);
      console.log(`registrations meanwhile: ${churned.registered} (errors ${churned.errors}, p99 ${churned.p99.toFixed(1)} ms); consent expiries processed: ${expired}`);
      const last = Math.max(...[...done.values()].map((x) => x.at));
      const dayRate = total / ((last - Math.min(...sends.map((s) => s.at))) / 1000);
      console.log(`all ${fmtN(total)} deliveries in ${((last - Math.min(...sends.map((s) => s.at))) / 1000).toFixed(0)} s: ${fmtN(dayRate)} deliveries/s`);
      const phase1 = { rate: Math.round(rate), minutes, total, sizes, deadlines, tenants: result, ordered, registrations: churned, expiries: expired, deliveriesPerSecond: Math.round(dayRate) };

      // ---- phase 2: past capacity ---------------------------------------------------------------
      let phase2: Record<string, unknown> | null = null;
      if (overload > 0) {
        console.log(`\n---- overload: ${overload} sends per tenant (${fmtN(total * overload)} deliveries, ${(minutes * overload).toFixed(0)} min of capacity) within 10 s ----`);
        const c2 = churn(d, keys, churnPerSecond, 60);
        const over: Send[] = [];
        const list = Array.from({ length: overload }, () => sizes.map((_, i) => i)).flat().sort(() => Math.random() - 0.5);
        t = performance.now();
        console.log('tenant  deadline  deliveries   fits  estimate s  ahead  delays');
        for (const [k, i] of list.entries()) {
          const due = t + (k * 10_000) / list.length;
          if (performance.now() < due) await sleep(due - performance.now());
          const s = await send(d, keys[i]!, 'all', `overload ${k}`);
          over.push({ tenant: i, ...s, deadlineMs: deadlines[i]! * 60_000, size: sizes[i]! });
          const e = s.estimate;
          console.log(`${String(i).padStart(6)}  ${String(deadlines[i]).padStart(5)} min  ${fmtN(sizes[i]!).padStart(10)}  ${e ? (e.fitsDeadline ? '  yes' : '   NO') : '    ?'}  ${e ? e.seconds.toFixed(0).padStart(10) : '?'}  ${e ? fmtN(e.ahead) : '?'}  ${e ? e.delays : '?'}`);
        }
        const fitting = over.filter((s) => s.estimate?.fitsDeadline);
        const notFitting = over.filter((s) => !s.estimate?.fitsDeadline);
        console.log(`${fitting.length} sends fit by their estimate, ${notFitting.length} said they would not`);
        const stopAt = Date.now() + num('overload-max-minutes', 31) * 60_000;
        const doneOver = await waitAll(d, keys, fitting, (s) => Math.min(stopAt, s.at + s.deadlineMs + 30_000), 'overload');
        const churned2 = await c2.stop();
        const stateOf = async (s: Send) => progressOf(d, keys[s.tenant]!, s.id);
        const fitRows: Record<string, unknown>[] = [];
        let allMet = true;
        for (const s of fitting.sort((a, b) => a.at + a.deadlineMs - (b.at + b.deadlineMs))) {
          const r = doneOver.get(s.id)!;
          const took = r.at - Date.parse(s.requestedAt);
          const met = took <= s.deadlineMs && (r.p?.expired ?? 1) === 0;
          if (!met) allMet = false;
          fitRows.push({ tenant: s.tenant, deadlineMinutes: s.deadlineMs / 60_000, estimateSeconds: s.estimate!.seconds, ahead: s.estimate!.ahead, completedSeconds: +(took / 1000).toFixed(1), met });
          const left = Number.isNaN(took) ? r.p : null;
          console.log(`  fits   tenant ${s.tenant} (${s.deadlineMs / 60_000} min): estimate ${s.estimate!.seconds.toFixed(0)} s, ahead ${fmtN(s.estimate!.ahead)}; ${Number.isNaN(took) ? `not completed when the wait ended (${left?.status}, ${fmtN(left ? left.succeeded + left.failed + left.expired : 0)} of ${fmtN(s.size)} terminal, ${((Date.now() - s.at) / 1000).toFixed(0)} s after its request)` : `completed after ${(took / 1000).toFixed(0)} s`}: ${met ? 'met' : Number.isNaN(took) && Date.now() < s.at + s.deadlineMs ? 'not yet known' : 'MISSED'}`);
        }
        const unfitRows: Record<string, unknown>[] = [];
        for (const s of notFitting) {
          const p = await stateOf(s);
          const terminal = p ? p.succeeded + p.failed + p.expired : 0;
          unfitRows.push({ tenant: s.tenant, deadlineMinutes: s.deadlineMs / 60_000, estimateSeconds: s.estimate?.seconds ?? null, ahead: s.estimate?.ahead ?? null, delays: s.estimate?.delays ?? null, status: p?.status, terminal, succeeded: p?.succeeded, expired: p?.expired });
          console.log(`  no fit tenant ${s.tenant} (${s.deadlineMs / 60_000} min): estimate ${s.estimate?.seconds.toFixed(0)} s, would delay ${s.estimate?.delays ?? '?'} admitted send(s); best effort, now ${p?.status}: ${fmtN(p?.succeeded ?? 0)} delivered, ${fmtN(p?.expired ?? 0)} expired of ${fmtN(s.size)}`);
        }
        console.log(`admitted (fitting) sends met their deadlines: ${allMet ? 'yes' : 'NO'}; registrations meanwhile ${churned2.registered} (p99 ${churned2.p99.toFixed(1)} ms)`);
        if (!allMet) failed = true;
        phase2 = { overload, fitting: fitRows, notFitting: unfitRows, fittingMet: allMet };
      }
      recordResult(quick ? 'traffic-day/quick' : 'traffic-day', { phase1, ...(phase2 ? { phase2 } : {}), passed: !failed });
    } finally {
      await d.stop();
    }
  } finally {
    await sandbox.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
};

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
