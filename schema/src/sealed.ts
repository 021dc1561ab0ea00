import type { SealContext } from '#platform/crypto/personal-data';
import type { AnyEvent, DeviceKind } from './events';

/**
 * Where sealed values live, and what each is sealed for. The context is authenticated with the
 * ciphertext, so a value moved to another field, or to another device, does not open there.
 */
export const sealContexts = {
  /** A user's name. */
  userName: 'name' as SealContext,
  /** A device's address (push token, email, phone), bound to the device id and its kind. */
  deviceAddress: (device: Readonly<{ deviceId: string; kind: DeviceKind }>): SealContext => `device:${device.deviceId}:${device.kind}`,
  /** An integration's credentials, sealed with its owner's key. */
  integrationCredentials: 'integration-credentials' as SealContext,
  /** A webhook endpoint's signing secret, sealed with the tenant's key. */
  webhookSecret: 'webhook-secret' as SealContext,
} as const;

/** Personal data of the user named in the event (`userId`), or a secret of the tenant. */
export type SealedField = Readonly<{
  /** JSON path inside `data`; `[]` walks every element of an array. */
  path: readonly string[];
  /** The context it was sealed for, from the object that holds it (a device for an address). */
  context: (holder: Readonly<Record<string, unknown>>) => SealContext;
  /** `personal`: opened with the user's key in a replay; `secret`: never opened, shown as [secret]. */
  kind: 'personal' | 'secret';
}>;

const name: SealedField = { path: ['name'], context: () => sealContexts.userName, kind: 'personal' };
const address = (prefix: readonly string[]): SealedField => ({
  path: [...prefix, 'address'],
  context: (device) => sealContexts.deviceAddress({ deviceId: String(device['deviceId']), kind: device['kind'] as DeviceKind }),
  kind: 'personal',
});

/**
 * Every field of every event type that holds a sealed value. Readers open these and only these:
 * a string elsewhere (an id a user chose, say `pd1.x`) is data, whatever it begins with. A new
 * event type with sealed data must be added here (a test checks the catalogue's user events).
 */
export const SEALED_FIELDS: Readonly<Partial<Record<AnyEvent['type'], readonly SealedField[]>>> = {
  UserRegistered: [name, address(['devices', '[]'])],
  UserRenamed: [name],
  DeviceAdded: [address(['device'])],
  DeviceChanged: [address(['device'])],
  ProviderConfigured: [{ path: ['credentials'], context: () => sealContexts.integrationCredentials, kind: 'secret' }],
  WebhookEndpointRegistered: [{ path: ['secret'], context: () => sealContexts.webhookSecret, kind: 'secret' }],
};

/**
 * A copy of `data` with each sealed field of its event type replaced by `open(value, context,
 * kind)`: the fields listed in SEALED_FIELDS, nothing else.
 */
export const mapSealedFields = (
  type: string,
  data: unknown,
  open: (value: unknown, context: SealContext, kind: SealedField['kind']) => unknown,
): unknown => {
  const fields = SEALED_FIELDS[type as AnyEvent['type']];
  if (!fields || data === null || typeof data !== 'object') return data;
  let out: unknown = data;
  for (const field of fields) out = mapAt(out, field.path, (value, holder) => open(value, field.context(holder), field.kind));
  return out;
};

const mapAt = (value: unknown, path: readonly string[], fn: (value: unknown, holder: Readonly<Record<string, unknown>>) => unknown): unknown => {
  const [step, ...rest] = path;
  if (step === undefined) return value;
  if (step === '[]') return Array.isArray(value) ? value.map((v) => mapAt(v, rest, fn)) : value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const holder = value as Record<string, unknown>;
  if (!(step in holder)) return value;
  return { ...holder, [step]: rest.length === 0 ? fn(holder[step], holder) : mapAt(holder[step], rest, fn) };
};

/** Whether an event type carries personal data of its user (for replays that need the user's key). */
export const hasPersonalData = (type: string): boolean => (SEALED_FIELDS[type as AnyEvent['type']] ?? []).some((f) => f.kind === 'personal');
