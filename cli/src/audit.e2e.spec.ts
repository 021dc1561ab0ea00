import path from 'node:path';
import { PassThrough } from 'node:stream';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { parseSigningKey, publicKeyPem } from '#platform/crypto/signing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ONLY, registerTenant, startHarness, type Harness } from './testing/harness';
import { parseAuditArgs, runAudit, UsageError } from './audit';

const capture = () => {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
};
const stderr = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;

describe('audit log', () => {
  let h: Harness;
  let admin: string;
  let notificationId: string;

  beforeAll(async () => {
    h = await startHarness({ env: API_ONLY });
    admin = await registerTenant(h, 'audited');
    const other = await registerTenant(h, 'other');
    await h.ok(other, `mutation { registerUser(input: { userId: "x", name: "Other Tenant User", consent: { start: "2026-01-01T00:00:00Z", end: "2099-01-01T00:00:00Z" }, devices: [{ kind: SMS, address: "+821000000001" }] }) { userId } }`);
    await h.ok(admin, `mutation { createGroup(input: { groupId: "g", name: "G" }) { groupId } }`);
    for (const u of ['a', 'b']) {
      await h.ok(admin, `mutation { registerUser(input: { userId: "${u}", name: "Name, of \\"${u}\\"", groupIds: ["g"], consent: { start: "2026-01-01T00:00:00Z", end: "2099-01-01T00:00:00Z" }, devices: [{ kind: EMAIL, address: "${u}@audit.example" }] }) { userId } }`);
    }
    await h.ok(admin, `mutation { updateUser(input: { userId: "a", optIn: false }) { userId } }`);
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { userIds: ["a"], text: "audited text" }) { notification { notificationId } } }`);
    notificationId = sent.sendNotification.notification.notificationId;
    await h.ok(admin, `mutation { forgetUser(userId: "b") { userId } }`);
  });
  afterAll(() => h.stop());

  const exportRecords = async (argv: string[]) => {
    const out = capture();
    expect(await runAudit(h.app, parseAuditArgs(['export', ...argv]), out.stream, stderr)).toBe(0);
    return out.text().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  };

  it("replays one tenant's log in order, with who, when and why, personal data opened", async () => {
    const records = await exportRecords(['--tenant', 'audited']);
    expect(records.map((r) => r.type)).toEqual([
      'TenantRegistered', 'ApiKeyIssued', 'GroupCreated', 'UserRegistered', 'UserRegistered', 'OptInChanged',
      'NotificationRequested', 'UserErasureRequested', 'UserDataShredded',
    ]);
    const positions = records.map((r) => r.position);
    expect([...positions].sort((x, y) => x - y)).toEqual(positions);
    expect(records[3]).toMatchObject({ streamName: 'user-audited.a', actor: expect.stringMatching(/^k/), requestId: expect.any(String), data: { name: 'Name, of "a"', devices: [{ kind: 'email', address: 'a@audit.example' }] } });
    expect(records[4].data).toMatchObject({ name: '[shredded]', devices: [{ address: '[shredded]' }] });
    expect(JSON.stringify(records)).not.toContain('Other Tenant User');
  });

  it('filters by user, notification and time', async () => {
    expect((await exportRecords(['--tenant', 'audited', '--user', 'a'])).map((r) => r.type)).toEqual(['UserRegistered', 'OptInChanged', 'NotificationRequested']);
    expect((await exportRecords(['--tenant', 'audited', '--notification', notificationId])).map((r) => r.type)).toEqual(['NotificationRequested']);
    const all = await exportRecords(['--tenant', 'audited']);
    const from = all[5].at;
    const to = all[7].at;
    const ranged = await exportRecords(['--tenant', 'audited', '--from', from, '--to', to]);
    expect(ranged.every((r) => r.at >= from && r.at < to)).toBe(true);
    expect(ranged.length).toBeGreaterThan(0);
    expect(ranged.length).toBeLessThan(all.length);
  });

  it('writes CSV with one header and quoted cells', async () => {
    const out = capture();
    await runAudit(h.app, parseAuditArgs(['export', '--tenant', 'audited', '--user', 'a', '--format', 'csv']), out.stream, stderr);
    const lines = out.text().trim().split('\n');
    expect(lines[0]).toBe('position,at,streamName,revision,type,actor,requestId,prevHash,data');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toContain('""name"":""Name, of \\""a\\""""');
    expect(lines[1]).toMatch(/^\d+,[^,]+,user-audited\.a,0,UserRegistered,/);
  });

  it('rejects bad arguments with a usage error', () => {
    expect(() => parseAuditArgs(['export'])).toThrow(UsageError);
    expect(() => parseAuditArgs(['export', '--tenant', 't', '--format', 'xml'])).toThrow(/jsonl or csv/);
    expect(() => parseAuditArgs(['export', '--tenant', 't', '--from', 'yesterday'])).toThrow(/not a date-time/);
    expect(() => parseAuditArgs(['shred'])).toThrow(/unknown audit command/);
  });

  it('serves the same replay over GraphQL to audit:read keys, page by page, own tenant only', async () => {
    const auditor = (await h.ok<any>(admin, `mutation { issueApiKey(input: { name: "auditor", scopes: [AUDIT_READ] }) { token } }`)).issueApiKey.token;
    const reader = (await h.ok<any>(admin, `mutation { issueApiKey(input: { name: "reader", scopes: [READ] }) { token } }`)).issueApiKey.token;
    expect((await h.gql(reader, `{ auditLog { nodes { type } } }`)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const types: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const page: any = await h.ok(auditor, `query($after: String) { auditLog(first: 4, after: $after) { nodes { type data prevHash } pageInfo { endCursor hasNextPage } } }`, { after });
      types.push(...page.auditLog.nodes.map((n: any) => n.type));
      if (!page.auditLog.pageInfo.hasNextPage) break;
      after = page.auditLog.pageInfo.endCursor;
    }
    expect(types.slice(0, 9)).toEqual(['TenantRegistered', 'ApiKeyIssued', 'GroupCreated', 'UserRegistered', 'UserRegistered', 'OptInChanged', 'NotificationRequested', 'UserErasureRequested', 'UserDataShredded']);
    const user = await h.ok<any>(auditor, `{ auditLog(userId: "a") { nodes { type data } } }`);
    expect(JSON.parse(user.auditLog.nodes[0].data).name).toBe('Name, of "a"');
  });

  it('creates export files that only their owner can read, even one that existed world-readable', async () => {
    const file = path.join(h.dataDir, 'export.jsonl');
    fs.writeFileSync(file, 'old\n', { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    expect(await runAudit(h.app, parseAuditArgs(['export', '--tenant', 'audited', '--out', file]), capture().stream, stderr)).toBe(0);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toContain('a@audit.example');
    const fresh = path.join(h.dataDir, 'fresh.csv');
    expect(await runAudit(h.app, parseAuditArgs(['export', '--tenant', 'audited', '--format', 'csv', '--out', fresh]), capture().stream, stderr)).toBe(0);
    expect(fs.statSync(fresh).mode & 0o777).toBe(0o600);
  });

  it('verifies the hash chain, then names the event that was tampered with', async () => {
    const out = capture();
    expect(await runAudit(h.app, parseAuditArgs(['verify']), out.stream, stderr)).toBe(0);
    expect(out.text()).toMatch(/ok {6}audited: \d+ events, chain intact/);
    const db = new Database(path.join(h.dataDir, 'events.db'));
    const row = db.prepare(`SELECT position FROM events WHERE tenant_id = 'audited' AND type = 'OptInChanged'`).get() as { position: number };
    db.prepare(`UPDATE events SET data = json_set(data, '$.optIn', json('true')) WHERE position = ?`).run(row.position);
    db.close();
    const broken = capture();
    expect(await runAudit(h.app, parseAuditArgs(['verify', '--tenant', 'audited']), broken.stream, stderr)).toBe(1);
    expect(broken.text()).toContain(`BROKEN  audited: first break at position ${row.position} (OptInChanged, stream user-audited.a`);
    const others = capture();
    expect(await runAudit(h.app, parseAuditArgs(['verify', '--tenant', 'other']), others.stream, stderr)).toBe(0);
  });

  it('notices a deleted event', async () => {
    const db = new Database(path.join(h.dataDir, 'events.db'));
    const rows = db.prepare(`SELECT position, type FROM events WHERE tenant_id = 'other' ORDER BY position`).all() as { position: number; type: string }[];
    db.prepare('DELETE FROM events WHERE position = ?').run(rows[1]!.position);
    db.close();
    const out = capture();
    expect(await runAudit(h.app, parseAuditArgs(['verify', '--tenant', 'other']), out.stream, stderr)).toBe(1);
    expect(out.text()).toContain(`first break at position ${rows[0]!.position} (${rows[0]!.type}`);
  });
});

describe('audit checkpoints: heads anchored outside the store', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: API_ONLY });
    const admin = await registerTenant(h, 'audited');
    await registerTenant(h, 'other');
    for (const u of ['a', 'b']) {
      await h.ok(admin, `mutation { registerUser(input: { userId: "${u}", name: "N ${u}", consent: { start: "2026-01-01T00:00:00Z", end: "2099-01-01T00:00:00Z" }, devices: [{ kind: EMAIL, address: "${u}@anchor.example" }] }) { userId } }`);
    }
  });
  afterAll(() => h.stop());

  it('signs a checkpoint of every chain head, and verifies the log against it; a rewritten log no longer extends it', async () => {
    const seed = randomBytes(32).toString('base64');
    const app = { ...h.app, config: { ...h.app.config, auditSigningKey: seed } };
    const file = path.join(h.dataDir, 'checkpoint.json');
    expect(await runAudit(app, parseAuditArgs(['checkpoint', '--out', file]), capture().stream, stderr)).toBe(0);
    const checkpoint = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(checkpoint.heads.map((x: any) => x.tenantId)).toEqual(expect.arrayContaining(['audited', 'other']));
    const ok = capture();
    expect(await runAudit(app, parseAuditArgs(['verify', '--against', file]), ok.stream, stderr)).toBe(0);
    expect(ok.text()).toMatch(/signature valid/);
    expect(ok.text()).toMatch(/ok {6}audited: \d+ events, chain intact .*extends the checkpoint/);

    // Without the signing key, verification takes the public key from a file.
    const pub = path.join(h.dataDir, 'audit.pub');
    fs.writeFileSync(pub, publicKeyPem(parseSigningKey(seed)));
    expect(await runAudit(h.app, parseAuditArgs(['verify', '--against', file, '--key', pub]), capture().stream, stderr)).toBe(0);
    await expect(runAudit(h.app, parseAuditArgs(['verify', '--against', file]), capture().stream, stderr)).rejects.toThrow(/needs the public key/);

    // Someone with write access to the store drops the tenant's last event and its head row.
    const db = new Database(path.join(h.dataDir, 'events.db'));
    const last = db.prepare(`SELECT position FROM events WHERE tenant_id = 'audited' ORDER BY position DESC LIMIT 1`).get() as { position: number };
    db.prepare('DELETE FROM events WHERE position = ?').run(last.position);
    db.prepare(`DELETE FROM chain_heads WHERE tenant_id = 'audited'`).run();
    db.close();
    const plain = capture();
    expect(await runAudit(app, parseAuditArgs(['verify']), plain.stream, stderr)).toBe(1);
    expect(plain.text()).toMatch(/BROKEN  audited: .*no chain head/);
    const against = capture();
    expect(await runAudit(app, parseAuditArgs(['verify', '--against', file]), against.stream, stderr)).toBe(1);
    expect(against.text()).toMatch(/BROKEN  audited: .*(ends before the checkpointed head|no chain head)/);
  });

});
