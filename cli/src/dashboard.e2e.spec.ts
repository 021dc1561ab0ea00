/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { registerTenant, startHarness, type Harness } from './testing/harness';
import { addressOf, seedUsers } from './testing/seed';
import { until } from './testing/until';

/*
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the
 * whole service on the embedded default and the provider sandbox. Every page's screenshot is
 * saved into docs/dashboard/ for the README: the test keeps them current (DASHBOARD_SCREENSHOTS=0
 * skips that, for a run that must leave the clone unchanged).
 */

const root = path.resolve(__dirname, '../..');
const CHROMIUM = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find(
  (p): p is string => !!p && fs.existsSync(p),
);
// CI installs Chromium and sets DASHBOARD_BROWSER=required: there, a missing browser fails instead of skipping.
const REQUIRED = process.env['DASHBOARD_BROWSER'] === 'required';
if (!CHROMIUM && !REQUIRED) console.warn('dashboard browser tests skipped: no Chromium found (apt-get install -y chromium, or set CHROMIUM_PATH)');

describe.runIf(!CHROMIUM && REQUIRED)('the dashboard in a real browser', () => {
  it('needs a Chromium (DASHBOARD_BROWSER=required)', () => {
    expect.fail('no Chromium at CHROMIUM_PATH, /usr/bin/chromium, /usr/bin/chromium-browser or /usr/bin/google-chrome');
  });
});

const SCREENSHOTS = path.join(root, 'docs', 'dashboard');
const USERS = 120;

describe.skipIf(!CHROMIUM)('the dashboard in a real browser', () => {
  let h: Harness;
  let browser: Browser;
  let base: string;
  let adminA: string;
  let adminB: string;
  const contexts: BrowserContext[] = [];
  /** Every URL any page asked for: nothing may leave the service's origin. */
  const requested: string[] = [];

  const open = async (key: string | null, hash = ''): Promise<Page> => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    contexts.push(context);
    const page = await context.newPage();
    page.on('request', (r) => requested.push(r.url()));
    await page.goto(`${base}/dashboard/${hash}`);
    if (key !== null) {
      await page.getByLabel('API key').fill(key);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('navigation', { name: 'Views' }).waitFor({ timeout: 10_000 });
    }
    return page;
  };

  const shoot = async (page: Page, name: string) => {
    if (process.env['DASHBOARD_SCREENSHOTS'] === '0') return;
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  };

  /** axe-core in the page (through the debugging protocol, which the page's CSP does not govern): no serious or critical violation. */
  const accessible = async (page: Page) => {
    const source = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
    await page.evaluate(source);
    const violations = await page.evaluate(async () => {
      const axe = (globalThis as unknown as { axe: { run: (o: object) => Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> } }).axe;
      const r = await axe.run({ resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
    });
    expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
  };

  const send = async (key: string, input: string): Promise<string> =>
    (await h.ok<any>(key, `mutation { sendNotification(input: { ${input} }) { notification { notificationId } } }`)).sendNotification.notification.notificationId;

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-dashboard-'));
    execFileSync(process.execPath, [path.join(root, 'dashboard', 'build.mjs'), dir], { stdio: 'pipe' });
    // Slow enough quotas that a send of a few hundred deliveries takes seconds: its progress is seen moving.
    h = await startHarness({ dashboardDir: dir, env: { SANDBOX_LATENCY_MS: '5', PROVIDER_TWILIO_RATE: '30', PROVIDER_SNS_RATE: '30', PROVIDER_SENDGRID_RATE: '30', PROVIDER_SMTP_RATE: '30' } });
    base = h.url.replace(/\/graphql$/, '');
    adminA = await registerTenant(h, 'dash-a');
    adminB = await registerTenant(h, 'dash-b');
    await h.ok(adminA, `mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
    await seedUsers(h.app, { tenantId: 'dash-a', count: USERS, groupIds: ['all'], devices: (i) => [{ kind: 'sms', address: addressOf('sms', i) }, { kind: 'email', address: addressOf('email', i) }] });
    await h.app.settle();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
  }, 120_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await h?.stop();
  });

  it('is served with a strict Content-Security-Policy and runs no inline script', async () => {
    const res = await fetch(`${base}/dashboard/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect((await fetch(`${base}/dashboard/../../package.json`)).status).not.toBe(200);

    const page = await open(null);
    const ran = await page.evaluate(async () => {
      const s = document.createElement('script');
      s.textContent = 'window.inlineRan = true';
      document.body.append(s);
      await new Promise((r) => setTimeout(r, 100));
      return (window as unknown as { inlineRan?: boolean }).inlineRan === true;
    });
    expect(ran).toBe(false);
  });

  it('a wrong key shows a clear error and signs nobody in', async () => {
    const page = await open(null);
    await page.getByLabel('API key').fill('ntf_wrong_key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 10_000 }).toMatch(/not accepted/);
    expect(await page.getByRole('navigation', { name: 'Views' }).count()).toBe(0);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await accessible(page);
    await shoot(page, 'sign-in-wrong-key');
  });

  let sentId = '';
  it('a send made through the API appears and its bars reach 100 % live, without a reload; the counts match the notification query', async () => {
    const page = await open(adminA);
    await page.getByText('No notifications sent yet.').waitFor();
    // A reload would lose this marker; each bar's percentages are recorded as they change.
    await page.evaluate(() => {
      const w = window as unknown as { marker: number; seen: number[] };
      w.marker = 42;
      w.seen = [];
      new MutationObserver((records) => {
        for (const r of records) {
          const t = r.target as Element;
          if (r.type === 'attributes' && t.getAttribute?.('data-percent')) w.seen.push(Number(t.getAttribute('data-percent')));
          for (const n of r.addedNodes) if (n instanceof Element) n.querySelectorAll('[data-percent]').forEach((b) => w.seen.push(Number(b.getAttribute('data-percent'))));
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-percent'] });
    });
    sentId = await send(adminA, `groupId: "all", text: "Release <b>4.2</b> & notes"`);
    const row = page.locator(`li.send[data-id="${sentId}"]`);
    await row.waitFor({ timeout: 10_000 });
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 60_000 }).toBe('COMPLETED');
    const bars = row.locator('[role=progressbar]');
    await expect.poll(async () => (await bars.evaluateAll((bs) => bs.map((b) => b.getAttribute('data-percent')))).join(','), { timeout: 10_000 }).toBe('100,100');
    const seen = await page.evaluate(() => (window as unknown as { seen: number[] }).seen);
    expect(seen.some((p) => p < 100), `percentages seen: ${seen.join(',')}`).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { marker: number }).marker)).toBe(42);
    // The text is shown as text, markup and all.
    expect(await row.locator('.send-text').textContent()).toBe('Release <b>4.2</b> & notes');
    expect(await row.locator('b').count()).toBe(0);

    const q = (await h.ok<any>(adminA, `{ notification(notificationId: "${sentId}") { progress { total succeeded failed expired byChannel { key succeeded failed expired total } } } }`)).notification.progress;
    expect(q.total).toBe(USERS * 2);
    for (const c of q.byChannel) {
      const figures = await row.locator(`[data-channel="${c.key}"] .bar-figures`).textContent();
      expect(figures).toBe(`${c.succeeded} ok · ${c.failed} failed · ${c.expired} expired · ${c.total - c.succeeded - c.failed - c.expired} pending`);
    }
    expect(await row.locator('.total').textContent()).toBe(String(q.succeeded + q.failed + q.expired));
    await accessible(page);
    await shoot(page, 'sends');

    await page.locator(`a[href="#/sends/${sentId}"]`).click();
    await page.getByRole('heading', { name: `Send ${sentId}` }).waitFor();
    const byChannel = page.getByRole('table', { name: 'By channel' });
    for (const c of q.byChannel) expect(await byChannel.locator(`tr[data-key="${c.key}"] td`).first().textContent()).toBe(String(c.total));
    expect(await page.locator('[data-field=estimate]').textContent()).toMatch(/s for 240 deliveries/);
    expect(await page.locator('[data-field=actual]').textContent()).toMatch(/^\d+\.\d s$/);
    await accessible(page);
    await shoot(page, 'send');
  }, 120_000);

  it('a key of tenant B sees nothing of tenant A', async () => {
    expect(sentId).not.toBe('');
    const page = await open(adminB);
    await page.getByText('No notifications sent yet.').waitFor();
    await page.evaluate((id) => (location.hash = `#/sends/${id}`), sentId);
    await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 10_000 }).toMatch(/Not found/);
    await page.evaluate(() => (location.hash = '#/users/u1'));
    await page.getByText('No such user.').waitFor({ timeout: 10_000 });
    // Nor does A's next send reach B's live list.
    await page.evaluate(() => (location.hash = '#/sends'));
    await page.getByText('No notifications sent yet.').waitFor();
    const next = await send(adminA, `userIds: ["u1"], text: "Release notes, again"`);
    await until(async () => (await h.ok<any>(adminA, `{ notification(notificationId: "${next}") { status } }`)).notification.status === 'COMPLETED', 30_000, 'the send to complete');
    await new Promise((r) => setTimeout(r, 500));
    expect(await page.locator('li.send').count()).toBe(0);
    const text = await page.locator('body').textContent();
    expect(text).not.toContain('Release');
    expect(text).not.toContain('dash-a');
  });

  it('a provider outage in the sandbox turns its breaker red, then green again, live', async () => {
    const page = await open(adminA, '#/providers');
    const breaker = page.locator('tr[data-owner="platform"][data-integration="twilio"] .breaker');
    await breaker.waitFor();
    expect(await breaker.getAttribute('data-state')).toBe('CLOSED');
    await accessible(page);
    const twilio = h.app.sandbox!.instance('twilio');
    twilio.setFaults({ outage: true });
    try {
      // Traffic trips the breaker: a few texts, until the page shows it open.
      for (let i = 0; (await breaker.getAttribute('data-state')) !== 'OPEN'; i++) {
        if (i > 40) throw new Error(`breaker not shown open: ${await breaker.getAttribute('data-state')}`);
        await send(adminA, `userIds: ["u${i % USERS}", "u${(i + 1) % USERS}", "u${(i + 2) % USERS}"], text: "during the outage ${i}"`);
        await new Promise((r) => setTimeout(r, 300));
      }
      expect(await breaker.evaluate((b) => getComputedStyle(b).backgroundColor)).toBe('rgb(180, 35, 24)');
      await shoot(page, 'providers-outage');
    } finally {
      twilio.setFaults({ outage: false });
    }
    // Half-open after the reset time lets a probe through, which closes it.
    for (let i = 0; (await breaker.getAttribute('data-state')) !== 'CLOSED'; i++) {
      if (i > 60) throw new Error(`breaker not shown closed again: ${await breaker.getAttribute('data-state')}`);
      await send(adminA, `userIds: ["u${i % USERS}"], text: "after the outage ${i}"`);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(await breaker.evaluate((b) => getComputedStyle(b).backgroundColor)).toBe('rgb(26, 127, 55)');
    expect(await page.locator('tr[data-integration="twilio"] td').last().textContent()).not.toBe('—');
    // The attempts refused during the outage count in its recent error rate.
    await expect.poll(() => page.locator('tr[data-integration="twilio"] [data-field=error-rate]').textContent(), { timeout: 5_000 }).toMatch(/^(?!0\.0 %)\d+\.\d % of \d+ attempts$/);
    await shoot(page, 'providers');
  }, 90_000);

  it("the operator sees the platform defaults and every tenant's integrations, and no tenant data", async () => {
    const twilio = { accountSid: `AC${'c'.repeat(32)}`, authToken: 'd'.repeat(32), from: '+15005550007' };
    await h.ok(adminB, `mutation($in: ConfigureProviderInput!) { configureProvider(input: $in) { name } }`, { in: { name: 'b-sms', channel: 'SMS', twilio } });
    await h.app.settle();
    const page = await open(h.operatorKey, '#/providers');
    await page.locator('tr[data-owner="platform"][data-integration="twilio"]').waitFor();
    await page.locator('tr[data-owner="dash-b"][data-integration="b-sms"]').waitFor();
    expect(await page.locator('body').textContent()).not.toContain('+15005550007');
    await accessible(page);
    await shoot(page, 'providers-operator');
    await page.evaluate(() => (location.hash = '#/sends'));
    await page.getByText('Operator keys read no tenant data').waitFor();
  });

  it('a user erased with forgetUser shows as shredded, with no personal data left in the DOM', async () => {
    const name = '<img src=x id=injected>Zoë Erasable';
    const email = 'zoe.erasable@example.com';
    await h.ok(adminA, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: { userId: 'zoe', name, consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' }, devices: [{ kind: 'EMAIL', address: email }, { kind: 'SMS', address: '+821098765432' }] },
    });
    await h.app.settle();
    const id = await send(adminA, `userIds: ["zoe"], text: "hello Zoë"`);
    await until(async () => (await h.ok<any>(adminA, `{ notification(notificationId: "${id}") { status } }`)).notification.status === 'COMPLETED', 30_000, 'the send to complete');
    const page = await open(adminA, '#/users/zoe');
    await page.locator('[data-field=name]').waitFor();
    expect(await page.locator('[data-field=name]').textContent()).toBe(name);
    expect(await page.locator('#injected').count()).toBe(0);
    await expect.poll(() => page.locator('.timeline li[data-step=succeeded]').count(), { timeout: 10_000 }).toBe(2);
    await accessible(page);
    await shoot(page, 'user');

    await h.ok(adminA, `mutation { forgetUser(userId: "zoe") { shreddedAt } }`);
    await page.locator('[data-state=shredded]').waitFor({ timeout: 10_000 });
    await expect.poll(() => page.locator('.timeline li[data-step]').count(), { timeout: 10_000 }).toBe(0);
    const html = await page.content();
    for (const secret of ['Zoë Erasable', email, '+821098765432', '98765432']) expect(html).not.toContain(secret);
    await accessible(page);
    await shoot(page, 'user-shredded');
  }, 60_000);

  it('compliance: verifies the audit chain and exports the log as JSON Lines and CSV', async () => {
    const page = await open(adminA, '#/compliance');
    await page.getByRole('button', { name: 'Verify the audit chain' }).click();
    const verdict = page.locator('.verify');
    await verdict.waitFor({ timeout: 20_000 });
    expect(await verdict.getAttribute('data-ok')).toBe('true');
    expect(await verdict.textContent()).toMatch(/^Intact: \d+ events checked/);
    await accessible(page);
    await shoot(page, 'compliance');

    for (const [button, ext] of [['Export JSON Lines', 'jsonl'], ['Export CSV', 'csv']] as const) {
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.getByRole('button', { name: button }).click()]);
      expect(download.suggestedFilename()).toBe(`audit-dash-a.${ext}`);
      const text = fs.readFileSync((await download.path())!, 'utf8');
      const lines = text.trim().split('\n');
      if (ext === 'jsonl') {
        const entries = lines.map((l) => JSON.parse(l));
        expect(entries[0]).toMatchObject({ type: 'TenantRegistered' });
        expect(entries.some((e) => e.type === 'UserDataShredded')).toBe(true);
        expect(text).not.toContain('Zoë Erasable');
      } else {
        expect(lines[0]).toBe('position,at,streamName,revision,type,actor,requestId,prevHash,data');
        expect(lines.length).toBeGreaterThan(10);
      }
    }
  }, 90_000);

  it('a send projected past its deadline turns red, its countdown below zero', async () => {
    // Every SMS provider down: the texts wait for a provider while the deadline approaches.
    const sms = ['twilio', 'sns'].map((n) => h.app.sandbox!.instance(n));
    for (const s of sms) s.setFaults({ outage: true });
    try {
      const context = await browser.newContext({ viewport: { width: 1200, height: 600 } });
      contexts.push(context);
      const page = await context.newPage();
      await page.clock.install();
      await page.goto(`${base}/dashboard/`);
      await page.getByLabel('API key').fill(adminA);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const id = await send(adminA, `userIds: ["u3", "u4", "u5"], text: "Waiting for a provider"`);
      const row = page.locator(`li.send[data-id="${id}"]`);
      // Bounded by the machine, not the page: under CI's load the live list takes seconds.
      await row.waitFor({ timeout: 30_000 });
      await expect.poll(() => row.locator('[data-channel=email]').getAttribute('data-channel'), { timeout: 30_000 }).toBe('email');
      expect(await row.getAttribute('data-status')).not.toBe('COMPLETED');
      expect(await row.getAttribute('class')).not.toContain('late');
      expect(await row.locator('.deadline').textContent()).toMatch(/^deadline in 1[45] min/);
      // Sixteen minutes on in the page: the 15-minute deadline is behind it and the texts still pending.
      const { deadline } = (await h.ok<any>(adminA, `{ notification(notificationId: "${id}") { deadline } }`)).notification;
      await page.clock.setSystemTime(Date.parse(deadline) + 60_000);
      // The countdown follows the page's clock at its next tick.
      await expect.poll(() => row.locator('.deadline').textContent(), { timeout: 10_000 }).toMatch(/^deadline passed 1 min \d\d s ago/);
      expect(await row.getAttribute('class')).toContain('late');
      expect(await row.locator('.projected').textContent()).toMatch(/past the deadline$/);
      expect(await row.locator('.projected').evaluate((e) => getComputedStyle(e).color)).toBe('rgb(180, 35, 24)');
      await accessible(page);
      await shoot(page, 'sends-late');
    } finally {
      for (const s of sms) s.setFaults({ outage: false });
    }
  }, 60_000);

  it('asked nothing of any other origin', () => {
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((u) => !u.startsWith(base) && !u.startsWith('blob:') && !u.startsWith('data:'))).toEqual([]);
  });
});
