import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { NewSends, Send, SendProgress, Sends, type SendProgressResult, type SendsResult } from '../generated';
import { clock, countdown, done, projectedEnd, type Sample } from '../live';
import { Bar, Problem, useNow, useSession } from '../ui';

type Row = SendsResult['notifications']['nodes'][number];
type Live = SendProgressResult['notificationProgress'];

const PAGE = 20;
const CHANNELS = ['ios', 'android', 'email', 'sms'];

/** The read model follows the log within milliseconds: a send just announced may not be readable yet. */
const readSoon = async <T,>(read: () => Promise<T>): Promise<T> => {
  for (let i = 0; ; i++) {
    try {
      return await read();
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'NOT_FOUND') || i >= 20) throw e;
      await new Promise((r) => setTimeout(r, 100 * (i + 1)));
    }
  }
};

export const SendsView = () => {
  const { api } = useSession();
  const now = useNow();
  const [rows, setRows] = useState<readonly Row[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  /** Per send: the first and the latest terminal counts seen live, for the projected end. */
  const samples = useRef(new Map<string, { first: Sample; latest: Sample }>());

  useEffect(() => {
    const stops = new Map<string, () => void>();
    const sample = (id: string, ended: number) => {
      const at = Date.now();
      const known = samples.current.get(id);
      samples.current.set(id, { first: known?.first ?? { at, done: ended }, latest: { at, done: ended } });
    };
    const merge = (live: Live) => {
      sample(live.notificationId, done(live.progress));
      setRows((rs) => rs && rs.map((r) => (r.notificationId === live.notificationId ? { ...r, ...live, progress: { ...r.progress, ...live.progress } } : r)));
      if (live.status === 'COMPLETED') {
        stops.get(live.notificationId)?.();
        stops.delete(live.notificationId);
      }
    };
    const follow = (r: Row) => {
      if (r.status === 'COMPLETED' || stops.has(r.notificationId)) return;
      stops.set(r.notificationId, api.subscribe(SendProgress, { id: r.notificationId }, (p) => merge(p.notificationProgress), setError));
    };
    let cancelled = false;
    api.request(Sends, { first: PAGE }).then((r) => {
      if (cancelled) return;
      setRows(r.notifications.nodes);
      r.notifications.nodes.forEach(follow);
    }, setError);
    // New sends are announced by their first event; their progress then streams like the others'.
    const stopNew = api.subscribe(
      NewSends,
      {},
      (e) => {
        const id = e.deliveryEvents.notificationId;
        if (!id) return;
        readSoon(() => api.request(Send, { id })).then(({ notification: n }) => {
          if (cancelled) return;
          const row: Row = { ...n, estimate: n.estimate && { seconds: n.estimate.seconds, fitsDeadline: n.estimate.fitsDeadline } };
          setRows((rs) => (rs?.some((x) => x.notificationId === id) ? rs : [row, ...(rs ?? [])].slice(0, PAGE)));
          follow(row);
        }, setError);
      },
      setError,
    );
    return () => {
      cancelled = true;
      stopNew();
      for (const stop of stops.values()) stop();
    };
  }, [api]);

  return (
    <section aria-labelledby="sends-title">
      <h1 id="sends-title">Sends</h1>
      <Problem error={error} />
      {rows === null ? (
        <p>Loading…</p>
      ) : rows.length === 0 ? (
        <p class="empty">No notifications sent yet.</p>
      ) : (
        <ul class="sends">
          {rows.map((r) => {
            const s = samples.current.get(r.notificationId);
            const ended = done(r.progress);
            const end = projectedEnd(
              { status: r.status, requestedAt: r.requestedAt, completedAt: r.completedAt, estimateSeconds: r.estimate?.seconds ?? null, total: r.progress.total, done: ended },
              s?.first ?? null,
              s?.latest ?? null,
              now,
            );
            const deadline = Date.parse(r.deadline);
            const late = end !== null && end > deadline;
            const channels = [...r.progress.byChannel].sort((a, b) => CHANNELS.indexOf(a.key) - CHANNELS.indexOf(b.key));
            return (
              <li key={r.notificationId} class={`send${late ? ' late' : ''}`} data-id={r.notificationId} data-status={r.status}>
                <div class="send-head">
                  <a href={`#/sends/${encodeURIComponent(r.notificationId)}`} class="send-text">
                    {r.text}
                  </a>
                  <span class="status">{r.status.toLowerCase()}</span>
                </div>
                <div class="send-meta">
                  <span>requested {clock(Date.parse(r.requestedAt))} UTC</span>
                  <span class="deadline">
                    {r.status === 'COMPLETED' ? 'deadline' : deadline >= now ? `deadline in ${countdown(deadline - now)}` : `deadline passed ${countdown(now - deadline)} ago`} ({clock(deadline)})
                  </span>
                  <span class="projected">
                    {r.status === 'COMPLETED' ? 'ended' : 'projected end'} {end === null ? 'unknown' : clock(end)}
                    {late ? ' — past the deadline' : ''}
                  </span>
                  <span>
                    <span class="total">{ended}</span>/{r.progress.total} deliveries · {r.progress.reachedUsers ?? 0} {r.progress.reachedUsers === 1 ? 'user' : 'users'} reached
                  </span>
                </div>
                {channels.length === 0 ? <Bar label="all" counts={r.progress} /> : channels.map((c) => <Bar key={c.key} label={c.key} counts={c} />)}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
};
