import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildService, startServiceProcess, type ServiceProcess } from './testing/process';

const CONSENT = { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' };

/** The nice value of each of the process's threads, from /proc (Linux). */
const threadNices = (pid: number): number[] =>
  fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): the 19th field overall is nice.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });

describe.skipIf(process.platform !== 'linux')('notify start: delivery on a thread of its own, projections and expiry on another', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-pipeline-'));
  let service: ServiceProcess;
  let admin: string;
  const gql = async (query: string, variables: Record<string, unknown> = {}, key = admin) => {
    const res = await fetch(service.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data?: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };

  beforeAll(async () => {
    buildService();
    service = await startServiceProcess({ DATA_DIR: dataDir, SANDBOX: 'embedded', SANDBOX_LATENCY_MS: '1' });
    const operator = fs.readFileSync(path.join(dataDir, 'operator.key'), 'utf8').trim();
    admin = (await gql(`mutation { registerTenant(input: { tenantId: "acme", name: "Acme", deliveryDeadlineMinutes: 10 }) { adminKey { token } } }`, {}, operator)).registerTenant.adminKey.token;
  }, 120_000);

  afterAll(async () => {
    if (service.child.exitCode === null) service.child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('delivers a send, records its receipts, counts it where delivery runs, runs that thread at a lower priority, and drains on SIGTERM', async () => {
    await gql(`mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
    for (let i = 0; i < 20; i++) {
      await gql(`mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
        in: { userId: `u${i}`, name: `User ${i}`, groupIds: ['all'], consent: CONSENT, devices: [{ kind: 'EMAIL', address: `u${i}@example.com` }, { kind: 'SMS', address: `+8210${String(55_550_000 + i)}` }] },
      });
    }
    const id = (await gql(`mutation { sendNotification(input: { groupId: "all", text: "hello" }) { notification { notificationId } } }`)).sendNotification.notification.notificationId;
    const end = Date.now() + 60_000;
    let n: any;
    for (;;) {
      // The read model is another thread's: NOT_FOUND until it has the request.
      n = await gql(`query($id: ID!) { notification(notificationId: $id) { status progress { total succeeded delivered } } }`, { id }).then(
        (d) => d.notification,
        (e: Error) => (e.message.includes('NOT_FOUND') ? null : Promise.reject(e)),
      );
      // Twilio's status callbacks reach the API and are recorded on the projections' thread (the
      // sandbox's platform SendGrid has no event webhook: emails stay accepted, not delivered).
      if ((n?.status === 'COMPLETED' && n.progress.delivered === 20) || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(n).toEqual({ status: 'COMPLETED', progress: { total: 40, succeeded: 40, delivered: 20 } });

    // The ops port's /metrics shows the pipeline thread's delivery counters, each family once.
    const metrics = await (await fetch(`${service.opsUrl}/metrics`)).text();
    const delivered = [...metrics.matchAll(/^notify_deliveries_total\{[^}]*outcome="succeeded"[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
    expect(delivered).toBe(40);
    const families = [...metrics.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
    expect(families.length).toBe(new Set(families).size);
    expect(families).toContain('notify_graphql_requests_total');
    // The projections' lag is counted on their thread, and kept beside delivery's counters.
    expect(metrics).toMatch(/^notify_projection_lag_seconds\{read_model="timeline"\} [0-9.]+$/m);
    // Ready: the main thread's checks and each pipeline thread's.
    const ready = await fetch(`${service.opsUrl}/readyz`);
    expect(ready.status).toBe(200);
    const checks = JSON.stringify(await ready.json());
    expect(checks).toContain('pipeline-thread:delivery');
    expect(checks).toContain('pipeline-thread:projections+expiry');

    // PIPELINE_NICE (10 by default): both pipeline threads run at it, the main thread at 0.
    const nices = threadNices(service.child.pid!);
    expect(nices.filter((n) => n === 10).length).toBeGreaterThanOrEqual(2);
    expect(threadNices(service.child.pid!)[0]).toBe(0);

    service.child.kill('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
  }, 120_000);
});
