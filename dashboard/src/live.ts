/** Counts of one channel or one send, as the API reports them. */
export type Counts = Readonly<{ total: number; succeeded: number; failed: number; expired: number }>;

export const done = (c: Counts): number => c.succeeded + c.failed + c.expired;
export const pendingOf = (c: Counts): number => Math.max(0, c.total - done(c));

/** Shares of the bar, in percent, that add up to 100 (pending fills the rest). */
export const shares = (c: Counts): Readonly<{ succeeded: number; failed: number; expired: number; pending: number }> => {
  if (c.total === 0) return { succeeded: 0, failed: 0, expired: 0, pending: 100 };
  const pct = (n: number) => (100 * Math.min(n, c.total)) / c.total;
  const succeeded = pct(c.succeeded);
  const failed = Math.min(pct(c.failed), 100 - succeeded);
  const expired = Math.min(pct(c.expired), 100 - succeeded - failed);
  return { succeeded, failed, expired, pending: 100 - succeeded - failed - expired };
};

/** Terminal deliveries seen at a moment: what the delivery rate is measured from. */
export type Sample = Readonly<{ at: number; done: number }>;

/**
 * When the send will have ended: when it did; else at the rate measured between the first and
 * the latest snapshot seen live; else the admission estimate; null when nothing tells.
 */
export const projectedEnd = (
  n: Readonly<{ status: string; requestedAt: string; completedAt: string | null; estimateSeconds: number | null; total: number; done: number }>,
  first: Sample | null,
  latest: Sample | null,
  now: number,
): number | null => {
  if (n.status === 'COMPLETED') return n.completedAt ? Date.parse(n.completedAt) : null;
  if (first && latest && latest.at - first.at >= 1_000 && latest.done > first.done && n.total > 0) {
    const rate = (latest.done - first.done) / (latest.at - first.at);
    return now + Math.max(0, n.total - n.done) / rate;
  }
  // A running send does not end before now, whatever was estimated.
  return n.estimateSeconds === null ? null : Math.max(now, Date.parse(n.requestedAt) + n.estimateSeconds * 1_000);
};

/** "4 min 05 s", "12 s", "-1 min 30 s" past it. */
export const countdown = (ms: number): string => {
  const sign = ms < 0 ? '-' : '';
  const s = Math.floor(Math.abs(ms) / 1_000);
  const m = Math.floor(s / 60);
  return m > 0 ? `${sign}${m} min ${String(s % 60).padStart(2, '0')} s` : `${sign}${s} s`;
};

export const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 19);

/** Deliveries per second between consecutive samples, one point per whole second. */
export const ratePoints = (samples: readonly Sample[]): { at: number; perSecond: number }[] => {
  const out: { at: number; perSecond: number }[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    if (b.at <= a.at) continue;
    out.push({ at: b.at, perSecond: ((b.done - a.done) * 1_000) / (b.at - a.at) });
  }
  return out;
};

/** One audit entry as a CSV row: quoted, with a leading apostrophe where a spreadsheet would run a formula. */
export const csvRow = (cells: readonly (string | number | null)[]): string =>
  cells
    .map((c) => {
      let s = c === null ? '' : String(c);
      if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
      return /[",\n\r]/.test(s) || s !== String(c ?? '') ? `"${s.replace(/"/g, '""')}"` : s;
    })
    .join(',');
