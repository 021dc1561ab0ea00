import { badInput } from '../errors';

const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

export const requireString = (field: string, s: unknown): string => {
  if (typeof s !== 'string') throw badInput(field, `expected a string, got ${s === null ? 'null' : typeof s}`);
  return s;
};

export const NOTIFICATION_TEXT_MAX_BYTES = 1500;

/** Counted in bytes of UTF-8, as providers count them: 500 Korean characters are 1500 bytes. */
export const parseNotificationText = (field: string, s: unknown): string => {
  const text = requireString(field, s);
  if (text.trim().length === 0) throw badInput(field, 'must not be empty');
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > NOTIFICATION_TEXT_MAX_BYTES) {
    throw badInput(field, `${bytes} bytes in UTF-8, the limit is ${NOTIFICATION_TEXT_MAX_BYTES} bytes`);
  }
  return text;
};

const boundedName = (max: number) => (field: string, s: unknown): string => {
  const name = requireString(field, s).trim();
  if (name.length === 0) throw badInput(field, 'must not be empty');
  if (name.length > max) throw badInput(field, `${name.length} characters, the limit is ${max}`);
  if (CONTROL.test(name)) throw badInput(field, 'must not contain control characters');
  return name;
};

export const parseUserName = boundedName(200);
export const parseGroupName = boundedName(200);
export const parseTenantName = boundedName(200);
export const parseApiKeyName = boundedName(100);

export const parseIdempotencyKey = (field: string, s: unknown): string => {
  const key = requireString(field, s);
  if (key.length < 1 || key.length > 200) throw badInput(field, `${key.length} characters; an idempotency key has 1 to 200`);
  if (!/^[\x21-\x7e]+$/.test(key)) throw badInput(field, 'use printable ASCII without spaces');
  return key;
};
