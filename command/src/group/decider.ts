import type { CreateGroup, GroupCommand, RenameGroup } from '#schema/commands';
import type { GroupEvent } from '#schema/events';
import { conflict, notFound } from '#schema/errors';
import { parseGroupName } from '#schema/values';

export type GroupState = Readonly<{ status: 'None' }> | Readonly<{ status: 'Created'; groupId: string; name: string }>;

export const initialState = (): GroupState => ({ status: 'None' });

const create = ({ data }: CreateGroup, state: GroupState): GroupEvent[] => {
  if (state.status === 'Created') throw conflict(`group ${data.groupId} already exists`);
  return [{ type: 'GroupCreated', data: { groupId: data.groupId, name: parseGroupName('name', data.name) } }];
};

const rename = ({ data }: RenameGroup, state: GroupState): GroupEvent[] => {
  if (state.status !== 'Created') throw notFound(`group ${data.groupId}`);
  const name = parseGroupName('name', data.name);
  return name === state.name ? [] : [{ type: 'GroupRenamed', data: { groupId: data.groupId, name } }];
};

export const decide = (command: GroupCommand, state: GroupState): GroupEvent[] => {
  switch (command.type) {
    case 'CreateGroup':
      return create(command, state);
    case 'RenameGroup':
      return rename(command, state);
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
};

export const evolve = (state: GroupState, event: GroupEvent): GroupState => {
  switch (event.type) {
    case 'GroupCreated':
      return { status: 'Created', groupId: event.data.groupId, name: event.data.name };
    case 'GroupRenamed':
      return state.status === 'Created' ? { ...state, name: event.data.name } : state;
    default: {
      const never: never = event;
      return never;
    }
  }
};

export const groupDecider = { decide, evolve, initialState };
