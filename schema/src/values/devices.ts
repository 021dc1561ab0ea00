import { badInput } from '../errors';
import { DEVICE_KINDS, type DeviceKind } from '../events';
import { requireString } from './text';

export const parseDeviceKind = (field: string, s: unknown): DeviceKind => {
  const kind = requireString(field, s).trim().toLowerCase();
  if (!(DEVICE_KINDS as readonly string[]).includes(kind)) {
    throw badInput(field, `unknown device kind "${String(s).slice(0, 30)}"; use one of ${DEVICE_KINDS.join(', ')}`);
  }
  return kind as DeviceKind;
};

export const parseEmail = (field: string, s: unknown): string => {
  const email = requireString(field, s).trim();
  const invalid = (why: string) => badInput(field, `not a valid email address: ${why}`);
  if (email.length > 254) throw invalid(`${email.length} characters, the limit is 254`);
  if (/[\s\u0000-\u001f\u007f]/.test(email)) throw invalid('contains spaces or control characters');
  const at = email.split('@');
  if (at.length !== 2) throw invalid('needs exactly one @');
  const [local, domain] = at as [string, string];
  if (local.length < 1 || local.length > 64) throw invalid('the part before @ must have 1 to 64 characters');
  if (!/^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+$/.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    throw invalid('the part before @ has characters an address cannot have');
  }
  const labels = domain.split('.');
  if (labels.length < 2 || labels.some((l) => !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l))) {
    throw invalid(`"${domain.slice(0, 60)}" is not a domain name like example.com`);
  }
  return `${local}@${domain.toLowerCase()}`;
};

export const parsePhoneE164 = (field: string, s: unknown): string => {
  const phone = requireString(field, s).trim();
  if (!/^\+[1-9]\d{6,14}$/.test(phone)) {
    throw badInput(field, `"${phone.slice(0, 30)}" is not an E.164 phone number: '+', country code and number, 8 to 15 digits, no spaces (e.g. +821012345678)`);
  }
  return phone;
};

export const parseDeviceToken = (field: string, kind: 'ios' | 'android', s: unknown): string => {
  const token = requireString(field, s).trim();
  if (kind === 'ios') {
    if (!/^[0-9a-fA-F]{64,200}$/.test(token)) {
      throw badInput(field, `not an APNs device token: expected 64 to 200 hexadecimal characters, got ${token.length} characters`);
    }
    return token.toLowerCase();
  }
  if (!/^[A-Za-z0-9_:.-]{32,4096}$/.test(token)) {
    throw badInput(field, `not an FCM registration token: expected 32 to 4096 characters of letters, digits, '_', ':', '.', '-', got ${token.length} characters`);
  }
  return token;
};

export const parseDeviceAddress = (field: string, kind: DeviceKind, s: unknown): string => {
  switch (kind) {
    case 'ios':
    case 'android':
      return parseDeviceToken(field, kind, s);
    case 'email':
      return parseEmail(field, s);
    case 'sms':
      return parsePhoneE164(field, s);
    default: {
      const never: never = kind;
      throw badInput(field, `unknown device kind ${String(never)}`);
    }
  }
};

/** Devices one user may have; checked here for input and by the user decider for additions. */
export const MAX_DEVICES = 20;

export type DeviceInput = Readonly<{ kind: unknown; address: unknown }>;

/** A user's devices as given: at least one, at most MAX_DEVICES, each kind and address valid. */
export const parseDevices = (field: string, devices: unknown): { kind: DeviceKind; address: string }[] => {
  if (!Array.isArray(devices) || devices.length === 0) throw badInput(field, 'a user needs at least one device');
  if (devices.length > MAX_DEVICES) throw badInput(field, `${devices.length} devices, the limit is ${MAX_DEVICES}`);
  return (devices as DeviceInput[]).map((d, i) => {
    const kind = parseDeviceKind(`${field}[${i}].kind`, d?.kind);
    return { kind, address: parseDeviceAddress(`${field}[${i}].address`, kind, d?.address) };
  });
};

/**
 * The form of an address that decides whether two devices are the same recipient: parsed
 * addresses are canonical already (E.164 numbers, lower-case APNs tokens and email domains);
 * an email's local part is compared without case too, as mail systems treat it.
 */
export const normalizedAddress = (kind: DeviceKind, address: string): string => `${kind}\0${kind === 'email' ? address.toLowerCase() : address}`;
