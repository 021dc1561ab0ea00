import { PLATFORM } from '#schema/integrations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '#platform/clock';
import { streams } from '#schema/streams';
import { defaultDeliveryConfig } from '#delivery/config';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerTenant, startHarness, type Harness } from './testing/harness';
import { buildService, startSandboxProcess, type SandboxProcess } from './testing/process';
import { addressOf, seedUsers } from './testing/seed';
import { until } from './testing/until';

const PROGRESS = 'status progress { total succeeded failed expired completion reachedUsers reachedUsersExact possiblyDuplicated byProvider { key succeeded attempts } byChannel { key total succeeded } }';

const notification = async (h: Harness, key: string, id: string) =>
  (await h.ok<any>(key, `{ notification(notificationId: "${id}") { ${PROGRESS} } }`)).notification;

const completed = (h: Harness, key: string, id: string, ms = 60_000) =>
  until(async () => (await notification(h, key, id)).status === 'COMPLETED', ms, `notification ${id} to complete`);

const circuitEvents = async (h: Harness, provider: string) =>
  (await h.app.eventStore.readStream(streams.provider(`${PLATFORM}.${provider}`))).map((e) => (e.data as { state: string }).state);

describe('delivery to every channel, over GraphQL', () => {
  let h: Harness;
  let admin: string;
  const devices = [
    { kind: 'IOS', address: 'ab'.repeat(32) },
    { kind: 'ANDROID', address: 'fcm-token-0123456789abcdefghijklmnopqrstuv' },
    { kind: 'EMAIL', address: 'everyone@example.com' },
    { kind: 'SMS', address: '+821012345678' },
  ];

  beforeAll(async () => {
    h = await startHarness();
    admin = await registerTenant(h, 'acme');
    await h.ok(admin, `mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
    for (let u = 0; u < 3; u++) {
      await h.ok(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
        in: {
          userId: `u${u}`,
          name: `User ${u}`,
          groupIds: ['all'],
          consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' },
          devices: devices.map((d) => ({ kind: d.kind, address: d.kind === 'IOS' ? `${u}`.padStart(64, 'c') : d.kind === 'SMS' ? `+82101234567${u}` : d.kind === 'EMAIL' ? `u${u}@example.com` : `${d.address}-${u}` })),
        },
      });
    }
  });
  afterAll(() => h.stop());

  it('sends each device exactly one message, streams progress to 100% and records every step', async () => {
    const client = h.ws(admin);
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { groupId: "all", text: "안녕하세요, 모두" }) { notification { notificationId } estimate { recipients deliveries fitsDeadline } } }`);
    const id = sent.sendNotification.notification.notificationId;
    expect(sent.sendNotification.estimate).toEqual({ recipients: 3, deliveries: 12, fitsDeadline: true });
    const snapshots: any[] = [];
    for await (const s of client.iterate<any>({ query: `subscription($id: ID!) { notificationProgress(notificationId: $id) { ${PROGRESS} } }`, variables: { id } })) {
      snapshots.push(s.data.notificationProgress);
      if (s.data.notificationProgress.status === 'COMPLETED') break;
    }
    const last = snapshots.at(-1);
    expect(last).toMatchObject({ status: 'COMPLETED', progress: { total: 12, succeeded: 12, failed: 0, expired: 0, completion: 1, reachedUsers: 3, reachedUsersExact: true } });
    expect(Object.fromEntries(last.progress.byChannel.map((c: any) => [c.key, c.succeeded]))).toEqual({ ios: 3, android: 3, email: 3, sms: 3 });
    // Exactly one accepted request per device at the sandbox, each on the primary provider.
    const sandbox = h.app.sandbox!;
    for (const [instance, n] of [['apns', 3], ['fcm-primary', 3], ['sendgrid', 3], ['twilio', 3]] as const) {
      expect(sandbox.instance(instance).stats().accepted, instance).toBe(n);
      expect([...sandbox.instance(instance).countsByAddress().values()]).toEqual([1, 1, 1]);
    }
    const apns = sandbox.instance('apns').accepted();
    expect(apns.every((m) => m.collapseId && m.collapseId === m.deliveryId)).toBe(true);
    // Twilio's status callback comes back to the API: the SMS entry ends with its receipt.
    const entriesOf = async () => (await h.ok<any>(admin, `{ timeline(userId: "u0") { nodes { type channel status possiblyDuplicate steps { step provider outcome } } } }`)).timeline.nodes.filter((n: any) => n.type === 'Delivery');
    await until(async () => (await entriesOf()).find((e: any) => e.channel === 'SMS')?.steps.length === 4, 10_000, 'the SMS receipt');
    const entries = await entriesOf();
    expect(entries).toHaveLength(4);
    for (const e of entries) {
      expect(e.steps.map((s: any) => s.step)).toEqual(e.channel === 'SMS' ? ['requested', 'attempted', 'succeeded', 'delivered'] : ['requested', 'attempted', 'succeeded']);
      expect(e.steps[1].outcome).toBe('accepted');
      expect(e.possiblyDuplicate).toBe(false);
    }
    const metrics = await (await fetch(`${h.app.ops!.url}/metrics`)).text();
    expect(metrics).toMatch(/notify_deliveries_total\{outcome="succeeded",channel="sms",integration="twilio",tenant="[^"]+"\} 3/);
    expect(metrics).toMatch(/notify_provider_breaker_state\{integration="platform\/fcm-primary"\} 0/);
  });

  it('marks a device invalid on a permanent error and does not retry it', async () => {
    h.app.sandbox!.instance('twilio').addPermanentFailures(['+821012345671'], 'invalid');
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { userIds: ["u1"], text: "second" }) { notification { notificationId } } }`);
    const id = sent.sendNotification.notification.notificationId;
    await completed(h, admin, id);
    const n = await notification(h, admin, id);
    expect(n.progress).toMatchObject({ total: 4, succeeded: 3, failed: 1 });
    expect(h.app.sandbox!.instance('sns').stats().requests).toBe(0);
    await h.app.settle();
    const user = await h.ok<any>(admin, `{ timeline(userId: "u1") { nodes { type summary } } }`);
    expect(user.timeline.nodes.some((e: any) => e.type === 'DeviceInvalidated')).toBe(true);
    // The next send skips the invalid device at fan-out.
    const again = await h.ok<any>(admin, `mutation { sendNotification(input: { userIds: ["u1"], text: "third" }) { notification { notificationId } } }`);
    await completed(h, admin, again.sendNotification.notification.notificationId);
    expect((await notification(h, admin, again.sendNotification.notification.notificationId)).progress.total).toBe(3);
  });
});

describe('provider outage: the breaker opens, traffic fails over, a half-open probe brings it back', () => {
  let h: Harness;
  let admin: string;

  beforeAll(async () => {
    h = await startHarness({ env: { SANDBOX_LATENCY_MS: '5' } });
    admin = await registerTenant(h, 'outage');
    await h.ok(admin, `mutation { createGroup(input: { groupId: "android", name: "Android" }) { groupId } }`);
    await seedUsers(h.app, { tenantId: 'outage', count: 10_000, groupIds: ['android'], devices: (i) => [{ kind: 'android', address: addressOf('android', i) }] });
    await h.app.settle();
  }, 120_000);
  afterAll(() => h.stop());

  it('delivers all 10,000 Android messages through the second route while the first is down', async () => {
    const primary = h.app.sandbox!.instance('fcm-primary');
    primary.setFaults({ outage: true });
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { groupId: "android", text: "during the outage" }) { notification { notificationId deadline } } }`);
    const id = sent.sendNotification.notification.notificationId;
    await completed(h, admin, id, 120_000);
    const n = await notification(h, admin, id);
    expect(n.progress).toMatchObject({ total: 10_000, succeeded: 10_000, failed: 0, expired: 0, reachedUsers: 10_000, reachedUsersExact: true });
    const byProvider = Object.fromEntries(n.progress.byProvider.map((p: any) => [p.key, p]));
    expect(byProvider['fcm-secondary'].succeeded).toBe(10_000);
    expect(primary.stats().accepted).toBe(0);
    // Every device got the message. A call abandoned at its timeout may still have arrived: each
    // such message was sent again flagged, so every extra copy at the provider is accounted for.
    const secondary = h.app.sandbox!.instance('fcm-secondary');
    expect(secondary.countsByAddress().size).toBe(10_000);
    expect(secondary.stats().accepted - 10_000).toBeLessThanOrEqual(n.progress.possiblyDuplicated);
    expect(await circuitEvents(h, 'fcm-primary')).toContain('open');
    expect(h.app.delivery!.router.state(PLATFORM, 'fcm-primary')).not.toBe('closed');
  }, 120_000);

  it('probes the primary when it recovers and moves traffic back', async () => {
    h.app.sandbox!.instance('fcm-primary').setFaults({ outage: false });
    await until(async () => h.app.delivery!.router.state(PLATFORM, 'fcm-primary') === 'half-open', 10_000, 'the breaker to half-open');
    // While half-open, one message probes the primary; the rest still take the second route.
    const probe = await h.ok<any>(admin, `mutation { sendNotification(input: { groupId: "android", text: "probe" }) { notification { notificationId } } }`);
    await completed(h, admin, probe.sendNotification.notification.notificationId, 120_000);
    expect(h.app.delivery!.router.state(PLATFORM, 'fcm-primary')).toBe('closed');
    const states = await circuitEvents(h, 'fcm-primary');
    expect(states.slice(states.lastIndexOf('open'))).toEqual(['open', 'half-open', 'closed']);
    const primaryBefore = h.app.sandbox!.instance('fcm-primary').stats().accepted;
    expect(primaryBefore).toBeGreaterThanOrEqual(1);
    // The probe's send spent part of the primary's quota (10,000 a second, a burst of as many): once
    // it has refilled, a whole send fits in it.
    await new Promise((r) => setTimeout(r, 1_200));
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { groupId: "android", text: "after the outage" }) { notification { notificationId } } }`);
    const id = sent.sendNotification.notification.notificationId;
    await completed(h, admin, id, 120_000);
    const n = await notification(h, admin, id);
    const byProvider = Object.fromEntries(n.progress.byProvider.map((p: any) => [p.key, p.succeeded]));

    expect(n.progress.succeeded).toBe(10_000);
    // Back on the primary; only what exceeds its quota in a burst spills over to the second route.
    expect(byProvider['fcm-primary']).toBeGreaterThan(9_000);
    expect(h.app.sandbox!.instance('fcm-primary').stats().accepted - primaryBefore).toBe(byProvider['fcm-primary']);
  }, 180_000);
});

describe('a call abandoned at its timeout, after the provider took the message', () => {
  let h: Harness;
  let admin: string;

  beforeAll(async () => {
    const twilio = { ...defaultDeliveryConfig.policies.twilio!, timeoutMs: 300 };
    h = await startHarness({ env: { SANDBOX_LATENCY_MS: '0' }, delivery: { policies: { ...defaultDeliveryConfig.policies, twilio } } });
    admin = await registerTenant(h, 'slow');
    await h.ok(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: { userId: 'u', name: 'U', consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' }, devices: [{ kind: 'SMS', address: '+821055550000' }] },
    });
  });
  afterAll(() => h.stop());

  it('sends again flagged possibly duplicated, and counts it so', async () => {
    const twilio = h.app.sandbox!.instance('twilio');
    // The first request is answered after 1.5 s, well past the 300 ms timeout; later ones at once.
    twilio.setFaults({ latencyMs: 1500 });
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { userIds: ["u"], text: "slow" }) { notification { notificationId } } }`);
    await until(async () => twilio.stats().requests >= 1, 10_000, 'the first request');
    twilio.setFaults({ latencyMs: 0 });
    const id = sent.sendNotification.notification.notificationId;
    await completed(h, admin, id);
    await until(async () => twilio.stats().accepted === 2, 5_000, 'the late first copy to be accepted');
    const n = await notification(h, admin, id);
    expect(n.progress).toMatchObject({ total: 1, succeeded: 1, possiblyDuplicated: 1 });
    const entryOf = async () => (await h.ok<any>(admin, `{ timeline(userId: "u") { nodes { type possiblyDuplicate steps { step outcome } } } }`)).timeline.nodes.find((e: any) => e.type === 'Delivery');
    // Both copies reached the provider, so both report back: the delivery's receipt is recorded once.
    await until(async () => (await entryOf()).steps.some((s: any) => s.step === 'delivered'), 10_000, 'the receipt');
    await until(async () => twilio.stats().receiptsSent >= 4, 10_000, 'both copies\' callbacks (sent and delivered each)');
    await h.app.settle();
    const entry = await entryOf();
    expect(entry.possiblyDuplicate).toBe(true);
    expect(entry.steps.map((s: any) => `${s.step}${s.outcome ? `:${s.outcome}` : ''}`)).toEqual(['requested', 'attempted:transient', 'attempted:accepted', 'succeeded', 'delivered:delivered']);
  }, 60_000);
});

describe('a user erased while their message is with the provider', () => {
  let h: Harness;
  let admin: string;

  beforeAll(async () => {
    h = await startHarness({ env: { SANDBOX_LATENCY_MS: '0' } });
    admin = await registerTenant(h, 'gone');
    await h.ok(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: { userId: 'u', name: 'U', consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' }, devices: [{ kind: 'SMS', address: '+821055550001' }] },
    });
  });
  afterAll(() => h.stop());

  it('counts the answer that comes after the erasure, and leaves no trace of it in the timeline', async () => {
    const twilio = h.app.sandbox!.instance('twilio');
    twilio.setFaults({ latencyMs: 1500 });
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { userIds: ["u"], text: "racing the erasure" }) { notification { notificationId } } }`);
    await until(async () => twilio.stats().requests >= 1, 10_000, 'the request to reach the provider');
    await h.ok(admin, `mutation { forgetUser(userId: "u") { userId } }`);
    const id = sent.sendNotification.notification.notificationId;
    await completed(h, admin, id);
    expect((await notification(h, admin, id)).progress).toMatchObject({ total: 1, succeeded: 1 });
    expect(twilio.stats().accepted).toBe(1);
    await h.app.settle();
    // The outcome was projected after the purge; the erasure mark keeps it from recreating an entry.
    expect((await h.app.readStore.find('timeline', { tenantId: 'gone', userId: 'u' }, { limit: 10 })).items).toEqual([]);
  }, 60_000);
});

describe('a send that cannot fit its deadline', () => {
  const clock = manualClock(new Date());
  let h: Harness;
  let admin: string;
  let sandbox: SandboxProcess;

  // The sandbox runs in its own process here: its timestamps must not wait on this event loop.
  beforeAll(async () => {
    buildService();
    sandbox = await startSandboxProcess(fs.mkdtempSync(path.join(os.tmpdir(), 'notify-sandbox-')), ['--latency-ms', '20']);
    const slow = { ...defaultDeliveryConfig.policies.twilio!, ratePerSecond: 5 };
    h = await startHarness({
      clock,
      env: { SANDBOX_FILE: sandbox.descriptionFile },
      delivery: { policies: { ...defaultDeliveryConfig.policies, twilio: slow, sns: { ...slow } } },
    });
    admin = await registerTenant(h, 'late', 10);
    await h.ok(admin, `mutation { createGroup(input: { groupId: "sms", name: "SMS" }) { groupId } }`);
    await seedUsers(h.app, { tenantId: 'late', count: 10_000, groupIds: ['sms'], devices: (i) => [{ kind: 'sms', address: addressOf('sms', i) }] });
    await h.app.settle();
  }, 240_000);
  afterAll(async () => {
    await h.stop();
    await sandbox.stop();
  });

  it('is estimated not to fit, sends nothing after the deadline, and expires the rest', async () => {
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { groupId: "sms", text: "too many" }) { notification { notificationId deadline } estimate { deliveries seconds deadlineSeconds fitsDeadline } } }`);
    const { notificationId: id, deadline } = sent.sendNotification.notification;
    expect(sent.sendNotification.estimate).toMatchObject({ deliveries: 10_000, deadlineSeconds: 600, fitsDeadline: false });
    expect(sent.sendNotification.estimate.seconds).toBeGreaterThan(600);
    await until(async () => (await notification(h, admin, id)).progress.succeeded >= 10, 30_000, 'some deliveries');
    // The deadline passes (on the service's clock).
    clock.set(new Date(Date.parse(deadline) + 1));
    const jumpedAt = Date.now();
    await completed(h, admin, id, 60_000);
    const n = await notification(h, admin, id);
    const accepted = (await sandbox.stats('twilio')).accepted + (await sandbox.stats('sns')).accepted;
    expect(n.progress.succeeded).toBe(accepted);
    expect(n.progress.succeeded + n.progress.expired).toBe(10_000);
    expect(n.progress.expired).toBeGreaterThan(9_000);
    // Requests already on the wire when the deadline passed may land (the sandbox answers after
    // 20 ms); none may start later. The sandbox stamps each accepted message with its answer time.
    const late = [...(await sandbox.accepted('twilio', { since: jumpedAt + 100, limit: 10_000 })).messages, ...(await sandbox.accepted('sns', { since: jumpedAt + 100, limit: 10_000 })).messages];
    expect(late).toEqual([]);
    const expiredEvents = await h.app.eventStore.readAll({ after: 0, maxCount: 1_000_000, tenantId: 'late', types: ['DeliveryExpired'] });
    expect(expiredEvents.flatMap((e) => (e.data as any).deliveries).length).toBe(n.progress.expired);
    // The count operators page on moves with it.
    const metrics = await (await fetch(`${h.app.ops!.url}/metrics`)).text();
    expect(metrics).toContain(`notify_deliveries_expired_total{channel="sms",tenant="late"} ${n.progress.expired}`);
  }, 120_000);
});

describe('opt-out and consent end during a send', () => {
  let h: Harness;
  let admin: string;

  beforeAll(async () => {
    const slow = { ...defaultDeliveryConfig.policies.twilio!, ratePerSecond: 25 };
    h = await startHarness({ delivery: { policies: { ...defaultDeliveryConfig.policies, twilio: slow, sns: { ...slow } } } });
    admin = await registerTenant(h, 'optout');
    await h.ok(admin, `mutation { createGroup(input: { groupId: "g", name: "G" }) { groupId } }`);
    await seedUsers(h.app, { tenantId: 'optout', count: 400, groupIds: ['g'], devices: (i) => [{ kind: 'sms', address: addressOf('sms', i) }] });
    await h.app.settle();
  }, 60_000);
  afterAll(() => h.stop());

  it('sends nothing more to a user once the opt-out or the consent change has been accepted', async () => {
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { groupId: "g", text: "slow send" }) { notification { notificationId } } }`);
    const id = sent.sendNotification.notification.notificationId;
    await until(async () => (await notification(h, admin, id)).progress.succeeded >= 20, 30_000, 'the send to be under way');
    const sandboxCount = (i: number) => h.app.sandbox!.instance('twilio').count({ address: addressOf('sms', i) }) + h.app.sandbox!.instance('sns').count({ address: addressOf('sms', i) });
    // Two users not sent to yet: one opts out, the other's consent period is cut short.
    const waiting = Array.from({ length: 400 }, (_, i) => i).filter((i) => sandboxCount(i) === 0);
    const [optOut, ended] = [waiting.at(-1)!, waiting.at(-2)!];
    await h.ok(admin, `mutation { updateUser(input: { userId: "u${optOut}", optIn: false }) { userId } }`);
    await h.ok(admin, `mutation { updateUser(input: { userId: "u${ended}", consent: { start: "2026-01-01T00:00:00Z", end: "2026-01-02T00:00:00Z" } }) { userId } }`);
    const before = [sandboxCount(optOut), sandboxCount(ended)];
    await completed(h, admin, id, 60_000);
    expect([sandboxCount(optOut), sandboxCount(ended)]).toEqual(before);
    expect(before).toEqual([0, 0]);
    const n = await notification(h, admin, id);
    expect(n.progress.failed).toBe(2);
    expect(n.progress.succeeded).toBe(398);
    const timeline = await h.ok<any>(admin, `{ timeline(userId: "u${optOut}") { nodes { type status steps { step reason } } } }`);
    const delivery = timeline.timeline.nodes.find((e: any) => e.type === 'Delivery');
    expect(delivery.status).toBe('failed');
    expect(delivery.steps.at(-1)).toEqual({ step: 'failed', reason: 'opted-out' });
  }, 90_000);
});
