import type { Ineligibility, SealedDevice } from '#schema/events';
import type { UserDocument } from '#projections/users/document';

export type { Ineligibility };

export type Verdict<T> = Readonly<{ ok: true; value: T }> | Readonly<{ ok: false; reason: Ineligibility }>;

const ok = <T>(value: T): Verdict<T> => ({ ok: true, value });
const refused = (reason: Ineligibility): Verdict<never> => ({ ok: false, reason });

/**
 * Opt-in and consent hold for every device of the user. `at` is an ISO-8601 instant: consent
 * periods are stored in that form, so they compare as strings.
 */
const userIneligibility = (user: UserDocument, at: string): Ineligibility | null =>
  !user.optIn ? 'opted-out' : at < user.consent.start || at >= user.consent.end ? 'outside-consent' : null;

/**
 * One device per address and kind: a user who registered the same phone twice (before
 * registration deduplicated, or through a race) gets one text, not two. Devices recorded
 * before fingerprints carry none and are each their own.
 */
const distinctAddresses = (devices: readonly SealedDevice[]): readonly SealedDevice[] => {
  const seen = new Set<string>();
  return devices.filter((d) => {
    if (d.fingerprint === undefined) return true;
    const key = `${d.kind}:${d.fingerprint}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
};

/** At fan-out: the devices to plan for a user, or why there are none. */
export const recipientDevices = (user: UserDocument | undefined, at: string): Verdict<readonly SealedDevice[]> => {
  if (!user) return refused('unknown-user');
  const reason = userIneligibility(user, at);
  if (reason) return refused(reason);
  const devices = distinctAddresses(user.devices.filter((d) => !d.invalid));
  return devices.length === 0 ? refused('no-valid-device') : ok(devices);
};

/**
 * At send time, again: opt-out, consent and devices may have changed since fan-out. The planner
 * plans only users whose document it read, so a document missing now was removed by erasure.
 */
export const deliverableDevice = (user: UserDocument | undefined, deviceId: string, at: string): Verdict<SealedDevice> => {
  if (!user) return refused('erased');
  const reason = userIneligibility(user, at);
  if (reason) return refused(reason);
  const device = user.devices.find((d) => d.deviceId === deviceId);
  return !device ? refused('device-removed') : device.invalid ? refused('device-invalid') : ok(device);
};

/** The last check at send time: shredding destroys the data key before it removes the document. */
export const withDataKey = <K>(key: K | null | undefined): Verdict<K> => (key ? ok(key) : refused('erased'));
