export const SCOPES = ['users:write', 'notifications:send', 'read', 'audit:read', 'providers:admin', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const isScope = (s: string): s is Scope => (SCOPES as readonly string[]).includes(s);

/** `admin` holds every tenant scope; the others hold only themselves. */
export const grants = (held: readonly Scope[], needed: Scope): boolean =>
  held.includes(needed) || held.includes('admin');
