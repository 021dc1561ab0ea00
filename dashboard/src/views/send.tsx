import { useEffect, useState } from 'preact/hooks';
import type { ApiError } from '../api';
import { Send, SendProgress, type SendResult } from '../generated';
import { clock, countdown, done, ratePoints, type Sample } from '../live';
import { Bar, Problem, useNow, useSession } from '../ui';

type N = SendResult['notification'];
type Row = N['progress']['byProvider'][number];

const Counts = ({ title, rows, attempts }: { title: string; rows: readonly Row[]; attempts: boolean }) => (
  <table>
    <caption>{title}</caption>
    <thead>
      <tr>
        <th scope="col">{attempts ? 'provider' : 'channel'}</th>
        {!attempts && <th scope="col">total</th>}
        <th scope="col">succeeded</th>
        <th scope="col">failed</th>
        <th scope="col">expired</th>
        {attempts && <th scope="col">attempts</th>}
      </tr>
    </thead>
    <tbody>
      {rows.map((r) => (
        <tr key={r.key} data-key={r.key}>
          <th scope="row">{r.key}</th>
          {!attempts && <td>{r.total}</td>}
          <td>{r.succeeded}</td>
          <td>{r.failed}</td>
          <td>{r.expired}</td>
          {attempts && <td>{r.attempts}</td>}
        </tr>
      ))}
    </tbody>
  </table>
);

/** Deliveries per second seen live, against the channels' combined capacity (the quota admission planned with). */
const RateChart = ({ samples, quota }: { samples: readonly Sample[]; quota: number | null }) => {
  const points = ratePoints(samples);
  if (points.length < 2) return <p class="hint">The rate chart draws while the send runs (deliveries per second, from the live updates).</p>;
  const w = 600;
  const h = 160;
  const t0 = points[0]!.at;
  const span = Math.max(1, points.at(-1)!.at - t0);
  const top = Math.max(1, quota ?? 0, ...points.map((p) => p.perSecond)) * 1.1;
  const x = (at: number) => ((at - t0) / span) * w;
  const y = (v: number) => h - (v / top) * h;
  return (
    <figure>
      <svg viewBox={`0 0 ${w} ${h}`} class="chart" role="img" aria-label={`deliveries per second, peak ${Math.round(Math.max(...points.map((p) => p.perSecond)))}${quota ? `, quota ${quota}` : ''}`}>
        <polyline class="rate" points={points.map((p) => `${x(p.at).toFixed(1)},${y(p.perSecond).toFixed(1)}`).join(' ')} />
        {quota !== null && <line class="quota" x1={0} x2={w} y1={y(quota)} y2={y(quota)} />}
      </svg>
      <figcaption>Deliveries per second{quota !== null ? ` (dashed: the channels' capacity, ${quota}/s)` : ''}</figcaption>
    </figure>
  );
};

export const SendView = ({ id }: { id: string }) => {
  const { api } = useSession();
  const now = useNow();
  const [n, setN] = useState<N | null>(null);
  const [samples, setSamples] = useState<readonly Sample[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    let stop = () => {};
    api.request(Send, { id }).then(({ notification }) => {
      setN(notification);
      if (notification.status === 'COMPLETED') return;
      stop = api.subscribe(
        SendProgress,
        { id },
        ({ notificationProgress: p }) => {
          setN((old) => old && { ...old, ...p });
          setSamples((s) => [...s, { at: Date.now(), done: done(p.progress) }].slice(-600));
        },
        setError,
      );
    }, setError);
    return () => stop();
  }, [api, id]);

  if (!n) return <section><h1>Send</h1><Problem error={error} />{!error && <p>Loading…</p>}</section>;
  const p = n.progress;
  const attempts = p.byProvider.reduce((s, r) => s + r.attempts, 0);
  const atProviders = p.byProvider.reduce((s, r) => s + r.succeeded + r.failed, 0);
  const requested = Date.parse(n.requestedAt);
  const took = n.completedAt ? (Date.parse(n.completedAt) - requested) / 1_000 : null;
  const quota = n.estimate ? n.estimate.byChannel.reduce((s, c) => s + c.capacityPerSecond, 0) : null;
  return (
    <section aria-labelledby="send-title">
      <h1 id="send-title">Send {n.notificationId}</h1>
      <Problem error={error} />
      <p class="send-text">{n.text}</p>
      <dl class="facts">
        <dt>status</dt><dd data-field="status">{n.status.toLowerCase()}</dd>
        <dt>requested</dt><dd>{clock(requested)} UTC</dd>
        <dt>deadline</dt><dd>{clock(Date.parse(n.deadline))} UTC{n.status !== 'COMPLETED' ? ` (in ${countdown(Date.parse(n.deadline) - now)})` : ''}</dd>
        <dt>recipients</dt><dd>{p.recipients ?? '…'} users, {p.total} deliveries, {p.reachedUsers ?? 0} users reached{p.reachedUsersExact ? '' : ' (estimate)'}</dd>
        <dt>retries and failovers</dt><dd data-field="retries">{Math.max(0, attempts - atProviders)} attempts beyond one per delivery ({attempts} attempts in all)</dd>
        <dt>receipts</dt><dd>{p.delivered} delivered, {p.bounced} bounced</dd>
        <dt>possibly duplicated</dt><dd>{p.possiblyDuplicated}</dd>
        <dt>admission estimate</dt>
        <dd data-field="estimate">
          {n.estimate
            ? `${n.estimate.seconds.toFixed(1)} s for ${n.estimate.deliveries} deliveries (${n.estimate.ahead} ahead), ${n.estimate.fitsDeadline ? 'fits' : 'does not fit'} the ${n.estimate.deadlineSeconds} s deadline`
            : 'none recorded'}
        </dd>
        <dt>actual</dt>
        <dd data-field="actual">{took !== null ? `${took.toFixed(1)} s` : `running for ${countdown(now - requested)}`}</dd>
      </dl>
      {p.byChannel.map((c) => <Bar key={c.key} label={c.key} counts={c} />)}
      <Counts title="By channel" rows={p.byChannel} attempts={false} />
      <Counts title="By provider integration" rows={p.byProvider} attempts={true} />
      <RateChart samples={samples} quota={quota} />
    </section>
  );
};
