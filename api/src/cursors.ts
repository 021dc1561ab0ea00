import { badInput } from '#schema/errors';

/**
 * The cursors this API issues wrap the read store's: base64url of `{l: list, t: tenant, c: store
 * cursor}`. A cursor of another list or tenant, or one never issued, is BAD_USER_INPUT before any
 * store sees it (the store's own check is the second line: its "invalid cursor" is mapped the
 * same way). Cursors are not secret: one forged to the right shape is only a position to page from.
 */
export type ListName = 'users' | 'groups' | 'notifications' | 'timeline' | 'tenants';

const MAX_LENGTH = 2048;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const SCALAR = (v: unknown) => v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

const notIssued = (list: ListName) => badInput('after', `not a cursor of ${list}: pass the endCursor of a previous page of the same list`);

const decode = (text: string): unknown => {
  if (!BASE64URL.test(text)) return null;
  try {
    return JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
};

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

export const issueCursor = (list: ListName, scope: string, next: string | null): string | null =>
  next === null ? null : Buffer.from(JSON.stringify({ l: list, t: scope, c: next })).toString('base64url');

/** The store's cursor inside an API cursor issued for this list and scope (tenant), its shape checked: `{id, f?, v?}` with a scalar v. */
export const storeCursor = (list: ListName, scope: string, after: string | null | undefined): string | null => {
  if (after == null) return null;
  if (after.length > MAX_LENGTH) throw notIssued(list);
  const outer = decode(after);
  if (!isObject(outer) || outer['l'] !== list || outer['t'] !== scope || typeof outer['c'] !== 'string' || Object.keys(outer).length !== 3) throw notIssued(list);
  const inner = outer['c'];
  const s = decode(inner);
  if (!isObject(s)) throw notIssued(list);
  const known = Object.keys(s).every((k) => k === 'id' || k === 'f' || k === 'v');
  if (!known || typeof s['id'] !== 'string' || ('f' in s && typeof s['f'] !== 'string') || ('v' in s && !SCALAR(s['v']))) throw notIssued(list);
  return inner;
};

/** Runs a read with a checked cursor; the store's own "invalid cursor" refusal is BAD_USER_INPUT too. */
export const withCursor = async <T>(list: ListName, read: () => Promise<T>): Promise<T> => {
  try {
    return await read();
  } catch (e) {
    if (e instanceof Error && /invalid cursor/i.test(e.message)) throw notIssued(list);
    throw e;
  }
};
