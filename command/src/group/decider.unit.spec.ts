import { describe, it } from 'vitest';
import { DeciderSpecification } from '../decider-spec';
import { groupDecider } from './decider';

const now = new Date('2026-06-01T00:00:00Z');
const spec = DeciderSpecification.for(groupDecider);

describe('group decider', () => {
  it('creates a group', () =>
    spec.given([]).when({ type: 'CreateGroup', data: { groupId: 'g', name: ' Beta ' }, now }).then([{ type: 'GroupCreated', data: { groupId: 'g', name: 'Beta' } }]));
  it('creates once', () =>
    spec.given([{ type: 'GroupCreated', data: { groupId: 'g', name: 'Beta' } }]).when({ type: 'CreateGroup', data: { groupId: 'g', name: 'x' }, now }).thenThrows('CONFLICT', /group g already exists/));
  it('rejects an empty name', () => spec.given([]).when({ type: 'CreateGroup', data: { groupId: 'g', name: ' ' }, now }).thenThrows('BAD_USER_INPUT', /name/));
  it('renames', () =>
    spec.given([{ type: 'GroupCreated', data: { groupId: 'g', name: 'Beta' } }]).when({ type: 'RenameGroup', data: { groupId: 'g', name: 'Gamma' }, now }).then([{ type: 'GroupRenamed', data: { groupId: 'g', name: 'Gamma' } }]));
  it('records no rename to the same name', () =>
    spec.given([{ type: 'GroupCreated', data: { groupId: 'g', name: 'Beta' } }]).when({ type: 'RenameGroup', data: { groupId: 'g', name: 'Beta' }, now }).thenNothingHappens());
  it('renames no unknown group', () => spec.given([]).when({ type: 'RenameGroup', data: { groupId: 'g', name: 'x' }, now }).thenThrows('NOT_FOUND', /group g/));
});
