import type { AuthChecker } from 'type-graphql';
import { forbidden, unauthenticated } from '#schema/errors';
import { grants, isScope, type Scope } from '#schema/scopes';
import type { Commands } from '#command/application';
import { OPERATOR, secretMatches } from '#command/tenant/api-keys';

const INVALID = 'invalid or revoked API key';

export type Principal =
  | Readonly<{ kind: 'operator'; keyId: string }>
  | Readonly<{ kind: 'tenant'; tenantId: string; keyId: string; scopes: readonly Scope[] }>;

export type ParsedKey = Readonly<{ tenantId: string; keyId: string; secret: string }>;

export const parseBearer = (header: string | undefined | null): ParsedKey => {
  if (!header) throw unauthenticated('missing API key: send "Authorization: Bearer <key>"');
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) throw unauthenticated('malformed Authorization header: expected "Bearer <key>"');
  const parts = match[1]!.split('.');
  if (parts.length !== 4 || parts[0] !== 'ntf' || parts.some((p) => p.length === 0)) {
    throw unauthenticated('malformed API key: expected ntf.<tenant>.<key id>.<secret>');
  }
  return { tenantId: parts[1]!, keyId: parts[2]!, secret: parts[3]! };
};

/** Finds the key's stream from the key itself, folds it fresh, and checks the secret's hash. */
export const authenticate = async (commands: Pick<Commands, 'operator' | 'tenants'>, authorization: string | undefined | null): Promise<Principal> => {
  const { tenantId, keyId, secret } = parseBearer(authorization);
  if (tenantId === OPERATOR) {
    const key = (await commands.operator.state()).keys.get(keyId);
    if (!key || key.revoked || !secretMatches(secret, key.secretHash)) throw unauthenticated(INVALID);
    return { kind: 'operator', keyId };
  }
  const state = await commands.tenants.state(tenantId);
  const key = state.status === 'Registered' ? state.keys.get(keyId) : undefined;
  if (!key || key.revoked || !secretMatches(secret, key.secretHash)) throw unauthenticated(INVALID);
  return { kind: 'tenant', tenantId, keyId, scopes: key.scopes };
};

/** The role names used with @Authorized: a tenant scope, or `operator`. Any one listed suffices. */
export type Requirement = Scope | 'operator';

export const describePrincipal = (p: Principal): string =>
  p.kind === 'operator' ? 'an operator key' : `a key with scopes ${p.scopes.join(', ') || '(none)'}`;

export const satisfies = (p: Principal, required: readonly Requirement[]): boolean =>
  required.some((r) => (r === 'operator' ? p.kind === 'operator' : p.kind === 'tenant' && isScope(r) && grants(p.scopes, r)));

export const requireAccess = (principal: Principal, required: readonly Requirement[]): void => {
  if (satisfies(principal, required)) return;
  throw forbidden(`this operation needs ${required.map((r) => (r === 'operator' ? 'an operator key' : `scope ${r}`)).join(' or ')}; the request used ${describePrincipal(principal)}`);
};

export const authChecker: AuthChecker<{ principal: Principal }, Requirement> = ({ context }, required) => {
  requireAccess(context.principal, required);
  return true;
};

/**
 * The tenant an operation acts on. Tenant keys act on their own tenant only; naming another is
 * FORBIDDEN. Operator keys must name one (they manage tenants but hold no tenant data scopes).
 */
export const tenantOf = (p: Principal, requested?: string | null): string => {
  if (p.kind === 'tenant') {
    if (requested != null && requested !== p.tenantId) throw forbidden(`this key belongs to another tenant than ${requested}`);
    return p.tenantId;
  }
  if (requested == null) throw forbidden('operator keys must name the tenant (tenantId)');
  return requested;
};
