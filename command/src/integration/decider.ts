import type { ConfigureProvider, IntegrationCommand, RejectProviderCredentials, RemoveProvider } from '#schema/commands';
import type { IntegrationEvent, ProviderConfigured } from '#schema/events';
import { badInput, notFound } from '#schema/errors';
import { MAX_INTEGRATIONS } from '#schema/integrations';


export type Integration = ProviderConfigured['data'] & Readonly<{ credentialsRejected: string | null }>;

/** An owner's integrations by name. */
export type IntegrationsState = Readonly<{ integrations: ReadonlyMap<string, Integration> }>;

export const initialState = (): IntegrationsState => ({ integrations: new Map() });

/** JSON with sorted keys: stores may hand event data back with its keys in another order. */
const canonical = (v: unknown): string =>
  Array.isArray(v) ? `[${v.map(canonical).join(',')}]`
    : v && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
      : JSON.stringify(v);

/** Everything but the sealed form, which is fresh on every seal even for the same secret. */
const sameConfiguration = (a: Integration, b: ProviderConfigured['data']): boolean => {
  const { credentials: _a, credentialsRejected: _r, ...x } = a;
  const { credentials: _b, ...y } = b;
  return canonical(x) === canonical(y);
};

const configure = ({ data }: ConfigureProvider, state: IntegrationsState): IntegrationEvent[] => {
  const { spec } = data;
  const existing = state.integrations.get(spec.name);
  if (!existing && state.integrations.size >= MAX_INTEGRATIONS) {
    throw badInput('name', `${data.owner} has ${state.integrations.size} integrations, the limit is ${MAX_INTEGRATIONS}; remove one first`);
  }
  const configured: ProviderConfigured['data'] = {
    owner: data.owner,
    name: spec.name,
    vendor: spec.settings.vendor,
    channel: spec.channel,
    priority: spec.priority,
    settings: spec.settings,
    quotaPerSecond: spec.quotaPerSecond,
    endpoint: spec.endpoint,
    ca: spec.ca,
    credentials: data.credentials,
    fingerprint: data.fingerprint,
    hint: data.hint,
  };
  // The same configuration again (same credential fingerprint) changes nothing, unless the
  // credentials were rejected since: configuring them again is how an admin says they work now.
  if (existing && existing.credentialsRejected === null && sameConfiguration(existing, configured)) return [];
  return [{ type: 'ProviderConfigured', data: configured }];
};

const remove = ({ data }: RemoveProvider, state: IntegrationsState): IntegrationEvent[] => {
  if (!state.integrations.has(data.name)) throw notFound(`provider integration ${data.name}`);
  return [{ type: 'ProviderRemoved', data: { owner: data.owner, name: data.name } }];
};

const reject = ({ data }: RejectProviderCredentials, state: IntegrationsState): IntegrationEvent[] => {
  const current = state.integrations.get(data.name);
  if (!current || current.fingerprint !== data.fingerprint || current.credentialsRejected !== null) return [];
  return [{ type: 'ProviderCredentialsRejected', data: { owner: data.owner, name: data.name, fingerprint: data.fingerprint, code: data.code } }];
};

export const decide = (command: IntegrationCommand, state: IntegrationsState): IntegrationEvent[] => {
  switch (command.type) {
    case 'ConfigureProvider':
      return configure(command, state);
    case 'RemoveProvider':
      return remove(command, state);
    case 'RejectProviderCredentials':
      return reject(command, state);
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
};

export const evolve = (state: IntegrationsState, event: IntegrationEvent): IntegrationsState => {
  const integrations = new Map(state.integrations);
  switch (event.type) {
    case 'ProviderConfigured':
      integrations.set(event.data.name, { ...event.data, credentialsRejected: null });
      return { integrations };
    case 'ProviderRemoved':
      integrations.delete(event.data.name);
      return { integrations };
    case 'ProviderCredentialsRejected': {
      const current = integrations.get(event.data.name);
      if (!current || current.fingerprint !== event.data.fingerprint) return state;
      integrations.set(event.data.name, { ...current, credentialsRejected: event.data.code });
      return { integrations };
    }
    default: {
      const never: never = event;
      return never;
    }
  }
};

export const integrationDecider = { decide, evolve, initialState };
