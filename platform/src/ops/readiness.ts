import type { HealthReport } from '../health';

/** One dependency a process needs to do its work (a store, the bus), checked by calling it. */
export type ReadinessCheck = Readonly<{ name: string; check: () => Promise<unknown> }>;

export type CheckResult = Readonly<{ ok: boolean; ms: number; reason: string | null }>;

export type Readiness = Readonly<{
  ready: boolean;
  draining: boolean;
  checks: Readonly<Record<string, CheckResult>>;
  components: HealthReport['components'];
}>;

/** Connection strings in driver errors may carry credentials; a probe's answer never does. */
export const scrubReason = (e: unknown): string =>
  (e instanceof Error ? e.message : String(e))
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi, '$1***@')
    .slice(0, 200);

const withTimeout = <T>(work: Promise<T>, ms: number): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });

/**
 * Ready when every dependency answers within the timeout, every long-running component reports
 * healthy, and the process is not draining (a stopping process leaves the load balancer first).
 */
export const checkReadiness = async (
  checks: readonly ReadinessCheck[],
  health: HealthReport,
  draining: boolean,
  timeoutMs: number,
  now: () => number = () => performance.now(),
): Promise<Readiness> => {
  const results = await Promise.all(
    checks.map(async ({ name, check }): Promise<[string, CheckResult]> => {
      const start = now();
      try {
        await withTimeout(Promise.resolve().then(check), timeoutMs);
        return [name, { ok: true, ms: Math.round(now() - start), reason: null }];
      } catch (e) {
        return [name, { ok: false, ms: Math.round(now() - start), reason: scrubReason(e) }];
      }
    }),
  );
  const components = Object.fromEntries(Object.entries(health.components).map(([name, c]) => [name, c.reason ? { ...c, reason: scrubReason(c.reason) } : c]));
  return {
    ready: !draining && health.healthy && results.every(([, r]) => r.ok),
    draining,
    checks: Object.fromEntries(results),
    components,
  };
};
