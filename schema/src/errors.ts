export type ErrorCode = 'BAD_USER_INPUT' | 'UNAUTHENTICATED' | 'FORBIDDEN' | 'NOT_FOUND' | 'CONFLICT';

/**
 * An error the caller can act on. Raised anywhere in the domain and mapped once, at the edge,
 * to a GraphQL error with `extensions.code` (and `extensions.field` when one field is at fault).
 */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const badInput = (field: string, message: string): DomainError =>
  new DomainError('BAD_USER_INPUT', `${field}: ${message}`, field);
export const notFound = (what: string): DomainError => new DomainError('NOT_FOUND', `${what} was not found`);
export const conflict = (message: string): DomainError => new DomainError('CONFLICT', message);
export const forbidden = (message: string): DomainError => new DomainError('FORBIDDEN', message);
export const unauthenticated = (message: string): DomainError => new DomainError('UNAUTHENTICATED', message);

export const isDomainError = (e: unknown): e is DomainError => e instanceof DomainError;
