import { badInput } from '../errors';
import { requireString } from './text';

const ENTITY_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
/** Owners the service uses itself: the operator, the platform's provider defaults, its own events. */
const RESERVED_TENANT_IDS = ['operator', 'platform', 'system'];
const TENANT_ID = /^[a-z0-9][a-z0-9-]{2,39}$/;
export const MAX_USER_IDS = 1000;

/** Ids of users, groups and devices. They are stored in clear, so they must not be personal data. */
export const parseEntityId = (field: string, s: unknown): string => {
  const id = requireString(field, s);
  if (id.includes('@')) throw badInput(field, `"${id.slice(0, 70)}" looks like an email; ids are stored in clear, so use an opaque id`);
  if (!ENTITY_ID.test(id)) {
    throw badInput(field, `"${id.slice(0, 70)}" is not a valid id: 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit`);
  }
  return id;
};

export const parseTenantId = (field: string, s: unknown): string => {
  const id = requireString(field, s);
  if (!TENANT_ID.test(id)) throw badInput(field, `"${id.slice(0, 50)}" is not a valid tenant id: 3 to 40 lower-case letters, digits or '-'`);
  if (RESERVED_TENANT_IDS.includes(id)) throw badInput(field, `"${id}" is reserved`);
  return id;
};

export const parseUserIds = (field: string, list: unknown): string[] => {
  if (!Array.isArray(list)) throw badInput(field, 'expected a list of user ids');
  if (list.length === 0) throw badInput(field, 'give at least one user id');
  if (list.length > MAX_USER_IDS) throw badInput(field, `${list.length} user ids, the limit is ${MAX_USER_IDS}`);
  return [...new Set(list.map((id, i) => parseEntityId(`${field}[${i}]`, id)))];
};

/** Groups one user may belong to. */
export const MAX_GROUPS = 100;

/** A user's group ids: unique, at most MAX_GROUPS. */
export const parseGroupIds = (field: string, list: unknown): string[] => {
  if (!Array.isArray(list)) throw badInput(field, 'expected a list of group ids');
  const ids = [...new Set(list.map((g, i) => parseEntityId(`${field}[${i}]`, g)))];
  if (ids.length > MAX_GROUPS) throw badInput(field, `${ids.length} groups, the limit is ${MAX_GROUPS}`);
  return ids;
};
