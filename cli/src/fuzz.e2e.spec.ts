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
});
