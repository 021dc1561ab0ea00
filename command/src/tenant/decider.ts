import type { ChangeDeliveryDeadline, ChangeDeliveryHistory, IssueApiKey, RegisterTenant, RevokeApiKey, TenantCommand } from '#schema/commands';
import type { TenantEvent } from '#schema/events';
import { conflict, notFound } from '#schema/errors';
import type { Scope } from '#schema/scopes';
import { DEFAULT_HISTORY_DAYS, parseDeliveryDeadlineMinutes, parseDeliveryHistoryDays, parseScopes, parseTenantName } from '#schema/values';

export const MAX_ACTIVE_KEYS = 100;

export type TenantKey = Readonly<{ name: string; scopes: readonly Scope[]; secretHash: string; revoked: boolean; issuedAt: string }>;

export type TenantState =
  | Readonly<{ status: 'Unregistered' }>
  | Readonly<{
      status: 'Registered';
      tenantId: string;
      name: string;
      deliveryDeadlineMinutes: number;
      deliveryHistoryDays: number;
      keys: ReadonlyMap<string, TenantKey>;
    }>;
type Registered = Extract<TenantState, { status: 'Registered' }>;

export const initialState = (): TenantState => ({ status: 'Unregistered' });

const registered = (state: TenantState, tenantId?: string): Registered => {
  if (state.status !== 'Registered') throw notFound(`tenant${tenantId ? ` ${tenantId}` : ''}`);
  return state;
};

const register = (command: RegisterTenant, state: TenantState): TenantEvent[] => {
  if (state.status === 'Registered') throw conflict(`tenant ${command.data.tenantId} is already registered`);
  const registered: TenantEvent = {
    type: 'TenantRegistered',
    data: {
      tenantId: command.data.tenantId,
      name: parseTenantName('name', command.data.name),
      deliveryDeadlineMinutes: parseDeliveryDeadlineMinutes('deliveryDeadlineMinutes', command.data.deliveryDeadlineMinutes),
    },
  };
  const admin = command.data.adminKey;
  if (!admin) return [registered];
  return [registered, ...issueKey(
    { type: 'IssueApiKey', data: { keyId: admin.keyId, name: 'admin', scopes: ['admin'], secretHash: admin.secretHash }, now: command.now },
    evolve(state, registered),
  )];
};

const changeDeadline = (command: ChangeDeliveryDeadline, state: TenantState): TenantEvent[] => {
  const tenant = registered(state);
  const minutes = parseDeliveryDeadlineMinutes('deliveryDeadlineMinutes', command.data.deliveryDeadlineMinutes);
  if (minutes === tenant.deliveryDeadlineMinutes) return [];
  return [{ type: 'DeliveryDeadlineChanged', data: { tenantId: tenant.tenantId, deliveryDeadlineMinutes: minutes } }];
};

const changeHistory = (command: ChangeDeliveryHistory, state: TenantState): TenantEvent[] => {
  const tenant = registered(state);
  const days = parseDeliveryHistoryDays('deliveryHistoryDays', command.data.deliveryHistoryDays);
  if (days === tenant.deliveryHistoryDays) return [];
  return [{ type: 'DeliveryHistoryChanged', data: { tenantId: tenant.tenantId, deliveryHistoryDays: days } }];
};

const issueKey = (command: IssueApiKey, state: TenantState): TenantEvent[] => {
  const tenant = registered(state);
  if (tenant.keys.has(command.data.keyId)) throw conflict(`API key ${command.data.keyId} already exists`);
  const active = [...tenant.keys.values()].filter((k) => !k.revoked).length;
  if (active >= MAX_ACTIVE_KEYS) throw conflict(`tenant ${tenant.tenantId} has ${active} active API keys, the limit is ${MAX_ACTIVE_KEYS}; revoke one first`);
  return [{
    type: 'ApiKeyIssued',
    data: {
      tenantId: tenant.tenantId,
      keyId: command.data.keyId,
      name: command.data.name,
      scopes: parseScopes('scopes', command.data.scopes),
      secretHash: command.data.secretHash,
      issuedAt: command.now.toISOString(),
    },
  }];
};

const revokeKey = (command: RevokeApiKey, state: TenantState): TenantEvent[] => {
  const tenant = registered(state);
  const key = tenant.keys.get(command.data.keyId);
  if (!key) throw notFound(`API key ${command.data.keyId}`);
  return key.revoked ? [] : [{ type: 'ApiKeyRevoked', data: { tenantId: tenant.tenantId, keyId: command.data.keyId } }];
};

export const decide = (command: TenantCommand, state: TenantState): TenantEvent[] => {
  switch (command.type) {
    case 'RegisterTenant':
      return register(command, state);
    case 'ChangeDeliveryDeadline':
      return changeDeadline(command, state);
    case 'ChangeDeliveryHistory':
      return changeHistory(command, state);
    case 'IssueApiKey':
      return issueKey(command, state);
    case 'RevokeApiKey':
      return revokeKey(command, state);
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
};

export const evolve = (state: TenantState, event: TenantEvent): TenantState => {
  switch (event.type) {
    case 'TenantRegistered':
      return { status: 'Registered', ...event.data, deliveryHistoryDays: DEFAULT_HISTORY_DAYS, keys: new Map() };
    case 'DeliveryDeadlineChanged':
      return state.status === 'Registered' ? { ...state, deliveryDeadlineMinutes: event.data.deliveryDeadlineMinutes } : state;
    case 'DeliveryHistoryChanged':
      return state.status === 'Registered' ? { ...state, deliveryHistoryDays: event.data.deliveryHistoryDays } : state;
    case 'ApiKeyIssued': {
      if (state.status !== 'Registered') return state;
      const { keyId, name, scopes, secretHash, issuedAt } = event.data;
      return { ...state, keys: new Map(state.keys).set(keyId, { name, scopes, secretHash, revoked: false, issuedAt }) };
    }
    case 'ApiKeyRevoked': {
      const key = state.status === 'Registered' ? state.keys.get(event.data.keyId) : undefined;
      if (state.status !== 'Registered' || !key) return state;
      return { ...state, keys: new Map(state.keys).set(event.data.keyId, { ...key, revoked: true }) };
    }
    default: {
      const never: never = event;
      return never;
    }
  }
};

export const tenantDecider = { decide, evolve, initialState };
