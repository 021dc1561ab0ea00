import { parse, specifiedRules, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { apiSchema } from './schema';
import { aliasAndDirectiveLimit, checkCost, mutationFieldLimit, selectOperation } from './limits';

const costOf = async (query: string, variables: Record<string, unknown> = {}, operationName?: string) =>
  checkCost(await apiSchema(), parse(query), variables, operationName, Number.MAX_SAFE_INTEGER, { auditScanLimit: 10_000 });

describe('query cost', () => {
  it('prices list arguments by their size, whether literal or a variable', async () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `u${i}`);
    const viaVariable = await costOf('mutation($ids: [ID!]!) { addGroupMembers(groupId: "g", userIds: $ids) { changed } }', { ids });
    const literal = await costOf(`mutation { addGroupMembers(groupId: "g", userIds: ${JSON.stringify(ids)}) { changed } }`);
    expect(viaVariable).toBe(literal);
    expect(viaVariable).toBeGreaterThan(10_000);
    const aliased = await costOf(`mutation($ids: [ID!]!) { a: addGroupMembers(groupId: "g", userIds: $ids) { changed } b: addGroupMembers(groupId: "g", userIds: $ids) { changed } }`, { ids });
    expect(aliased).toBe(2 * viaVariable);
  });

  it("prices auditLog by the events it reads: a filtered page at its scan limit, whatever `first` is", async () => {
    const filtered = await costOf('{ auditLog(userId: "u", first: 1) { nodes { type } } }');
    const unfiltered = await costOf('{ auditLog(first: 1) { nodes { type } } }');
    expect(filtered).toBeGreaterThanOrEqual(1_000);
    expect(unfiltered).toBeLessThan(10);
    // 20 filtered pages are the most one request (MAX_QUERY_COST 20,000) may ask for.
    const twenty = await costOf(`{ ${Array.from({ length: 21 }, (_, i) => `a${i}: auditLog(userId: "u", first: 1) { nodes { type } }`).join(' ')} }`);
    expect(twenty).toBeGreaterThan(20_000);
  });

  it('estimates only the operation named, and names a missing one clearly', async () => {
    const doc = 'query A { me { keyId } } query B { users(first: 500) { nodes { userId } } }';
    expect(await costOf(doc, {}, 'A')).toBeLessThan(5);
    expect(await costOf(doc, {}, 'B')).toBeGreaterThan(500);
    await expect(costOf('{ me { keyId } }', {}, 'Nope')).rejects.toMatchObject({ extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } });
    expect(() => selectOperation(parse(doc), undefined)).toThrow(/several operations/);
  });

  it('refuses variables that do not fit as BAD_USER_INPUT', async () => {
    await expect(costOf('query($n: Int!) { users(first: $n) { nodes { userId } } }', { n: 'many' })).rejects.toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
  });
});

describe('validation limits', () => {
  const errorsOf = async (query: string) =>
    validate(await apiSchema(), parse(query), [...specifiedRules, aliasAndDirectiveLimit(3, 2), mutationFieldLimit(2)]).map((e) => e.message);

  it('counts aliases and directives through fragments, each spread again', async () => {
    expect(await errorsOf('{ a: me { keyId } b: me { keyId } }')).toEqual([]);
    expect(await errorsOf('query { ...F ...F } fragment F on Query { a: me { keyId } b: me { kind } }')).toEqual(['the operation uses 4 aliases; the limit is 3']);
    expect(await errorsOf('{ me { keyId @include(if: true) kind @skip(if: false) tenantId @include(if: true) } }')).toEqual(['the operation uses 3 directives; the limit is 2']);
  });

  it('caps top-level mutation fields, through fragments', async () => {
    expect(await errorsOf('mutation { a: forgetUser(userId: "1") { userId } b: forgetUser(userId: "2") { userId } }')).toEqual([]);
    expect(await errorsOf('mutation { ...M c: forgetUser(userId: "3") { userId } } fragment M on Mutation { a: forgetUser(userId: "1") { userId } b: forgetUser(userId: "2") { userId } }'))
      .toContain('a request may hold at most 2 mutation fields; this one holds more');
  });
});
