import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { Api, ApiError } from './api';
import type { MeResult } from './generated';
import { shares, type Counts } from './live';

export type Session = Readonly<{ api: Api; me: MeResult['me'] }>;
export const SessionContext = createContext<Session | null>(null);

export const useSession = (): Session => {
  const s = useContext(SessionContext);
  if (!s) throw new Error('used outside a signed-in session');
  return s;
};

/** The time, ticking once a second: countdowns follow it. */
export const useNow = (): number => {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(t);
  }, []);
  return now;
};

const LABELS: Readonly<Record<string, string>> = {
  UNAUTHENTICATED: 'This API key was not accepted: it is wrong, or it was revoked.',
  FORBIDDEN: 'This API key may not see this',
  NOT_FOUND: 'Not found',
  NETWORK: 'No connection',
};

export const Problem = ({ error }: { error: ApiError | null }) =>
  error ? (
    <p class="problem" role="alert">
      {error.code === 'UNAUTHENTICATED' ? LABELS['UNAUTHENTICATED'] : `${LABELS[error.code] ?? 'Error'}: ${error.message}`}
    </p>
  ) : null;

/** One channel's deliveries: succeeded, failed, expired, pending, side by side. */
export const Bar = ({ label, counts }: { label: string; counts: Counts }) => {
  const s = shares(counts);
  const ended = counts.succeeded + counts.failed + counts.expired;
  const percent = counts.total === 0 ? 0 : Math.round((100 * Math.min(ended, counts.total)) / counts.total);
  return (
    <div class="bar-row" data-channel={label}>
      <span class="bar-label">{label}</span>
      <div
        class="bar"
        role="progressbar"
        aria-label={`${label}: ${percent} % ended`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        data-percent={percent}
      >
        <span class="seg ok" style={{ width: `${s.succeeded}%` }} />
        <span class="seg failed" style={{ width: `${s.failed}%` }} />
        <span class="seg expired" style={{ width: `${s.expired}%` }} />
      </div>
      <span class="bar-figures">
        {counts.succeeded} ok · {counts.failed} failed · {counts.expired} expired · {Math.max(0, counts.total - ended)} pending
      </span>
    </div>
  );
};
