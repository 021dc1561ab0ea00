import { createClient, type Client } from 'graphql-ws';
import type { Operation } from './generated';

/** An error the API answered with: its code (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND...) and message. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

type Answer<R> = { data?: R | null; errors?: readonly { message: string; extensions?: { code?: string } }[] };

const errorOf = (errors: Answer<unknown>['errors']): ApiError => {
  const first = errors?.[0];
  return new ApiError(first?.message ?? 'the API answered with an error', first?.extensions?.code ?? 'ERROR');
};

/** The key goes in a header or the socket's connection params only, never in a URL. */
export type Api = Readonly<{
  request: <R, V>(op: Operation<R, V>, variables: V) => Promise<R>;
  /** Calls onNext with every result; returns a function that ends the subscription. */
  subscribe: <R, V>(op: Operation<R, V>, variables: V, onNext: (r: R) => void, onError: (e: ApiError) => void) => () => void;
  dispose: () => void;
}>;

export const createApi = (key: string, origin: Readonly<{ http: string; ws: string }>): Api => {
  let ws: Client | null = null;
  const socket = (): Client =>
    (ws ??= createClient({
      url: origin.ws,
      connectionParams: () => ({ authorization: `Bearer ${key}` }),
      lazy: true,
      // A refused key (4403) or a revoked one (4401) is final; other closes reconnect.
      shouldRetry: (e) => !(e instanceof CloseEvent && (e.code === 4401 || e.code === 4403)),
      retryAttempts: 20,
    }));
  return {
    request: async (op, variables) => {
      let res: Response;
      try {
        res = await fetch(origin.http, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ query: op.document, operationName: op.name, variables }),
        });
      } catch {
        throw new ApiError('the API cannot be reached', 'NETWORK');
      }
      const answer = (await res.json().catch(() => ({ errors: [{ message: `the API answered ${res.status}` }] }))) as Answer<never>;
      if (answer.errors?.length || !answer.data) throw errorOf(answer.errors);
      return answer.data;
    },
    subscribe: (op, variables, onNext, onError) =>
      socket().subscribe<never>(
        { query: op.document, operationName: op.name, variables: variables as Record<string, unknown> },
        {
          next: (r: Answer<never>) => (r.errors?.length ? onError(errorOf(r.errors)) : r.data && onNext(r.data)),
          error: (e: unknown) =>
            onError(
              Array.isArray(e)
                ? errorOf(e)
                : e instanceof CloseEvent
                  ? new ApiError(e.reason || `the live connection closed (${e.code})`, e.code === 4403 || e.code === 4401 ? 'UNAUTHENTICATED' : 'NETWORK')
                  : new ApiError('the live connection failed', 'NETWORK'),
            ),
          complete: () => {},
        },
      ),
    dispose: () => void ws?.dispose(),
  };
};

export const sameOrigin = (): Readonly<{ http: string; ws: string }> => ({
  http: `${location.origin}/graphql`,
  ws: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
});

/** Kept for this tab only: gone when it closes. */
export const session = {
  get: (): string | null => sessionStorage.getItem('notify.apiKey'),
  set: (key: string): void => sessionStorage.setItem('notify.apiKey', key),
  clear: (): void => sessionStorage.removeItem('notify.apiKey'),
};
