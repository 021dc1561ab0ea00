/**
 * Runs the provider sandbox as its own process and prints its description (control URL, CA,
 * endpoints, credentials) as one JSON line on stdout. Options:
 *   --host 127.0.0.1   --control-port 0   --base-port 0 (instances on base, base+1, ...)
 *   --latency-ms 0     --ca-out <file> (also write the CA PEM there)
 * Stops on SIGINT / SIGTERM.
 */
import fs from 'node:fs';
import { DEFAULT_INSTANCES, startSandbox } from './index';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const basePort = Number(arg('base-port') ?? 0);
  const latencyMs = Number(arg('latency-ms') ?? 0);
  const sandbox = await startSandbox({
    host: arg('host') ?? '127.0.0.1',
    controlPort: Number(arg('control-port') ?? 0),
    instances: DEFAULT_INSTANCES.map((s, i) => ({ ...s, port: basePort > 0 ? basePort + i : 0 })),
    faults: { latencyMs },
  });
  const caOut = arg('ca-out');
  if (caOut !== undefined) fs.writeFileSync(caOut, sandbox.ca);
  process.stdout.write(JSON.stringify(sandbox.describe()) + '\n');
  const stop = () => {
    sandbox.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err) => {
  process.stderr.write(`sandbox: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
