import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { Erasure, Timeline, User, UserEvents, type ErasureResult, type TimelineResult, type UserResult } from '../generated';
import { Problem, useSession } from '../ui';

type Entry = TimelineResult['timeline']['nodes'][number];

const Pick = () => {
  const [id, setId] = useState('');
  return (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        location.hash = `#/users/${encodeURIComponent(id.trim())}`;
      }}
    >
      <label for="user-id">User id</label>
      <input id="user-id" value={id} required onInput={(e) => setId(e.currentTarget.value)} />
      <button type="submit">Show</button>
    </form>
  );
};

const readTimeline = async (request: ReturnType<typeof useSession>['api']['request'], userId: string): Promise<Entry[]> => {
  const out: Entry[] = [];
  let after: string | null = null;
  for (let i = 0; i < 10; i++) {
    const page: TimelineResult = await request(Timeline, { userId, after });
    out.push(...page.timeline.nodes);
    if (!page.timeline.pageInfo.hasNextPage) break;
    after = page.timeline.pageInfo.endCursor;
  }
  return out;
};

export const UserView = ({ userId }: { userId: string }) => {
  const { api } = useSession();
  const [user, setUser] = useState<UserResult['user'] | null>(null);
  const [entries, setEntries] = useState<readonly Entry[] | null>(null);
  const [erased, setErased] = useState<ErasureResult['erasure']>(null);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    if (!userId) return;
    setUser(null);
    setEntries(null);
    setErased(null);
    setError(null);
    let timer: ReturnType<typeof setTimeout> | null = null;
    const missing = (e: unknown) => {
      if (!(e instanceof ApiError && e.code === 'NOT_FOUND')) setError(e as ApiError);
    };
    const load = () => {
      // Erasure removes the user and their steps from the read models: only its mark remains.
      api.request(Erasure, { userId }).then((r) => setErased(r.erasure), setError);
      api.request(User, { userId }).then((r) => setUser(r.user), (e: unknown) => (setUser(null), missing(e)));
      readTimeline(api.request, userId).then(setEntries, (e: unknown) => (setEntries([]), missing(e)));
    };
    load();
    // Steps arrive as events; a burst of them reloads once.
    const stop = api.subscribe(UserEvents, { userId }, () => {
      timer ??= setTimeout(() => {
        timer = null;
        load();
      }, 250);
    }, setError);
    return () => {
      stop();
      if (timer) clearTimeout(timer);
    };
  }, [api, userId]);

  if (!userId) return <section><h1>One user</h1><Pick /></section>;
  const shredded = erased !== null;
  return (
    <section aria-labelledby="user-title">
      <h1 id="user-title">User {userId}</h1>
      <Pick />
      <Problem error={error} />
      {shredded ? (
        <p class="shredded" data-state="shredded" role="status">
          Shredded at {erased.shreddedAt}: this user's data key was destroyed. No personal data, and none of their steps, remains to show.
        </p>
      ) : user ? (
        <dl class="facts" data-state="active">
          <dt>name</dt><dd data-field="name">{user.name}</dd>
          <dt>opted in</dt><dd>{user.optIn ? 'yes' : 'no'}</dd>
          <dt>consent</dt><dd>{user.consent.start} to {user.consent.end}</dd>
          <dt>devices</dt>
          <dd>
            <ul>
              {user.devices.map((d) => (
                <li key={d.deviceId}>
                  {d.kind.toLowerCase()} <span data-field="address">{d.address}</span>
                </li>
              ))}
            </ul>
          </dd>
        </dl>
      ) : entries && entries.length === 0 && !user ? (
        <p class="empty">No such user.</p>
      ) : null}
      {entries && entries.length > 0 && (
        <ol class="timeline">
          {entries.map((e) => (
            <li key={`${e.position}:${e.deliveryId ?? ''}`} data-type={e.type}>
              <time dateTime={e.at}>{e.at.slice(11, 19)}</time> <strong>{e.type === 'UserDataShredded' ? 'shredded' : e.summary}</strong>
              {e.steps && (
                <ol class="steps">
                  {e.steps.map((s, i) => (
                    <li key={i} data-step={s.step}>
                      {s.at.slice(11, 23)} {s.step}
                      {s.provider ? ` via ${s.provider}` : ''}
                      {s.outcome ? ` (${s.outcome}${s.reason ? `: ${s.reason}` : ''})` : ''}
                      {s.latencyMs !== null ? ` ${s.latencyMs} ms` : ''}
                    </li>
                  ))}
                </ol>
              )}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
};
