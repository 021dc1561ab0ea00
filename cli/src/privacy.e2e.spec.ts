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

  beforeAll(async () => {
    h = await startHarness();
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

  it('nor after the files are checkpointed and closed', async () => {
    const dataDir = h.dataDir;
    await h.stop();
    expect(await scanFiles(dataDir, needles())).toEqual([]);
    h = await startHarness({ dataDir });
  });
});
