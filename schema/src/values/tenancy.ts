import { badInput } from '../errors';
import type { ConsentPeriod } from '../events';
import { isScope, SCOPES, type Scope } from '../scopes';

export const MIN_DEADLINE_MINUTES = 10;
export const MAX_DEADLINE_MINUTES = 30;

export const parseDeliveryDeadlineMinutes = (field: string, n: unknown): number => {
  if (typeof n !== 'number' || !Number.isInteger(n)) throw badInput(field, `expected a whole number of minutes, got ${String(n)}`);
  if (n < MIN_DEADLINE_MINUTES || n > MAX_DEADLINE_MINUTES) {
    throw badInput(field, `${n} is out of range; a delivery deadline must be between ${MIN_DEADLINE_MINUTES} and ${MAX_DEADLINE_MINUTES} minutes`);
  }
  return n;
};

/** Days a tenant's per-delivery steps stay in the read models (the log keeps them all). */
export const DEFAULT_HISTORY_DAYS = 90;
export const MIN_HISTORY_DAYS = 1;
export const MAX_HISTORY_DAYS = 3650;

export const parseDeliveryHistoryDays = (field: string, n: unknown): number => {
  if (typeof n !== 'number' || !Number.isInteger(n)) throw badInput(field, `expected a whole number of days, got ${String(n)}`);
  if (n < MIN_HISTORY_DAYS || n > MAX_HISTORY_DAYS) {
    throw badInput(field, `${n} is out of range; delivery history is kept between ${MIN_HISTORY_DAYS} and ${MAX_HISTORY_DAYS} days`);
  }
  return n;
};

const toDate = (field: string, v: unknown): Date => {
  const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw badInput(field, `"${String(v).slice(0, 40)}" is not a valid date-time (ISO 8601, e.g. 2027-01-01T00:00:00Z)`);
  return d;
};

export const parseConsentPeriod = (field: string, start: unknown, end: unknown): ConsentPeriod => {
  const s = toDate(`${field}.start`, start);
  const e = toDate(`${field}.end`, end);
  if (e.getTime() <= s.getTime()) {
    throw badInput(`${field}.end`, `${e.toISOString()} is not after ${field}.start ${s.toISOString()}; a consent period must end after it starts`);
  }
  return { start: s.toISOString(), end: e.toISOString() };
};

export const parseScopes = (field: string, list: unknown): Scope[] => {
  if (!Array.isArray(list) || list.length === 0) throw badInput(field, `give at least one scope of ${SCOPES.join(', ')}`);
  return [
    ...new Set(
      list.map((s, i) => {
        if (typeof s !== 'string' || !isScope(s)) throw badInput(`${field}[${i}]`, `unknown scope "${String(s)}"; use ${SCOPES.join(', ')}`);
        return s;
      }),
    ),
  ];
};
