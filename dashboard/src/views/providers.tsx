import { useEffect, useState } from 'preact/hooks';
import type { ApiError } from '../api';
import { Breakers, ProviderHealth, Providers, RecentProviderCounts, Tenants, type ProvidersResult, type RecentProviderCountsResult } from '../generated';
import { Problem, useSession } from '../ui';

type Integration = ProvidersResult['providers'][number];

/** Per integration over the tenant's last sends: the share of its attempts that did not succeed. */
const errorRates = (r: RecentProviderCountsResult): Map<string, { attempts: number; rate: number }> => {
  const sums = new Map<string, { attempts: number; succeeded: number }>();
  for (const n of r.notifications.nodes) {
    for (const p of n.progress.byProvider) {
      const s = sums.get(p.key) ?? { attempts: 0, succeeded: 0 };
      sums.set(p.key, { attempts: s.attempts + p.attempts, succeeded: s.succeeded + p.succeeded });
    }
  }
  return new Map([...sums].map(([k, s]) => [k, { attempts: s.attempts, rate: s.attempts === 0 ? 0 : Math.max(0, s.attempts - s.succeeded) / s.attempts }]));
};

const STATE: Readonly<Record<string, string>> = { CLOSED: 'closed', HALF_OPEN: 'half-open', OPEN: 'open' };

export const ProvidersView = () => {
  const { api, me } = useSession();
  const [list, setList] = useState<readonly Integration[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [rates, setRates] = useState<ReturnType<typeof errorRates> | null>(null);
  const tenantId = me.kind === 'operator' ? 'platform' : null;
  useEffect(() => {
    const load = async () => {
      try {
        const own = (await api.request(Providers, { tenantId })).providers;
        if (tenantId === null) return setList(own);
        // The operator sees the platform defaults, then how every tenant's own integrations are doing.
        const tenants = (await api.request(Tenants, {})).tenants.nodes;
        const health = await Promise.all(tenants.map((t) => api.request(ProviderHealth, { tenantId: t.tenantId })));
        setList([...own, ...health.flatMap((h) => h.providerHealth.map((i) => ({ ...i, quotaPerSecond: null })))]);
      } catch (e) {
        setError(e as ApiError);
      }
    };
    // Operator keys read no tenant's sends: no rates for them.
    const loadRates = () => void (tenantId === null && api.request(RecentProviderCounts, {}).then((r) => setRates(errorRates(r)), setError));
    let later: ReturnType<typeof setTimeout> | null = null;
    load();
    loadRates();
    const stop = api.subscribe(
      Breakers,
      { tenantId: tenantId === null ? null : '*' },
      ({ providerBreakers: c }) => {
        // The attempts behind a change reach the read model a moment after it.
        later ??= setTimeout(() => {
          later = null;
          loadRates();
        }, 500);
        if (c.name === '') return void load();
        setList((l) => l && l.map((i) => (i.owner === c.owner && i.name === c.name ? { ...i, breaker: c.breaker, lastError: c.lastError ?? i.lastError } : i)));
      },
      setError,
    );
    return () => {
      stop();
      if (later) clearTimeout(later);
    };
  }, [api, tenantId]);
  return (
    <section aria-labelledby="providers-title">
      <h1 id="providers-title">Providers</h1>
      <p class="hint">{tenantId ? "The platform defaults, then every tenant's own integrations (breaker and last error only)." : "This tenant's integrations, then the platform defaults behind them."} Breakers update live.</p>
      <Problem error={error} />
      {list && (
        <table class="providers">
          <thead>
            <tr>
              <th scope="col">owner</th>
              <th scope="col">integration</th>
              <th scope="col">vendor</th>
              <th scope="col">channel</th>
              <th scope="col">priority</th>
              <th scope="col">quota/s</th>
              <th scope="col">breaker</th>
              <th scope="col">error rate (last 20 sends)</th>
              <th scope="col">last error</th>
            </tr>
          </thead>
          <tbody>
            {list.map((i) => {
              const state = i.breaker?.state ?? 'CLOSED';
              return (
                <tr key={`${i.owner}/${i.name}`} data-integration={i.name} data-owner={i.owner}>
                  <td>{i.owner}</td>
                  <th scope="row">{i.name}</th>
                  <td>{i.vendor.toLowerCase()}</td>
                  <td>{i.channel.toLowerCase()}</td>
                  <td>{i.priority}</td>
                  <td>{i.quotaPerSecond ?? '—'}</td>
                  <td>
                    <span class={`breaker ${STATE[state]}`} data-state={state} title={i.breaker?.reason ?? 'no change reported yet'}>
                      {STATE[state]}
                    </span>
                    {i.credentialsRejected ? <span class="breaker open"> credentials rejected ({i.credentialsRejected})</span> : null}
                  </td>
                  <td data-field="error-rate">
                    {(() => {
                      const r = i.owner === me.tenantId || i.owner === 'platform' ? rates?.get(i.name) : undefined;
                      return r ? `${(100 * r.rate).toFixed(1)} % of ${r.attempts} attempts` : '—';
                    })()}
                  </td>
                  <td>{i.lastError ? `${i.lastError.code} at ${i.lastError.at.slice(11, 19)}` : '—'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
};
