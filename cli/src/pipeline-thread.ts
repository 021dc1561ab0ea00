import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from './config';
import { startApp, type App } from './app';
import { batcher, type FromPipeline, type PipelineData, type ToPipeline } from './pipeline';
import { readinessChecks } from './ops';
import { createReceiptIntake } from '#delivery/receipts/intake';
import { checkReadiness } from '#platform/ops/readiness';
import { processHealth } from '#platform/health';

/**
 * The pipeline thread's entry: projections, delivery and expiry of this process, on stores of their
 * own (SQLite allows a writer per connection; the others are network stores). The main thread
 * keeps the API and the embedded sandbox; it applied the platform's default integrations.
 */
const main = async (): Promise<void> => {
  const port = parentPort!;
  const data = workerData as PipelineData;
  const post = (m: FromPipeline) => port.postMessage(m);
  let app: App;
  let lowered: Error | null = null;
  try {
    const config = loadConfig(process.env);
    lowered = lowerPriority(config.pipelineNice);
    app = await startApp({
      ...config,
      roles: data.roles,
      publicUrl: data.publicUrl,
      sandbox: { kind: 'none' },
      providersFile: null,
      platformProviders: [],
      pipelineThread: false,
    }, { ops: false, checkpoints: false });
  } catch (e) {
    post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
    return;
  }
  const receipts = createReceiptIntake({ commands: app.commands, cipher: app.cipher, logger: app.logger });
  const answer = batcher<readonly [number, number]>((statuses) => post({ type: 'receipts', statuses }));
  port.on('message', (m: ToPipeline) => {
    if (m.type === 'receipts') {
      for (const [id, callback] of m.callbacks) void receipts.handle(callback).then((status) => answer([id, status]), () => answer([id, 500]));
    } else if (m.type === 'readiness') {
      void checkReadiness(readinessChecks(data.roles, app), processHealth.report(), false, app.config.ops.readinessTimeoutMs).then(
        (r) => post({ type: 'readiness', id: m.id, problem: r.ready ? null : `not ready: ${JSON.stringify(r)}`.slice(0, 500) }),
        (e) => post({ type: 'readiness', id: m.id, problem: e instanceof Error ? e.message : String(e) }),
      );
    } else if (m.type === 'metrics') {
      void app.metrics.registry.metrics().then((text) => post({ type: 'metrics', id: m.id, text }), () => post({ type: 'metrics', id: m.id, text: '' }));
    } else if (m.type === 'stop') {
      void app.stop().then(
        () => post({ type: 'stopped' }),
        (e) => {
          app.logger.error({ err: e }, 'the pipeline thread failed to stop cleanly');
          post({ type: 'stopped' });
        },
      );
    }
  });
  if (lowered) app.logger.warn({ err: lowered }, 'could not lower the pipeline thread\'s priority (PIPELINE_NICE); it competes with requests as an equal');
  post({ type: 'ready' });
};

/**
 * Lowers this thread's priority alone: on Linux a thread id is a scheduling entity of its own
 * for setpriority. Returns the error when it could not (another system, a sandboxed /proc).
 */
const lowerPriority = (nice: number): Error | null => {
  if (nice === 0) return null;
  try {
    const tid = Number(path.basename(fs.readlinkSync('/proc/thread-self')));
    os.setPriority(tid, nice);
    return null;
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
};

void main();
