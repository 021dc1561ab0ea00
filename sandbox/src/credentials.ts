import crypto from 'node:crypto';
import type { CredentialInput, CredentialListing, SandboxKind } from './types';

/** A registered credential, checked and with its id; public keys parsed once. */
export type SandboxCredential =
  | Readonly<{ id: string; type: 'apnsToken'; keyId: string; teamId: string; publicKey: crypto.KeyObject }>
  | Readonly<{ id: string; type: 'fcmAccessToken'; accessToken: string }>
  | Readonly<{ id: string; type: 'fcmServiceAccount'; clientEmail: string; publicKey: crypto.KeyObject; projectId?: string }>
  | Readonly<{ id: string; type: 'sendgridApiKey'; apiKey: string }>
  | Readonly<{ id: string; type: 'twilioAuthToken'; accountSid: string; authToken: string }>
  | Readonly<{ id: string; type: 'twilioApiKey'; accountSid: string; apiKeySid: string; apiKeySecret: string; authToken?: string }>
  | Readonly<{ id: string; type: 'snsAccessKey'; accessKeyId: string; secretAccessKey: string; region?: string }>
  | Readonly<{ id: string; type: 'smtpLogin'; user: string; pass: string }>;

export type CredentialOf<T extends SandboxCredential['type']> = Extract<SandboxCredential, { type: T }>;

// Ids of secrets are hashes: a listing or a record must not leak the secret itself.
const hashOf = (secret: string) => crypto.createHash('sha256').update(secret).digest('hex').slice(0, 12);

export const credentialId = {
  apns: (teamId: string, keyId: string) => `apns:${teamId}.${keyId}`,
  fcmToken: (accessToken: string) => `fcm:token:${hashOf(accessToken)}`,
  fcmServiceAccount: (clientEmail: string) => `fcm:${clientEmail}`,
  sendgrid: (apiKey: string) => `sendgrid:${hashOf(apiKey)}`,
  twilio: (accountSid: string) => `twilio:${accountSid}`,
  twilioApiKey: (accountSid: string, apiKeySid: string) => `twilio:${accountSid}:${apiKeySid}`,
  sns: (accessKeyId: string) => `sns:${accessKeyId}`,
  smtp: (user: string) => `smtp:${user}`,
};

function text(o: Record<string, unknown>, key: string, optional = false): string {
  const v = o[key];
  if (v === undefined && optional) return '';
  if (typeof v !== 'string' || v === '') throw new TypeError(`credential: ${key} must be a non-empty string`);
  return v;
}

function publicKey(pem: string, want: 'ec' | 'rsa'): crypto.KeyObject {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey(pem);
  } catch {
    throw new TypeError('credential: publicKey must be a PEM public (or private) key');
  }
  if (key.asymmetricKeyType !== want) throw new TypeError(`credential: publicKey must be an ${want.toUpperCase()} key`);
  if (want === 'ec' && key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new TypeError('credential: publicKey must be on P-256');
  return key;
}

function only(o: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new TypeError(`credential: unknown field "${k}"`);
}

/** Checks a credential for an instance of `kind` (from code or the control endpoint) and gives it its id. */
export function parseCredential(kind: SandboxKind, input: CredentialInput | unknown): SandboxCredential {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new TypeError('credential must be an object');
  const o = input as Record<string, unknown>;
  switch (kind) {
    case 'apns': {
      only(o, ['keyId', 'teamId', 'publicKey']);
      const keyId = text(o, 'keyId');
      const teamId = text(o, 'teamId');
      return { id: credentialId.apns(teamId, keyId), type: 'apnsToken', keyId, teamId, publicKey: publicKey(text(o, 'publicKey'), 'ec') };
    }
    case 'fcm': {
      if ('accessToken' in o) {
        only(o, ['accessToken']);
        const accessToken = text(o, 'accessToken');
        return { id: credentialId.fcmToken(accessToken), type: 'fcmAccessToken', accessToken };
      }
      only(o, ['clientEmail', 'publicKey', 'projectId']);
      const clientEmail = text(o, 'clientEmail');
      const projectId = text(o, 'projectId', true);
      return {
        id: credentialId.fcmServiceAccount(clientEmail),
        type: 'fcmServiceAccount',
        clientEmail,
        publicKey: publicKey(text(o, 'publicKey'), 'rsa'),
        ...(projectId !== '' ? { projectId } : {}),
      };
    }
    case 'sendgrid': {
      only(o, ['apiKey']);
      const apiKey = text(o, 'apiKey');
      return { id: credentialId.sendgrid(apiKey), type: 'sendgridApiKey', apiKey };
    }
    case 'twilio': {
      const accountSid = text(o, 'accountSid');
      if ('apiKeySid' in o) {
        only(o, ['accountSid', 'apiKeySid', 'apiKeySecret', 'authToken']);
        const apiKeySid = text(o, 'apiKeySid');
        const authToken = text(o, 'authToken', true);
        return {
          id: credentialId.twilioApiKey(accountSid, apiKeySid),
          type: 'twilioApiKey',
          accountSid,
          apiKeySid,
          apiKeySecret: text(o, 'apiKeySecret'),
          ...(authToken !== '' ? { authToken } : {}),
        };
      }
      only(o, ['accountSid', 'authToken']);
      return { id: credentialId.twilio(accountSid), type: 'twilioAuthToken', accountSid, authToken: text(o, 'authToken') };
    }
    case 'sns': {
      only(o, ['accessKeyId', 'secretAccessKey', 'region']);
      const accessKeyId = text(o, 'accessKeyId');
      const region = text(o, 'region', true);
      return {
        id: credentialId.sns(accessKeyId),
        type: 'snsAccessKey',
        accessKeyId,
        secretAccessKey: text(o, 'secretAccessKey'),
        ...(region !== '' ? { region } : {}),
      };
    }
    case 'smtp': {
      only(o, ['user', 'pass']);
      const user = text(o, 'user');
      return { id: credentialId.smtp(user), type: 'smtpLogin', user, pass: text(o, 'pass') };
    }
    default: {
      const never: never = kind;
      throw new TypeError(`credential: unknown kind ${String(never)}`);
    }
  }
}

/**
 * The credentials one instance accepts. Registering an id again replaces its secret (a rotated
 * key); a revoked id is refused until registered again. `reset()` goes back to the start set.
 */
export class CredentialRegistry {
  private readonly active = new Map<string, SandboxCredential>();
  private readonly revoked = new Map<string, SandboxCredential>();
  private readonly initial: SandboxCredential[] = [];

  constructor(private readonly kind: SandboxKind) {}

  /** Registers a credential known from the start (restored by reset()). */
  registerInitial(input: CredentialInput): string {
    const c = parseCredential(this.kind, input);
    this.initial.push(c);
    this.put(c);
    return c.id;
  }

  register(input: CredentialInput | unknown): string {
    const c = parseCredential(this.kind, input);
    this.put(c);
    return c.id;
  }

  private put(c: SandboxCredential): void {
    this.revoked.delete(c.id);
    this.active.set(c.id, c);
  }

  /** false when the id is not registered (or already revoked). */
  revoke(id: string): boolean {
    const c = this.active.get(id);
    if (c === undefined) return false;
    this.active.delete(id);
    this.revoked.set(id, c);
    return true;
  }

  /** The active credential with this id and type; undefined when unknown, revoked or of another type. */
  get<T extends SandboxCredential['type']>(id: string, type: T): CredentialOf<T> | undefined {
    const c = this.active.get(id);
    return c !== undefined && c.type === type ? (c as CredentialOf<T>) : undefined;
  }

  /** Whether `c` (a credential object seen earlier) is still the active one for its id. */
  isActive(c: SandboxCredential): boolean {
    return this.active.get(c.id) === c;
  }

  list(): CredentialListing[] {
    return [
      ...[...this.active.values()].map((c) => ({ id: c.id, type: c.type, revoked: false })),
      ...[...this.revoked.values()].map((c) => ({ id: c.id, type: c.type, revoked: true })),
    ];
  }

  reset(): void {
    this.active.clear();
    this.revoked.clear();
    for (const c of this.initial) this.active.set(c.id, c);
  }
}
