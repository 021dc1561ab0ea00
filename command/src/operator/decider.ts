import type { OperatorCommand, IssueOperatorKey, RevokeOperatorKey } from '#schema/commands';
import type { OperatorEvent } from '#schema/events';
import { conflict, notFound } from '#schema/errors';

export type OperatorKey = Readonly<{ secretHash: string; revoked: boolean }>;
export type OperatorState = Readonly<{ keys: ReadonlyMap<string, OperatorKey> }>;

export const initialState = (): OperatorState => ({ keys: new Map() });

const issue = (command: IssueOperatorKey, state: OperatorState): OperatorEvent[] => {
  if (state.keys.has(command.data.keyId)) throw conflict(`operator key ${command.data.keyId} already exists`);
  return [{ type: 'OperatorKeyIssued', data: { keyId: command.data.keyId, secretHash: command.data.secretHash } }];
};

const revoke = (command: RevokeOperatorKey, state: OperatorState): OperatorEvent[] => {
  const key = state.keys.get(command.data.keyId);
  if (!key) throw notFound(`operator key ${command.data.keyId}`);
  return key.revoked ? [] : [{ type: 'OperatorKeyRevoked', data: { keyId: command.data.keyId } }];
};

export const decide = (command: OperatorCommand, state: OperatorState): OperatorEvent[] => {
  switch (command.type) {
    case 'IssueOperatorKey':
      return issue(command, state);
    case 'RevokeOperatorKey':
      return revoke(command, state);
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
};

export const evolve = (state: OperatorState, event: OperatorEvent): OperatorState => {
  switch (event.type) {
    case 'OperatorKeyIssued':
      return { keys: new Map(state.keys).set(event.data.keyId, { secretHash: event.data.secretHash, revoked: false }) };
    case 'OperatorKeyRevoked': {
      const key = state.keys.get(event.data.keyId);
      return key ? { keys: new Map(state.keys).set(event.data.keyId, { ...key, revoked: true }) } : state;
    }
    default: {
      const never: never = event;
      return never;
    }
  }
};

export const operatorDecider = { decide, evolve, initialState };
