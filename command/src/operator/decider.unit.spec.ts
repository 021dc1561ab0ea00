import { describe, it } from 'vitest';
import { DeciderSpecification } from '../decider-spec';
import { operatorDecider } from './decider';

const now = new Date('2026-06-01T00:00:00Z');
const spec = DeciderSpecification.for(operatorDecider);

describe('operator decider', () => {
  it('issues a key', () =>
    spec.given([]).when({ type: 'IssueOperatorKey', data: { keyId: 'k', secretHash: 'h' }, now }).then([{ type: 'OperatorKeyIssued', data: { keyId: 'k', secretHash: 'h' } }]));
  it('issues no key twice', () =>
    spec.given([{ type: 'OperatorKeyIssued', data: { keyId: 'k', secretHash: 'h' } }]).when({ type: 'IssueOperatorKey', data: { keyId: 'k', secretHash: 'x' }, now }).thenThrows('CONFLICT'));
  it('revokes once', () => {
    const issued = { type: 'OperatorKeyIssued', data: { keyId: 'k', secretHash: 'h' } } as const;
    spec.given([issued]).when({ type: 'RevokeOperatorKey', data: { keyId: 'k' }, now }).then([{ type: 'OperatorKeyRevoked', data: { keyId: 'k' } }]);
    spec.given([issued, { type: 'OperatorKeyRevoked', data: { keyId: 'k' } }]).when({ type: 'RevokeOperatorKey', data: { keyId: 'k' }, now }).thenNothingHappens();
  });
  it('revokes no unknown key', () => spec.given([]).when({ type: 'RevokeOperatorKey', data: { keyId: 'k' }, now }).thenThrows('NOT_FOUND'));
});
