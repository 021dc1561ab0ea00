/**
 * Readiness of the long-running parts of a process (projection runners, the expiry service, the
 * key evictor, the planner, the live hub, the webhook outbox). Each registers a component and
 * reports whether it works; the process is ready when every component is. A component that
 * fails restarts itself with backoff and reports unhealthy meanwhile, so a probe (/readyz) can
 * take the process out of rotation, or restart it, instead of it silently doing nothing.
 */
export type ComponentStatus = Readonly<{
  healthy: boolean;
  /** ISO time of the last change. */
  since: string;
  /** Why it is unhealthy (an error's message), null when healthy. */
  reason: string | null;
  /** How many failures it reported (each one is followed by a restart). */
  failures: number;
}>;

export type HealthReport = Readonly<{ healthy: boolean; components: Readonly<Record<string, ComponentStatus>> }>;

/** One component's handle on the registry. */
export interface ComponentHealth {
  readonly name: string;
  /** Working (again). */
  ok(): void;
  /** Not working: it is restarting, or waiting for a store to come back. */
  failing(reason: unknown): void;
  readonly healthy: boolean;
  /** Leaves the registry (the component stopped on purpose). */
  remove(): void;
}

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 300);

export class Health {
  private readonly components = new Map<string, { status: ComponentStatus }>();
  private readonly listeners = new Set<(report: HealthReport) => void>();

  constructor(private readonly now: () => Date = () => new Date()) {}

  /** Registers a component, healthy until it says otherwise; a second one of the same name gets a suffix. */
  register(name: string): ComponentHealth {
    let unique = name;
    for (let n = 2; this.components.has(unique); n++) unique = `${name}#${n}`;
    const entry = { status: { healthy: true, since: this.now().toISOString(), reason: null, failures: 0 } as ComponentStatus };
    this.components.set(unique, entry);
    const set = (healthy: boolean, reason: string | null) => {
      const was = entry.status;
      if (healthy && was.healthy) return;
      entry.status = {
        healthy,
        reason,
        since: was.healthy === healthy ? was.since : this.now().toISOString(),
        failures: was.failures + (healthy ? 0 : 1),
      };
      this.changed();
    };
    return {
      name: unique,
      ok: () => set(true, null),
      failing: (reason) => set(false, reasonOf(reason)),
      get healthy() {
        return entry.status.healthy;
      },
      remove: () => {
        if (this.components.get(unique) === entry) {
          this.components.delete(unique);
          this.changed();
        }
      },
    };
  }

  /** Every registered component works. */
  healthy(): boolean {
    for (const c of this.components.values()) if (!c.status.healthy) return false;
    return true;
  }

  report(): HealthReport {
    return { healthy: this.healthy(), components: Object.fromEntries([...this.components].map(([name, c]) => [name, c.status])) };
  }

  /** Called on every change (metrics, logs). Returns the unsubscribe function. */
  onChange(listener: (report: HealthReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    if (this.listeners.size === 0) return;
    const report = this.report();
    for (const l of this.listeners) l(report);
  }
}

/**
 * The process's registry: components register here unless given another, so every long-running
 * part reports without wiring, and the composition root serves one readiness answer (/readyz).
 */
export const processHealth = new Health();

/** A component handle that reports nowhere: for parts started without a registry (tests, tools). */
export const untracked = (name: string): ComponentHealth => {
  let healthy = true;
  return {
    name,
    ok: () => void (healthy = true),
    failing: () => void (healthy = false),
    get healthy() {
      return healthy;
    },
    remove: () => undefined,
  };
};

/** Exponential backoff with full jitter: 0..min(max, base * 2^failures). */
export const backoffMs = (failures: number, baseMs = 100, maxMs = 30_000, random: () => number = Math.random): number =>
  Math.round(random() * Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, failures - 1), 20))) + Math.min(baseMs, maxMs);
