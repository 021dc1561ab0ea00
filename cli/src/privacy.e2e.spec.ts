import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanFiles } from '#platform/testing/scan';
import { registerTenant, startHarness, type Harness } from './testing/harness';

const unique = (i: number) => ({
  name: `Zelda Quux-${i} 홍길동${i}`,
  email: `zelda.${i}.quux@privacy-probe.example`,
  phone: `+8210${String(90000000 + i)}`,
  ios: `${'c0ffee'.repeat(10)}${String(1000 + i)}`,
  android: `probe-fcm-token-${i}-abcdefghijklmnopqrstuvwxyz0123456789`,
  renamed: `Renamed Person ${i} 이순신`,
  newEmail: `changed.${i}@privacy-probe.example`,
});

describe('personal data never reaches a store in clear', () => {
  let h: Harness;
  const people = Array.from({ length: 5 }, (_, i) => unique(i));
  const logLines: string[] = [];

  beforeAll(async () => {
    h = await startHarness({ logLines });
    const admin = await registerTenant(h, 'privacy');
    await h.ok(admin, `mutation { createGroup(input: { groupId: "probe-group", name: "Clear group name probe" }) { groupId } }`);
    for (const [i, p] of people.entries()) {
      const user = await h.ok<{ registerUser: any }>(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { devices { deviceId kind } } }`, {
        in: {
          userId: `p-${i}`,
          name: p.name,
          groupIds: ['probe-group'],
          consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' },
          devices: [
            { kind: 'EMAIL', address: p.email },
            { kind: 'SMS', address: p.phone },
            { kind: 'IOS', address: p.ios },
            { kind: 'ANDROID', address: p.android },
          ],
        },
      });
      const email = user.registerUser.devices.find((d: any) => d.kind === 'EMAIL');
      await h.ok(admin, `mutation($in: UpdateUserInput!) { updateUser(input: $in) { userId } }`, { in: { userId: `p-${i}`, name: p.renamed } });
      await h.ok(admin, `mutation($u: ID!, $d: ID!, $a: String!) { changeDevice(userId: $u, deviceId: $d, device: { kind: EMAIL, address: $a }) { userId } }`, {
        u: `p-${i}`,
        d: email.deviceId,
        a: p.newEmail,
      });
    }
    await h.ok(admin, `mutation { sendNotification(input: { groupId: "probe-group", text: "Clear notification text probe" }) { duplicate } }`);
    await h.app.settle();
  });
  afterAll(() => h.stop());

  const needles = () => people.flatMap((p) => [p.name, p.email, p.phone, p.ios, p.android, p.renamed, p.newEmail, 'Zelda Quux', '홍길동', 'privacy-probe.example']);

  it('the data is really there, readable through the API', async () => {
    const admin = await registerTenant(h, 'privacy-2');
    expect(admin).toBeTruthy();
    const files = fs.readdirSync(h.dataDir);
    expect(files).toEqual(expect.arrayContaining(['events.db', 'read.db', 'keys.db']));
    // The scan itself works: values stored in clear on purpose are found.
    const control = await scanFiles(h.dataDir, ['Clear group name probe', 'Clear notification text probe']);
    expect(new Set(control.map((c) => c.needle))).toEqual(new Set(['Clear group name probe', 'Clear notification text probe']));
  });

  it('no raw byte of any SQLite file (database, WAL, shared memory) holds a name, email, phone or token', async () => {
    expect(fs.readdirSync(h.dataDir).some((f) => f.endsWith('-wal'))).toBe(true);
    expect(await scanFiles(h.dataDir, needles())).toEqual([]);
  });

  it('no line of the service\'s log output (debug level, the access lines included) and no metric holds one', async () => {
    // The probe: the requests that carried the data were logged, one access line each.
    const access = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'graphql');
    expect(access.filter((l) => l['operation'] === 'mutation.registerUser')).toHaveLength(people.length);
    expect(access.filter((l) => l['operation'] === 'mutation.changeDevice')).toHaveLength(people.length);
    expect(access.every((l) => typeof l['requestId'] === 'string')).toBe(true);
    const escaped = (n: string) => [n, JSON.stringify(n).slice(1, -1), n.replace('+', '\\u002b')];
    const leaks = logLines.filter((line) => needles().some((n) => escaped(n).some((e) => line.includes(e))));
    expect(leaks).toEqual([]);
    const metrics = await (await fetch(`${h.app.ops!.url}/metrics`)).text();
    expect(metrics).toContain('notify_graphql_requests_total{operation="mutation.registerUser"');
    expect(needles().filter((n) => metrics.includes(n))).toEqual([]);
  });

  it('nor after the files are checkpointed and closed', async () => {
    const dataDir = h.dataDir;
    await h.stop();
    expect(await scanFiles(dataDir, needles())).toEqual([]);
    h = await startHarness({ dataDir });
  });
});

/**
 * Providers answer an invalid address with a message that quotes it (Twilio 21211 "The 'To'
 * number +82... is not a valid phone number", SNS "PhoneNumber Reason: +82... is not valid",
 * SMTP "550 5.1.1 <a@b>: ..."). Neither those messages nor an SDK error that carries its request
 * (logged through pino's error serializer) may keep an address alive after the user is erased:
 * no store may hold it, and no log line.
 */
describe('addresses quoted in provider refusals do not survive erasure', () => {
  const logLines: string[] = [];
  let h: Harness;
  const phones = { twilio: '+821099990001', sns: '+821099990002' };
  const emails = { sendgrid: 'refused.sendgrid.probe@privacy-probe.example', smtp: 'refused.smtp.probe@privacy-probe.example' };
  let admin: string;

  const completed = async (id: string) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const n = (await h.ok<any>(admin, `{ notification(notificationId: "${id}") { status progress { total failed succeeded } } }`)).notification;
      if (n.status === 'COMPLETED') return n.progress;
      if (Date.now() > deadline) throw new Error(`send ${id} did not complete: ${JSON.stringify(n)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const register = (userId: string, group: string, sms: string, email: string) =>
    h.ok(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: { userId, name: `Refused ${userId}`, groupIds: [group], consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' }, devices: [{ kind: 'SMS', address: sms }, { kind: 'EMAIL', address: email }] },
    });
  const send = async (group: string) =>
    (await h.ok<any>(admin, `mutation { sendNotification(input: { groupId: "${group}", text: "refusal probe" }) { notification { notificationId } } }`)).sendNotification.notification.notificationId as string;

  beforeAll(async () => {
    h = await startHarness({ logLines });
    const sandbox = h.app.sandbox!;
    sandbox.instance('twilio').addPermanentFailures([phones.twilio], 'invalid');
    sandbox.instance('sns').addPermanentFailures([phones.sns], 'invalid');
    sandbox.instance('sendgrid').addPermanentFailures([emails.sendgrid], 'invalid');
    sandbox.instance('smtp').addPermanentFailures([emails.smtp], 'invalid');
    admin = await registerTenant(h, 'refusals');
    await h.ok(admin, `mutation { createGroup(input: { groupId: "first", name: "First" }) { groupId } }`);
    await h.ok(admin, `mutation { createGroup(input: { groupId: "second", name: "Second" }) { groupId } }`);

    // Round 1 through the first providers of each chain: Twilio and SendGrid refuse.
    await register('r-1', 'first', phones.twilio, emails.sendgrid);
    expect(await completed(await send('first'))).toMatchObject({ total: 2, failed: 2 });
    // Round 2 through the next ones (the first ones removed): SNS and SMTP refuse.
    for (const name of ['twilio', 'sendgrid']) await h.ok(h.operatorKey, `mutation { removeProvider(tenantId: "platform", name: "${name}") }`);
    await new Promise((r) => setTimeout(r, 1_500));
    await register('r-2', 'second', phones.sns, emails.smtp);
    expect(await completed(await send('second'))).toMatchObject({ total: 2, failed: 2 });
    for (const name of ['twilio', 'sns', 'sendgrid', 'smtp']) expect(sandbox.instance(name).stats().permanent).toBeGreaterThan(0);

    for (const userId of ['r-1', 'r-2']) await h.ok(admin, `mutation { forgetUser(userId: "${userId}") { userId } }`);
    await h.app.settle();
  }, 90_000);
  afterAll(() => h.stop());

  const addresses = () => [...Object.values(phones), ...Object.values(emails)];

  it('the providers did quote the addresses (the probe works)', () => {
    const twilio = h.app.sandbox!.instance('twilio');
    expect(twilio.permanentFailures()).toMatchObject({ [phones.twilio]: 'invalid' });
  });

  it('no store holds an address after the users are erased, not even in a failure reason', async () => {
    expect(await scanFiles(h.dataDir, addresses())).toEqual([]);
    const dataDir = h.dataDir;
    await h.stop();
    expect(await scanFiles(dataDir, addresses())).toEqual([]);
    h = await startHarness({ dataDir });
  });

  it('no log line holds an address (errors of the SDKs included)', () => {
    // The probe: every refusing provider's answer was logged (with its reason), so a leak would show.
    const refusals = logLines.filter((line) => line.includes('provider refused messages'));
    for (const name of ['twilio', 'sns', 'sendgrid', 'smtp']) expect(refusals.some((line) => line.includes(`"provider":"${name}"`)), name).toBe(true);
    const leaks = logLines.filter((line) => addresses().some((a) => line.includes(a) || line.includes(a.replace('+', '\\u002b'))));
    expect(leaks).toEqual([]);
  });
});
