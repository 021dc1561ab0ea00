import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildService, startServiceProcess } from './testing/process';

/** `notify start` as a process: SIGTERM turns it not ready at once and it exits by itself within SHUTDOWN_DRAIN_MS. */
describe('shutdown drains within the configured time', () => {
  it('answers not ready while draining, then exits 0 before SHUTDOWN_DRAIN_MS', async () => {
    buildService();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-drain-'));
    const p = await startServiceProcess({ DATA_DIR: dataDir, SANDBOX: 'embedded', SHUTDOWN_DRAIN_MS: '8000' });
    try {
      expect(p.opsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${p.opsUrl}/readyz`)).status).toBe(200);
      const started = Date.now();
      p.child.kill('SIGTERM');
      // Not ready from the signal on (or already closed): load balancers stop sending at once.
      const status = await fetch(`${p.opsUrl}/readyz`).then((r) => r.status, () => 'closed');
      expect([503, 'closed']).toContain(status);
      const exit = await p.exited;
      const tookMs = Date.now() - started;
      console.log(`drain: exited ${exit.code} after ${tookMs} ms (SHUTDOWN_DRAIN_MS 8000)`);
      expect(exit.code).toBe(0);
      expect(tookMs).toBeLessThan(8_000);
      expect(p.output()).not.toMatch(/drain did not finish in time/);
    } finally {
      p.child.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
