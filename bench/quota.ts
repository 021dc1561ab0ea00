import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addressOf } from '#cli/testing/seed';
import {
  arg, collectAccepted, createGroup, deploy, flag, fmtN, newMasterKey, num, recordResult, registerTenant, seed, send, startSandbox, waitCompleted, waitMembers, waitReadModels,
  type Topology,
} from './lib';

/**
 * npm run bench:quota [-- --recipients 30000 --rate 500 --workers 2 --read-store postgres] [--embedded]
 *
 * Provider quotas shared by the cluster: two delivery workers (processes), every recipient an SMS,
 * the platform's Twilio integration limited to --rate a second (PROVIDER_TWILIO_RATE) and so is
 * its failover, SNS (PROVIDER_SNS_RATE), so the chain stays saturated for the whole send. Each
 * worker's token bucket gets its partitions' share of the rate and of the burst (a tenth of the
 * rate). From the sandbox's accepted records (receivedAt), the count per wall-clock second of each
 * integration must never exceed rate + burst. Prints the per-second counts, their max and
 * max / rate; exit code 1 when over.
 */
const main = async (): Promise<void> => {
  const recipients = num('recipients', 30_000);
  const rate = num('rate', 500);
  const burst = Math.ceil(rate / 10);
  const topology: Topology = flag('embedded')
    ? { kind: 'embedded' }
    : { kind: 'cluster', workers: num('workers', 2), readStore: arg('read-store', 'postgres') as 'postgres', eventStore: 'postgres', bus: 'kafka' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-bench-quota-'));
  const masterKey = newMasterKey();
  const sandbox = await startSandbox(dir, num('latency-ms', 20));
  const d = await deploy({ dir, masterKey, sandboxFile: sandbox.file, topology, env: { PROVIDER_TWILIO_RATE: String(rate), PROVIDER_SNS_RATE: String(rate) } });
  console.log(`bench:quota  ${fmtN(recipients)} SMS recipients, twilio and sns limited to ${rate}/s each (burst ${burst}); ${d.describe}`);
  let over = false;
  try {
    const key = await registerTenant(d, 'quota', 30);
    await createGroup(d, key, 'all');
    await seed(d, masterKey, { tenantId: 'quota', count: recipients, groupIds: ['all'], devices: (i) => [{ kind: 'sms', address: addressOf('sms', i) }] });
    await waitMembers(d, key, 'all', recipients);
    await waitReadModels(d);
    const since = Date.now();
    const collector = collectAccepted(sandbox, ['twilio', 'sns'], since, 500);
    const s = await send(d, key, 'all', 'quota');
    const done = await waitCompleted(d, key, s.id, undefined, 500);
    const records = await collector.stop();
    console.log(`completed in ${((done - s.at) / 1000).toFixed(1)} s; ${fmtN(records.length)} accepted (twilio ${records.filter((r) => r.instance === 'twilio').length}, sns ${records.filter((r) => r.instance === 'sns').length})\n`);
    const result: Record<string, unknown> = {};
    for (const inst of ['twilio', 'sns']) {
      const perSecond = new Map<number, number>();
      for (const r of records) if (r.instance === inst) perSecond.set(Math.floor(r.receivedAt / 1000), (perSecond.get(Math.floor(r.receivedAt / 1000)) ?? 0) + 1);
      const seconds = [...perSecond.keys()].sort((a, b) => a - b);
      if (seconds.length === 0) continue;
      const counts: number[] = [];
      for (let sec = seconds[0]!; sec <= seconds.at(-1)!; sec++) counts.push(perSecond.get(sec) ?? 0);
      const max = Math.max(...counts);
      // The first and last seconds are partial; the full ones show the sustained rate.
      const full = counts.slice(1, -1);
      const mean = full.length ? full.reduce((a, b) => a + b, 0) / full.length : NaN;
      console.log(`${inst.padEnd(7)} accepted per wall-clock second: ${counts.join(' ')}`);
      console.log(`${inst.padEnd(7)} max ${max}, mean of full seconds ${mean.toFixed(0)}; max / ${rate} = ${(max / rate).toFixed(3)} (limit ${rate} + burst ${burst} = ${((rate + burst) / rate).toFixed(2)}: ${max <= rate + burst ? 'held' : 'EXCEEDED'})`);
      if (max > rate + burst) over = true;
      result[inst] = { perSecond: counts, max, meanFullSeconds: Math.round(mean), maxOverRate: +(max / rate).toFixed(3) };
    }
    recordResult(`quota/${topology.kind === 'embedded' ? 'embedded' : `cluster-${topology.workers}`}`, { topology: d.describe, recipients, rate, burst, ...result, held: !over });
  } finally {
    await d.stop();
    await sandbox.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (over) process.exitCode = 1;
};

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
