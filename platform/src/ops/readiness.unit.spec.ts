import { describe, expect, it } from 'vitest';
import { Health } from '../health';
import { checkReadiness, scrubReason } from './readiness';

describe('readiness', () => {
  const ok = { name: 'event-store', check: async () => 1 };

  it('is ready when every check answers and every component is healthy', async () => {
    const r = await checkReadiness([ok], new Health().report(), false, 100);
    expect(r.ready).toBe(true);
    expect(r.checks['event-store']).toMatchObject({ ok: true, reason: null });
  });

  it('is not ready when a dependency fails or does not answer in time, saying which', async () => {
    const failing = { name: 'bus', check: () => Promise.reject(new Error('connect ECONNREFUSED')) };
    const hanging = { name: 'read-store', check: () => new Promise(() => undefined) };
    const r = await checkReadiness([ok, failing, hanging], new Health().report(), false, 50);
    expect(r.ready).toBe(false);
    expect(r.checks['bus']).toMatchObject({ ok: false, reason: 'connect ECONNREFUSED' });
    expect(r.checks['read-store']).toMatchObject({ ok: false, reason: 'no answer within 50 ms' });
    expect(r.checks['event-store']!.ok).toBe(true);
  });

  it('is not ready while a component restarts, nor while draining', async () => {
    const health = new Health();
    const planner = health.register('planner');
    planner.failing(new Error('subscription lost'));
    expect((await checkReadiness([ok], health.report(), false, 100)).ready).toBe(false);
    planner.ok();
    expect((await checkReadiness([ok], health.report(), false, 100)).ready).toBe(true);
    const draining = await checkReadiness([ok], health.report(), true, 100);
    expect(draining).toMatchObject({ ready: false, draining: true });
  });

  it('never repeats credentials from a connection string', () => {
    expect(scrubReason(new Error('cannot reach postgres://notify:s3cret@db:5432/notify'))).toBe('cannot reach postgres://***@db:5432/notify');
    expect(scrubReason('mongodb+srv://user:pw@cluster0/x down')).toBe('mongodb+srv://***@cluster0/x down');
  });
});
