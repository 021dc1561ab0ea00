import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from './config';
import { startApp, type App } from './app';

const modeOf = (file: string) => fs.statSync(file).mode & 0o777;

describe('the operator key at first start', () => {
  const apps: App[] = [];
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.stop();
  });
  const start = async (env: Record<string, string>) => {
    const app = await startApp(loadConfig({ PORT: '0', OPS_PORT: '0', LOG_LEVEL: 'silent', ROLES: 'api', ...env }));
    apps.push(app);
    return app;
  };

  it('goes to a file readable only by its owner, even over a world-readable file left from before', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opkey-'));
    const file = path.join(dataDir, 'operator.key');
    fs.writeFileSync(file, 'stale\n', { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    const app = await start({ DATA_DIR: dataDir });
    expect(app.operatorKey).toMatch(/^ntf\./);
    expect(fs.readFileSync(file, 'utf8').trim()).toBe(app.operatorKey);
    expect(modeOf(file)).toBe(0o600);
  });

  it('is written to no file when the configuration says so (as with external stores by default)', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opkey-'));
    const app = await start({ DATA_DIR: dataDir, WRITE_OPERATOR_KEY_FILE: 'false' });
    expect(app.operatorKey).toMatch(/^ntf\./);
    expect(fs.existsSync(path.join(dataDir, 'operator.key'))).toBe(false);
  });
});
