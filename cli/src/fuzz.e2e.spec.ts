import fc from 'fast-check';
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiSchema } from '#api/schema';
import { API_ONLY, registerTenant, startHarness, type Harness } from './testing/harness';

/**
 * Every query, mutation and subscription of the schema, called with generated arguments (valid
 * ones, hostile strings, out-of-range numbers, wrong types, missing fields), by keys of every
 * kind. Whatever the input: no 5xx, no INTERNAL_SERVER_ERROR, no reset connection, an error code
 * from the documented list, and a rejected request appends nothing. Fixed seed, bounded runs.
 */
const DOCUMENTED = new Set([
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'RATE_LIMITED',
  'BAD_REQUEST',
  'GRAPHQL_VALIDATION_FAILED',
  'GRAPHQL_PARSE_FAILED',
  'OPERATION_RESOLUTION_FAILURE',
  'PAYLOAD_TOO_LARGE',
  'PERSISTED_QUERY_NOT_FOUND',
  'USER_SHREDDED',
  'NOTIFICATION_COMPLETED',
]);
const SEED = 20261204;
const RUNS = Number(process.env.FUZZ_RUNS ?? 1_000);

const hostile = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', ' ', 'u1', 'all', 'pd1.AAAA', 'pd2.AAAA', '../../etc/passwd', "'; DROP TABLE users; --", '\u0000', '\ud800', '👍'.repeat(50), 'a'.repeat(5_000), '=cmd|calc', '1e309', '-1', 'null'),
);
const anyJson: fc.Arbitrary<unknown> = fc.oneof(fc.constant(null), fc.integer(), fc.double(), fc.boolean(), hostile, fc.array(hostile, { maxLength: 3 }), fc.dictionary(hostile, hostile, { maxKeys: 3 }));

/** A value for an input type: mostly well typed (so resolvers run), sometimes anything at all. */
const valueOf = (type: GraphQLInputType, depth = 0): fc.Arbitrary<unknown> => {
  if (isNonNullType(type)) return fc.oneof({ weight: 9, arbitrary: valueOf(type.ofType, depth) }, { weight: 1, arbitrary: fc.constant(null) });
  const typed = ((): fc.Arbitrary<unknown> => {
    if (isListType(type)) return fc.array(valueOf(type.ofType, depth + 1), { maxLength: depth > 1 ? 1 : 4 });
    if (isEnumType(type)) return fc.constantFrom(...type.getValues().map((v) => v.name));
    if (isInputObjectType(type)) {
      if (depth > 3) return fc.constant({});
      const fields = Object.values(type.getFields());
      return fc.record(Object.fromEntries(fields.map((f) => [f.name, valueOf(f.type, depth + 1)])), { requiredKeys: fields.filter((f) => isNonNullType(f.type)).map((f) => f.name) });
    }
    if (isScalarType(type)) {
      switch (type.name) {
        case 'Int':
          return fc.oneof(fc.integer({ min: -5, max: 600 }), fc.constantFrom(-2_147_483_648, 2_147_483_647, 0));
        case 'Float':
          return fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, -1, 1e12));
        case 'Boolean':
          return fc.boolean();
        case 'DateTime':
          return fc.oneof(fc.date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString()), hostile);
        default:
          return hostile;
      }
    }
    return anyJson;
  })();
  return fc.oneof({ weight: 9, arbitrary: typed }, { weight: 1, arbitrary: anyJson });
};

type Operation = Readonly<{ kind: 'query' | 'mutation' | 'subscription'; field: GraphQLField<unknown, unknown> }>;

const documentOf = (op: Operation): string => {
  const args = op.field.args;
  const vars = args.map((a) => `$${a.name}: ${a.type.toString()}`).join(', ');
  const call = args.length > 0 ? `(${args.map((a) => `${a.name}: $${a.name}`).join(', ')})` : '';
  const named = getNamedType(op.field.type);
  const selection = isScalarType(named) || isEnumType(named) ? '' : ' { __typename }';
  return `${op.kind} Fuzz${vars ? `(${vars})` : ''} { ${op.field.name}${call}${selection} }`;
};

const operationsOf = (schema: GraphQLSchema): Operation[] =>
  (
    [
      ['query', schema.getQueryType()],
      ['mutation', schema.getMutationType()],
      ['subscription', schema.getSubscriptionType()],
    ] as const
  ).flatMap(([kind, type]) => (type ? Object.values(type.getFields()).map((field) => ({ kind, field })) : []));

describe('fuzz: every operation, hostile arguments, every kind of key', () => {
  let h: Harness;
  let operations: Operation[];
  const keys: Record<string, string | null> = {};

  beforeAll(async () => {
    h = await startHarness({ env: { ...API_ONLY, LOG_LEVEL: 'silent', RATE_LIMIT_KEY_REQUESTS: '0', RATE_LIMIT_TENANT_REQUESTS: '0', RATE_LIMIT_KEY_SENDS: '0', RATE_LIMIT_TENANT_SENDS: '0' } });
    operations = operationsOf(await apiSchema());
    const admin = await registerTenant(h, 'fuzz');
    await h.ok(admin, `mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
    await h.ok(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: { userId: 'u1', name: 'Fuzz', groupIds: ['all'], consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' }, devices: [{ kind: 'EMAIL', address: 'fuzz@example.com' }] },
    });
    const read = (await h.ok<any>(admin, `mutation { issueApiKey(input: { name: "r", scopes: [READ] }) { token } }`)).issueApiKey.token as string;
    Object.assign(keys, { admin, read, operator: h.operatorKey, none: null, wrong: 'ntf_live_not-a-key' });
  }, 60_000);
  afterAll(() => h?.stop());

  it(`answers ${RUNS} generated requests with documented client errors only, and appends nothing when it refuses`, async () => {
    const seen = new Map<string, number>();
    let answered = 0;
    const fields = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: operations.length - 1 }).chain((i) =>
          fc.tuple(fc.constant(operations[i]!), fc.record(Object.fromEntries(operations[i]!.field.args.map((a) => [a.name, valueOf(a.type)]))), fc.oneof({ weight: 6, arbitrary: fc.constant('admin') }, { weight: 2, arbitrary: fc.constantFrom('read', 'operator') }, { weight: 1, arbitrary: fc.constantFrom('none', 'wrong') })),
        ),
        async ([op, variables, who]) => {
          const before = await h.app.eventStore.headPosition();
          const key = keys[who];
          let res: Response;
          try {
            res = await fetch(h.url, {
              method: 'POST',
              headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
              body: JSON.stringify({ query: documentOf(op), variables }),
            });
          } catch (e) {
            throw new Error(`${op.kind} ${op.field.name} as ${who}: the connection failed (${String(e)})`);
          }
          const text = await res.text();
          const context = `${op.kind} ${op.field.name} as ${who} with ${JSON.stringify(variables).slice(0, 300)}: ${res.status} ${text.slice(0, 300)}`;
          expect(res.status, context).toBeLessThan(500);
          const body = JSON.parse(text) as { data?: Record<string, unknown> | null; errors?: { extensions?: { code?: string } }[] };
          const codes = (body.errors ?? []).map((e) => e.extensions?.code ?? '(none)');
          fields.add(op.field.name);
          if (codes.length === 0) answered++;
          for (const code of codes) {
            expect(DOCUMENTED.has(code), `${context}: code ${code}`).toBe(true);
            seen.set(code, (seen.get(code) ?? 0) + 1);
          }
          // One root field per request: refused means nothing of it ran.
          const refused = codes.length > 0 && (body.data === null || body.data === undefined || body.data[op.field.name] === null);
          if (refused && op.kind === 'mutation') expect(await h.app.eventStore.headPosition(), `${context}: appended while refusing`).toBe(before);
        },
      ),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    console.log(`fuzz: ${RUNS} requests over ${fields.size} of ${operations.length} operations; ${answered} answered without error; errors by code ${JSON.stringify(Object.fromEntries(seen))}`);
    // The suite reached the resolvers and the checks, not only the parser.
    expect(answered).toBeGreaterThan(RUNS / 50);
    expect(seen.get('BAD_USER_INPUT') ?? 0).toBeGreaterThan(0);
    expect((seen.get('FORBIDDEN') ?? 0) + (seen.get('UNAUTHENTICATED') ?? 0)).toBeGreaterThan(0);
  }, 300_000);

  it('answers generated subscriptions over the WebSocket with documented errors, or events, and keeps the socket open', async () => {
    const subscriptions = operations.filter((op) => op.kind === 'subscription');
    expect(subscriptions.length).toBeGreaterThan(0);
    const codes = new Map<string, number>();
    // Not the operator: the requests above may have rotated its key (rotateOperatorKey is one of the operations).
    for (const who of ['admin', 'read'] as const) {
      const socket = new WebSocket(h.wsUrl, 'graphql-transport-ws');
      const inbox: { id?: string; type: string; payload?: unknown }[] = [];
      let closed: number | null = null;
      socket.on('message', (data) => inbox.push(JSON.parse(String(data))));
      socket.on('close', (code) => (closed = code));
      await new Promise((r) => socket.once('open', r));
      socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${keys[who]}` } }));
      const waitFor = async (match: (m: (typeof inbox)[number]) => boolean, ms: number) => {
        const end = Date.now() + ms;
        while (Date.now() < end && closed === null) {
          const found = inbox.find(match);
          if (found) return found;
          await new Promise((r) => setTimeout(r, 5));
        }
        return inbox.find(match);
      };
      expect(await waitFor((m) => m.type === 'connection_ack', 2_000), `${who}: connection_ack`).toBeDefined();
      let n = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: subscriptions.length - 1 }).chain((i) => fc.tuple(fc.constant(subscriptions[i]!), fc.record(Object.fromEntries(subscriptions[i]!.field.args.map((a) => [a.name, valueOf(a.type)]))))),
          async ([op, variables]) => {
            const id = `s${++n}`;
            socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query: documentOf(op), variables } }));
            // An error comes at once; a subscription that was accepted streams (or waits): both fine.
            const answer = await waitFor((m) => m.id === id && (m.type === 'error' || m.type === 'next' || m.type === 'complete'), 100);
            const context = `${op.field.name} as ${who} with ${JSON.stringify(variables).slice(0, 200)}: ${String(JSON.stringify(answer)).slice(0, 300)}`;
            expect(closed, `${context}: the socket closed`).toBeNull();
            const errors = (answer?.type === 'error' ? (answer.payload as { extensions?: { code?: string } }[]) : answer?.type === 'next' ? ((answer.payload as { errors?: { extensions?: { code?: string } }[] }).errors ?? []) : []);
            for (const e of errors) {
              const code = e.extensions?.code ?? '(none)';
              expect(DOCUMENTED.has(code), `${context}: code ${code}`).toBe(true);
              codes.set(code, (codes.get(code) ?? 0) + 1);
            }
            if (answer?.type !== 'error' && answer?.type !== 'complete') socket.send(JSON.stringify({ id, type: 'complete' }));
          },
        ),
        { seed: SEED, numRuns: 60, endOnFailure: true },
      );
      socket.close();
    }
    console.log(`fuzz over the WebSocket: errors by code ${JSON.stringify(Object.fromEntries(codes))}`);
    expect(codes.get('BAD_USER_INPUT') ?? 0).toBeGreaterThan(0);
  }, 120_000);
});
