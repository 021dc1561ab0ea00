import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildService } from './testing/process';

const main = path.resolve(__dirname, '../../dist/cli/src/main.js');

describe('a bad configuration at start', () => {
  beforeAll(() => buildService());

  it('exits with code 2 and lists every problem, from every section, without a stack trace', () => {
    const r = spawnSync(process.execPath, [main, 'start'], {
      env: { ...process.env, PORT: 'abc', DELIVERY_MAX_PENDING: '-5', PROVIDER_APNS_CONCURRENCY: 'x' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid configuration:/);
    expect(r.stderr).toMatch(/PORT must be an integer from 0 to 65535, got "abc"/);
    expect(r.stderr).toMatch(/DELIVERY_MAX_PENDING must be an integer >= 1, got "-5"/);
    expect(r.stderr).toMatch(/PROVIDER_APNS_CONCURRENCY must be an integer >= 1, got "x"/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('a bad PROVIDERS_FILE at start', () => {
  beforeAll(() => buildService());

  it('exits with code 2 naming each wrong entry and field, and applies nothing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'providers-file-'));
    const file = path.join(dir, 'providers.json');
    fs.writeFileSync(file, JSON.stringify([
      { name: 'mail', channel: 'email', sendgrid: { apiKey: 'SG.nope', from: 'a@b.example' } },
      { name: 'sms', channel: 'sms', twilio: { accountSid: `AC${'a'.repeat(32)}`, authToken: 'b'.repeat(32) } },
    ]));
    const r = spawnSync(process.execPath, [main, 'start'], {
      env: { ...process.env, PORT: '0', OPS_PORT: '0', DATA_DIR: path.join(dir, 'data'), PROVIDERS_FILE: file },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/PROVIDERS_FILE entry 0: sendgrid\.apiKey: /);
    expect(r.stderr).toMatch(/PROVIDERS_FILE entry 1: twilio: give exactly one sender/);
    expect(fs.existsSync(path.join(dir, 'data'))).toBe(false);
    expect(r.stderr).not.toContain('SG.nope');
  });
});
