import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ONLY, registerTenant, startHarness, USER_FIELDS, type Harness } from './testing/harness';

const CONSENT = { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' };
const post = (h: Harness, key: string, body: unknown) =>
  fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
const codesOf = (r: { errors?: { extensions?: { code?: string } }[] }) => (r.errors ?? []).map((e) => e.extensions?.code);

describe('API limits and malformed requests', () => {
  let h: Harness;
  let admin: string;
  let writer: string;
  let auditor: string;

  beforeAll(async () => {
    h = await startHarness({ env: { ...API_ONLY, AUDIT_SCAN_LIMIT: '100' } });
    admin = await registerTenant(h, 'acme');
    const issue = async (scopes: string) =>
      (await h.ok<{ issueApiKey: { token: string } }>(admin, `mutation { issueApiKey(input: { name: "k", scopes: [${scopes}] }) { token } }`)).issueApiKey.token;
    writer = await issue('USERS_WRITE');
    auditor = await issue('AUDIT_READ');
    await h.ok(admin, `mutation { createGroup(input: { groupId: "g", name: "G" }) { groupId } }`);
  });
  afterAll(() => h.stop());

  describe('personal data in mutation results', () => {
    it('a key without READ gets ids back, never the decrypted name or addresses', async () => {
      const reg = await h.ok<any>(writer, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { ${USER_FIELDS} } }`, {
        in: { userId: 'w-1', name: 'Secret Name', consent: CONSENT, devices: [{ kind: 'EMAIL', address: 'secret@example.com' }] },
      });
      expect(reg.registerUser.name).toBeNull();
      expect(reg.registerUser.devices).toEqual([{ deviceId: expect.any(String), kind: 'EMAIL', address: null }]);
      const deviceId = reg.registerUser.devices[0].deviceId;
      const results = [
        await h.ok<any>(writer, `mutation { updateUser(input: { userId: "w-1", name: "Other Name" }) { name devices { address } } }`),
        await h.ok<any>(writer, `mutation { addDevice(userId: "w-1", device: { kind: SMS, address: "+15551234567" }) { name devices { address } } }`),
        await h.ok<any>(writer, `mutation($d: ID!) { changeDevice(userId: "w-1", deviceId: $d, device: { kind: EMAIL, address: "new@example.com" }) { name devices { address } } }`, { d: deviceId }),
        await h.ok<any>(writer, `mutation($d: ID!) { removeDevice(userId: "w-1", deviceId: $d) { name devices { address } } }`, { d: deviceId }),
      ];
      const text = JSON.stringify(results);
      for (const secret of ['Secret Name', 'Other Name', 'secret@example.com', 'new@example.com', '+15551234567']) expect(text).not.toContain(secret);
      for (const r of results) {
        const user = Object.values(r)[0] as any;
        expect(user.name).toBeNull();
        for (const d of user.devices) expect(d.address).toBeNull();
      }
      // A key that may read (ADMIN holds READ) still gets them.
      const updated = await h.ok<any>(admin, `mutation { updateUser(input: { userId: "w-1", name: "Read Me" }) { name devices { address } } }`);
      expect(updated.updateUser).toEqual({ name: 'Read Me', devices: [{ address: '+15551234567' }] });
    });
  });

  describe('cost limits count the real work', () => {
    it('prices list arguments by their size, variables resolved: aliased addGroupMembers sharing a 1,000-id variable are refused, nothing appended', async () => {
      const ids = Array.from({ length: 1000 }, (_, i) => `x-${i}`);
      const aliases = Array.from({ length: 15 }, (_, i) => `a${i}: addGroupMembers(groupId: "g", userIds: $ids) { changed }`).join(' ');
      const head = await h.app.eventStore.headPosition();
      const r = await h.gql(writer, `mutation($ids: [ID!]!) { ${aliases} }`, { ids });
      expect(r.status).toBe(400);
      expect(codesOf(r)).toEqual(['BAD_USER_INPUT']);
      expect(r.errors![0]!.message).toMatch(/query cost \d+ exceeds the limit of 20000/);
      expect(await h.app.eventStore.headPosition()).toBe(head);
      // One such call is within the limit.
      const one = await h.gql(writer, `mutation($ids: [ID!]!) { addGroupMembers(groupId: "g", userIds: $ids) { changed } }`, { ids: ids.slice(0, 3) });
      expect(codesOf(one)).not.toContain('BAD_USER_INPUT');
    });

    it('caps top-level mutation fields per request, aliases, directives and tokens', async () => {
      const head = await h.app.eventStore.headPosition();
      const mutations = Array.from({ length: 21 }, (_, i) => `m${i}: renameGroup(groupId: "g", name: "n${i}") { name }`).join(' ');
      const tooMany = await h.gql(writer, `mutation { ${mutations} }`);
      expect(tooMany.status).toBe(400);
      expect(tooMany.errors![0]!.message).toMatch(/at most 20 mutation fields/);
      expect(await h.app.eventStore.headPosition()).toBe(head);

      const aliases = await h.gql(admin, `{ ${Array.from({ length: 31 }, (_, i) => `a${i}: me { keyId }`).join(' ')} }`);
      expect(aliases.errors![0]!.message).toMatch(/31 aliases; the limit is 30/);
      const directives = await h.gql(admin, `{ me { ${Array.from({ length: 21 }, () => 'keyId @include(if: true)').join(' ')} } }`);
      expect(directives.errors![0]!.message).toMatch(/21 directives; the limit is 20/);
      const tokens = await h.gql(admin, `{ me { ${'keyId '.repeat(3100)} } }`);
      expect(tokens.status).toBe(400);
      expect(codesOf(tokens)).toEqual(['GRAPHQL_PARSE_FAILED']);
    });

    it("prices auditLog by what it reads, and a filtered page reads at most AUDIT_SCAN_LIMIT events", async () => {
      // 150 events in the tenant's log, the user's own at the end.
      for (let i = 0; i < 150; i++) await h.ok(writer, `mutation { renameGroup(groupId: "g", name: "n${i}") { name } }`);
      await h.ok(writer, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, { in: { userId: 'late', name: 'L', consent: CONSENT, devices: [{ kind: 'EMAIL', address: 'late@example.com' }] } });
      const q = `query($after: String) { auditLog(userId: "late", first: 1, after: $after) { nodes { type } pageInfo { endCursor hasNextPage } } }`;
      const first = await h.ok<any>(auditor, q);
      // The first page stopped at the scan limit, before the user's event, and says where to go on.
      expect(first.auditLog.nodes).toEqual([]);
      expect(first.auditLog.pageInfo.hasNextPage).toBe(true);
      const second = await h.ok<any>(auditor, q, { after: first.auditLog.pageInfo.endCursor });
      expect(second.auditLog.nodes).toEqual([{ type: 'UserRegistered' }]);

      // Filtered, each costs its scan (100 / 10 here): 500 aliases of it would not fit; nor 500 of the unfiltered page.
      const many = await h.gql(auditor, `{ ${Array.from({ length: 500 }, (_, i) => `a${i}: auditLog(first: 10) { nodes { type } }`).join(' ')} }`);
      expect(many.status).toBe(400);
      expect(['BAD_USER_INPUT', 'GRAPHQL_PARSE_FAILED']).toContain(codesOf(many)[0]);
      // Within the alias limit, 30 unfiltered pages read 11 events each: quick.
      const started = Date.now();
      const thirty = await h.gql(auditor, `{ ${Array.from({ length: 30 }, (_, i) => `a${i}: auditLog(first: 10) { nodes { type data } }`).join(' ')} }`);
      expect(thirty.errors).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(2_000);
    });

    it('shows API keys\' secret hashes as [secret] in auditLog', async () => {
      const page = await h.ok<any>(auditor, `{ auditLog(first: 20) { nodes { type data } } }`);
      const issued = page.auditLog.nodes.filter((n: any) => n.type === 'ApiKeyIssued');
      expect(issued.length).toBeGreaterThan(0);
      for (const n of issued) expect(JSON.parse(n.data).secretHash).toBe('[secret]');
    });
  });

  describe('malformed requests get a clear error, never a 5xx', () => {
    it('an operationName that names no operation: 400 OPERATION_RESOLUTION_FAILURE', async () => {
      for (const body of [
        { query: '{ me { keyId } }', operationName: 'Missing' },
        { query: 'query A { me { keyId } } query B { me { kind } }' },
        { query: 'query A { me { keyId } }', operationName: 'B' },
      ]) {
        const res = await post(h, admin, body);
        expect(res.status).toBe(400);
        expect(codesOf((await res.json()) as any)).toEqual(['OPERATION_RESOLUTION_FAILURE']);
      }
    });

    it('a subscription sent over HTTP POST: 400 BAD_REQUEST', async () => {
      const res = await post(h, admin, { query: 'subscription { deliveryEvents { type } }' });
      expect(res.status).toBe(400);
      expect(codesOf((await res.json()) as any)).toEqual(['BAD_REQUEST']);
    });

    it('an after cursor the list never issued: BAD_USER_INPUT on every list', async () => {
      await h.ok(writer, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, { in: { userId: 'w-2', name: 'W', consent: CONSENT, devices: [{ kind: 'EMAIL', address: 'w2@example.com' }] } });
      await h.app.settle();
      const users = await h.ok<any>(admin, `{ users(first: 1) { pageInfo { endCursor } } }`);
      const usersCursor = users.users.pageInfo.endCursor as string;
      const wrap = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const inner = JSON.parse(Buffer.from(usersCursor, 'base64url').toString()).c as string;
      const bad = [
        'nope', '', '!!', 'x'.repeat(5000),
        wrap({ l: 'users', t: 'acme', c: wrap({ id: { $gt: '' } }) }),
        wrap({ l: 'users', t: 'other-tenant', c: inner }),
        wrap({ l: 'users', t: 'acme', c: 'not base64 !' }),
        wrap({ l: 'users', t: 'acme', c: wrap({ f: 'requestedAt', v: [1], id: 'x' }) }),
        wrap({ l: 'users', t: 'acme', c: wrap({ id: 'acme:w-1', extra: 1 }) }),
        usersCursor,
      ];
      for (const list of ['users', 'groups', 'notifications', 'timeline(userId: "w-1")']) {
        for (const after of bad) {
          const r = await h.gql(admin, `query($after: String) { ${list.includes('(') ? list.replace(')', ', after: $after)') : `${list}(after: $after)`} { pageInfo { hasNextPage } } }`, { after });
          if (list === 'users' && after === usersCursor) {
            expect(r.errors).toBeUndefined();
            continue;
          }
          expect({ list, after: after.slice(0, 20), codes: codesOf(r) }).toEqual({ list, after: after.slice(0, 20), codes: ['BAD_USER_INPUT'] });
        }
      }
      // The cursor it did issue still pages.
      expect((await h.gql(admin, `query($a: String) { users(first: 1, after: $a) { nodes { userId } } }`, { a: usersCursor })).errors).toBeUndefined();
    });

    it('an automatic persisted query whose hash does not match its text: 400, not a server error', async () => {
      const query = '{ me { keyId } }';
      const wrong = createHash('sha256').update('something else').digest('hex');
      const res = await post(h, admin, { query, extensions: { persistedQuery: { version: 1, sha256Hash: wrong } } });
      expect(res.status).toBe(400);
      expect(codesOf((await res.json()) as any)).toEqual(['BAD_REQUEST']);
      const unknown = await post(h, admin, { extensions: { persistedQuery: { version: 1, sha256Hash: wrong } } });
      expect(codesOf((await unknown.json()) as any)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
      const right = createHash('sha256').update(query).digest('hex');
      const ok = await post(h, admin, { query, extensions: { persistedQuery: { version: 1, sha256Hash: right } } });
      expect(ok.status).toBe(200);
    });

    it('a body over 1 MB: 413 with a JSON error, read to its end (no reset), and the connection still serves', async () => {
      const big = JSON.stringify({ query: '{ me { keyId } }', variables: { pad: 'x'.repeat(2_000_000) } });
      const res = await post(h, admin, JSON.parse(big));
      expect(res.status).toBe(413);
      expect(codesOf((await res.json()) as any)).toEqual(['PAYLOAD_TOO_LARGE']);
      // Chunked, without a content-length, on a raw keep-alive connection: the answer, then the next request.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const send = (body: string | null) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request(h.url, { method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` } }, (r) => {
            let text = '';
            r.on('data', (c) => (text += c));
            r.on('end', () => resolve({ status: r.statusCode!, body: text }));
          });
          req.on('error', reject);
          if (body === null) {
            for (let i = 0; i < 30; i++) req.write('x'.repeat(100_000));
            req.end();
          } else req.end(body);
        });
      const chunked = await send(null);
      expect(chunked.status).toBe(413);
      expect(JSON.parse(chunked.body).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
      const after = await send(JSON.stringify({ query: '{ me { keyId } }' }));
      expect(after.status).toBe(200);
      agent.destroy();
    });
  });
});
