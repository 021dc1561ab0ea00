import { describe, expect, it } from 'vitest';
import { issueCursor, storeCursor } from './cursors';

describe('cursors', () => {
  const store = Buffer.from(JSON.stringify({ f: 'requestedAt', v: '2026-01-01', id: 'acme:n1' })).toString('base64url');

  it('hands back the store cursor of a cursor issued for the same list and tenant', () => {
    expect(storeCursor('notifications', 'acme', issueCursor('notifications', 'acme', store))).toBe(store);
    expect(issueCursor('users', 'acme', null)).toBeNull();
  });

  it("refuses another list's, another tenant's, and made-up cursors as BAD_USER_INPUT", () => {
    const wrap = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    for (const after of [
      issueCursor('users', 'acme', store)!,
      issueCursor('notifications', 'other', store)!,
      'garbage',
      wrap({ l: 'notifications', t: 'acme', c: wrap({ id: { $ne: null } }) }),
      wrap({ l: 'notifications', t: 'acme', c: wrap({ id: 'x', v: { $gt: 1 } }) }),
      wrap({ l: 'notifications', t: 'acme', c: store, x: 1 }),
    ]) {
      expect(() => storeCursor('notifications', 'acme', after)).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT', field: 'after' }));
    }
  });
});
