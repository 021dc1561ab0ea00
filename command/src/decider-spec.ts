import { expect } from 'vitest';
import { DomainError, type ErrorCode } from '#schema/errors';
import type { Command } from '#schema/commands';
import type { Event } from '#schema/events';
import type { Decider } from './handler';

/** given(events) / when(command) / then(events) for a pure decider, as in emmett. */
export const DeciderSpecification = {
  for: <C extends Command, E extends Event, S>(decider: Decider<C, E, S>) => ({
    given: (events: readonly E[]) => ({
      when: (command: C) => {
        const run = () => decider.decide(command, events.reduce(decider.evolve, decider.initialState()));
        return {
          then: (expected: readonly E[]) => expect(run()).toEqual(expected),
          thenNothingHappens: () => expect(run()).toEqual([]),
          thenThrows: (code: ErrorCode, message?: RegExp | string) => {
            let thrown: unknown;
            try {
              run();
            } catch (e) {
              thrown = e;
            }
            expect(thrown, 'the command should have been rejected').toBeInstanceOf(DomainError);
            expect((thrown as DomainError).code).toBe(code);
            if (message !== undefined) expect((thrown as DomainError).message).toMatch(message);
          },
        };
      },
    }),
  }),
};
