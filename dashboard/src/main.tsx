import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, createApi, sameOrigin, session } from './api';
import { Me } from './generated';
import { Problem, SessionContext, type Session } from './ui';
import { SendsView } from './views/sends';
import { SendView } from './views/send';
import { UserView } from './views/user';
import { ProvidersView } from './views/providers';
import { ComplianceView } from './views/compliance';
import './style.css';

const useHash = (): string => {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
};

const signIn = async (key: string): Promise<Session> => {
  const api = createApi(key, sameOrigin());
  try {
    const { me } = await api.request(Me, {});
    return { api, me };
  } catch (e) {
    api.dispose();
    throw e;
  }
};

const SignIn = ({ onSession, error }: { onSession: (s: Session) => void; error: ApiError | null }) => {
  const [key, setKey] = useState('');
  const [problem, setProblem] = useState<ApiError | null>(error);
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin">
      <h1>notify dashboard</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          try {
            const s = await signIn(key.trim());
            session.set(key.trim());
            onSession(s);
          } catch (err) {
            setProblem(err instanceof ApiError ? err : new ApiError(String(err), 'ERROR'));
          } finally {
            setBusy(false);
          }
        }}
      >
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autocomplete="off" required value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <p class="hint">The key stays in this tab (session storage) and is sent only in request headers.</p>
      </form>
      <Problem error={problem} />
    </main>
  );
};

const route = (hash: string, s: Session) => {
  const [, view = 'sends', id] = hash.replace(/^#/, '').split('/').map(decodeURIComponent);
  if (s.me.kind === 'operator' && view !== 'providers') return <p>Operator keys read no tenant data: see <a href="#/providers">Providers</a> for the platform defaults.</p>;
  switch (view) {
    case 'sends':
      return id ? <SendView id={id} /> : <SendsView />;
    case 'users':
      return <UserView userId={id ?? ''} />;
    case 'providers':
      return <ProvidersView />;
    case 'compliance':
      return <ComplianceView />;
    default:
      return <p>No such page.</p>;
  }
};

const App = () => {
  const [current, setCurrent] = useState<Session | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [restoring, setRestoring] = useState(session.get() !== null);
  const hash = useHash();
  useEffect(() => {
    const key = session.get();
    if (!key) return;
    signIn(key)
      .then(setCurrent, (e: unknown) => {
        session.clear();
        setError(e instanceof ApiError ? e : null);
      })
      .finally(() => setRestoring(false));
  }, []);
  if (restoring) return <p>Signing in…</p>;
  if (!current) return <SignIn onSession={setCurrent} error={error} />;
  const view = hash.replace(/^#\/?/, '').split('/')[0] || 'sends';
  const link = (to: string, label: string) => (
    <a href={`#/${to}`} aria-current={view === to ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <SessionContext.Provider value={current}>
      <header>
        <span class="who">
          {current.me.kind === 'operator' ? 'operator' : current.me.tenantId} · key {current.me.keyId}
        </span>
        <nav aria-label="Views">
          {link('sends', 'Sends')}
          {link('users', 'Users')}
          {link('providers', 'Providers')}
          {link('compliance', 'Compliance')}
        </nav>
        <button
          type="button"
          onClick={() => {
            session.clear();
            current.api.dispose();
            setCurrent(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main>{route(hash, current)}</main>
    </SessionContext.Provider>
  );
};

render(<App />, document.getElementById('app')!);
